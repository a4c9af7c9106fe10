/** Client identity from a certificate (CN, SAN DNS, SAN URI) and authorization rules over it. */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import { before, describe, it } from 'node:test';
import { Authorizer } from '../../src/auth/rules.js';
import { createCa, issueCertificate, type Issued } from '../../src/certs/index.js';
import { readProxyConfig } from '../../src/config/index.js';
import { identitiesOf, parseSubjectAltName } from '../../src/net/identity.js';

/** The certificate as the proxy sees it: from a real loopback mutual-TLS handshake. */
async function peerCertificateOf(ca: Issued, client: Issued): Promise<PeerCertificate> {
  const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost' });
  return new Promise((resolve, reject) => {
    const srv = tls.createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (s) => {
      resolve(s.getPeerCertificate(false));
      s.destroy();
      srv.close();
    });
    srv.on('tlsClientError', reject);
    srv.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ port: (srv.address() as AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: ca.certPem, key: client.keyPem, cert: client.certPem });
      c.on('error', () => {});
    });
  });
}

describe('identitiesOf', () => {
  let ca: Issued;
  before(async () => {
    ca = await createCa({ commonName: 'identity test CA' });
  });

  it('takes the CN first, then SAN DNS and URI entries, without duplicates', async () => {
    const c = await issueCertificate(ca, {
      kind: 'client',
      commonName: 'hmi-1',
      dns: ['hmi-1', 'hmi-1.plant.local'],
      uris: ['spiffe://plant/hmi-1'],
    });
    assert.deepEqual(identitiesOf(await peerCertificateOf(ca, c)), ['hmi-1', 'hmi-1.plant.local', 'spiffe://plant/hmi-1']);
  });

  it('keeps a CN with commas and quotes intact', async () => {
    const c = await issueCertificate(ca, { kind: 'client', commonName: 'ops, "night" shift' });
    assert.deepEqual(identitiesOf(await peerCertificateOf(ca, c)), ['ops, "night" shift']);
  });

  it('ignores IP SANs and gives nothing for no certificate', async () => {
    const c = await issueCertificate(ca, { kind: 'client', commonName: 'plc-4', ips: ['127.0.0.1'] });
    assert.deepEqual(identitiesOf(await peerCertificateOf(ca, c)), ['plc-4']);
    assert.deepEqual(identitiesOf(undefined), []);
  });

  it('parses quoted SAN values as Node writes them', () => {
    assert.deepEqual(parseSubjectAltName('DNS:a.example, URI:"spiffe://x/a,b", IP Address:10.0.0.1'), [
      { type: 'DNS', value: 'a.example' },
      { type: 'URI', value: 'spiffe://x/a,b' },
      { type: 'IP Address', value: '10.0.0.1' },
    ]);
    assert.deepEqual(parseSubjectAltName(undefined), []);
  });
});

describe('authorization rules', () => {
  const config = readProxyConfig(
    [
      '[proxy]',
      'server = "data 127.0.0.1:4897"',
      'server = "event 127.0.0.1:4998"',
      'server = "hist-a 10.0.0.5:5432 10.0.0.6:5432"',
      'allow = "hmi-* data event"',
      'allow = "spiffe://plant/* hist-*"',
      'allow = "admin *"',
    ].join('\n'),
    '/tmp/rules.config',
    { checkFiles: false },
  );
  const auth = new Authorizer(config);

  it('lets a matching identity reach the named targets only', () => {
    assert.deepEqual(auth.decide(['hmi-3'], 'data'), { ok: true, addresses: ['127.0.0.1:4897'] });
    const no = auth.decide(['hmi-3'], 'hist-a');
    assert.equal(no.ok, false);
    assert.equal(!no.ok && no.code, 'ERR_NOT_ALLOWED');
  });

  it('matches any of the identities, with * crossing "/" and ":" in URIs', () => {
    const d = auth.decide(['svc', 'spiffe://plant/area/7'], 'hist-a');
    assert.deepEqual(d, { ok: true, addresses: ['10.0.0.5:5432', '10.0.0.6:5432'] });
  });

  it('answers ERR_UNKNOWN_TARGET for a name no server entry defines, whoever asks', () => {
    const d = auth.decide(['admin'], 'nosuch');
    assert.equal(!d.ok && d.code, 'ERR_UNKNOWN_TARGET');
  });

  it('declines when no identity is known', () => {
    const d = auth.decide([], 'data');
    assert.equal(!d.ok && d.code, 'ERR_NOT_ALLOWED');
  });

  it('treats glob metacharacters other than * and ? literally', () => {
    const c = readProxyConfig(['[proxy]', 'server = "a.b 127.0.0.1:1"', 'allow = "(x)+[y] a.b"'].join('\n'), '/tmp/meta.config', { checkFiles: false });
    const a = new Authorizer(c);
    assert.equal(a.decide(['(x)+[y]'], 'a.b').ok, true);
    assert.equal(a.decide(['xx+[y]'], 'a.b').ok, false);
  });
});
