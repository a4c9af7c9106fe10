/** Client identity from a certificate (CN, SAN DNS, SAN URI) and authorization rules over it. */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import { before, describe, it } from 'node:test';
import { Authorizer } from '../../src/auth/rules.js';
import { createCa, issueCertificate, type Issued } from '../../src/certs/index.js';
import { readProxyConfig } from '../../src/config/index.js';
import { certificateIdentities, identitiesOf, parseSubjectAltName } from '../../src/net/identity.js';
import { decodeIdentity, encodeIdentity, parseIdentityPattern, type Identity } from '../../src/shared/identity.js';
import { issueWithCommonNames } from '../helpers/rawCert.js';

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

const cn = (value: string): Identity => ({ kind: 'cn', value });
const dns = (value: string): Identity => ({ kind: 'dns', value });
const uri = (value: string): Identity => ({ kind: 'uri', value });

describe('identitiesOf', () => {
  let ca: Issued;
  before(async () => {
    ca = await createCa({ commonName: 'identity test CA' });
  });

  it('takes the CN first, then SAN DNS and URI entries, each typed by its field', async () => {
    const c = await issueCertificate(ca, {
      kind: 'client',
      commonName: 'hmi-1',
      dns: ['hmi-1', 'hmi-1.plant.local'],
      uris: ['spiffe://plant/hmi-1'],
    });
    const peer = await peerCertificateOf(ca, c);
    assert.deepEqual(identitiesOf(peer), [cn('hmi-1'), dns('hmi-1'), dns('hmi-1.plant.local'), uri('spiffe://plant/hmi-1')]);
    assert.deepEqual(certificateIdentities(peer), { ok: true, identities: identitiesOf(peer) });
  });

  it('keeps a CN with commas and quotes intact', async () => {
    const c = await issueCertificate(ca, { kind: 'client', commonName: 'ops, "night" shift' });
    assert.deepEqual(identitiesOf(await peerCertificateOf(ca, c)), [cn('ops, "night" shift')]);
  });

  it('ignores IP SANs and gives nothing for no certificate', async () => {
    const c = await issueCertificate(ca, { kind: 'client', commonName: 'plc-4', ips: ['127.0.0.1'] });
    assert.deepEqual(identitiesOf(await peerCertificateOf(ca, c)), [cn('plc-4')]);
    assert.deepEqual(identitiesOf(undefined), []);
  });

  it('refuses a certificate with more than one CN', async () => {
    const c = await issueWithCommonNames(ca, ['hmi-1', 'admin']);
    const d = certificateIdentities(await peerCertificateOf(ca, c));
    assert.equal(d.ok, false);
    assert.equal(!d.ok && d.code, 'ERR_MULTIPLE_CN');
    assert.match(!d.ok ? d.message : '', /2 subject CNs \("hmi-1", "admin"\)/);
  });

  it('parses quoted SAN values as Node writes them', () => {
    assert.deepEqual(parseSubjectAltName('DNS:a.example, URI:"spiffe://x/a,b", IP Address:10.0.0.1'), [
      { type: 'DNS', value: 'a.example' },
      { type: 'URI', value: 'spiffe://x/a,b' },
      { type: 'IP Address', value: '10.0.0.1' },
    ]);
    assert.deepEqual(parseSubjectAltName(undefined), []);
  });

  it('encodes typed names into TLS_OK strings and back; a value keeps its own colons', () => {
    for (const id of [cn('hmi-01'), dns('hmi.plant.local'), uri('spiffe://plant/hmi-1'), cn('dns:evil'), cn('')]) {
      assert.deepEqual(decodeIdentity(encodeIdentity(id)), id);
    }
    assert.equal(encodeIdentity(dns('hmi.plant.local')), 'dns:hmi.plant.local');
    assert.equal(decodeIdentity('hmi-01'), undefined, 'a bare value (an old event log) has no kind');
    assert.equal(decodeIdentity('ip:10.0.0.1'), undefined);
  });
});

describe('allow rule identities: the field prefix', () => {
  it('cn:, dns:, uri:, any: and bare', () => {
    assert.deepEqual(parseIdentityPattern('cn:hmi-*'), { ok: true, field: 'cn', glob: 'hmi-*' });
    assert.deepEqual(parseIdentityPattern('dns:*.plant.local'), { ok: true, field: 'dns', glob: '*.plant.local' });
    assert.deepEqual(parseIdentityPattern('uri:spiffe://plant/*'), { ok: true, field: 'uri', glob: 'spiffe://plant/*' });
    assert.deepEqual(parseIdentityPattern('DNS:*.plant.local'), { ok: true, field: 'dns', glob: '*.plant.local' }, 'as certs show prints SANs');
    assert.deepEqual(parseIdentityPattern('any:urn:uuid:*'), { ok: true, field: 'any', glob: 'urn:uuid:*' });
    assert.deepEqual(parseIdentityPattern('hmi-*'), { ok: true, field: 'any', glob: 'hmi-*' });
    assert.deepEqual(parseIdentityPattern('spiffe://plant/*'), { ok: true, field: 'any', glob: 'spiffe://plant/*' }, 'a bare URI glob');
    assert.deepEqual(parseIdentityPattern('*:x'), { ok: true, field: 'any', glob: '*:x' });
  });

  it('an unknown prefix or a prefix without a glob is an error that says what to write', () => {
    const typo = parseIdentityPattern('nds:*.plant.local');
    assert.equal(typo.ok, false);
    assert.match(!typo.ok ? typo.message : '', /unknown identity field "nds:".*cn:, dns: or uri:.*any:nds:\*\.plant\.local/);
    const empty = parseIdentityPattern('dns:');
    assert.match(!empty.ok ? empty.message : '', /names the field but no glob/);
  });

  it('config validation reports an unknown prefix with file:line', () => {
    assert.throws(
      () =>
        readProxyConfig(['[proxy]', 'server = "data 127.0.0.1:4897"', 'allow = "dns:*.plant.local data"', 'allow = "sn:hmi-* data"'].join('\n'), '/tmp/prefix.config', {
          checkFiles: false,
        }),
      (err: Error) => {
        assert.match(err.message, /\/tmp\/prefix\.config:4: unknown identity field "sn:"/);
        assert.doesNotMatch(err.message, /prefix\.config:3:/);
        return true;
      },
    );
  });

  it('config keeps the identity as written, with its field and glob', () => {
    const c = readProxyConfig(['[proxy]', 'server = "data 127.0.0.1:4897"', 'allow = "uri:spiffe://plant/* data"'].join('\n'), '/tmp/f.config', {
      checkFiles: false,
    });
    assert.deepEqual(c.allow.map((r) => [r.identity, r.field, r.glob]), [['uri:spiffe://plant/*', 'uri', 'spiffe://plant/*']]);
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
      'allow = "cn:op-* event"',
      'allow = "dns:*.plant.local hist-a"',
      'allow = "uri:spiffe://plc/* data"',
    ].join('\n'),
    '/tmp/rules.config',
    { checkFiles: false },
  );
  const auth = new Authorizer(config);

  it('lets a matching identity reach the named targets only, and says which rule and name matched', () => {
    assert.deepEqual(auth.decide([cn('hmi-3')], 'data'), {
      ok: true,
      addresses: ['127.0.0.1:4897'],
      rule: { where: '/tmp/rules.config:5', text: 'hmi-* data event' },
      matched: cn('hmi-3'),
    });
    const no = auth.decide([cn('hmi-3')], 'hist-a');
    assert.equal(no.ok, false);
    assert.equal(!no.ok && no.code, 'ERR_NOT_ALLOWED');
  });

  it('a bare glob matches any of the names, with * crossing "/" and ":" in URIs', () => {
    const d = auth.decide([cn('svc'), uri('spiffe://plant/area/7')], 'hist-a');
    assert.equal(d.ok, true);
    assert.deepEqual(d.ok && [d.addresses, d.matched, d.rule.where], [['10.0.0.5:5432', '10.0.0.6:5432'], uri('spiffe://plant/area/7'), '/tmp/rules.config:6']);
    assert.equal(auth.decide([cn('x'), dns('hmi-9')], 'data').ok, true, 'a bare rule matches a SAN DNS name too');
  });

  it('cn: matches the CN only', () => {
    const d = auth.decide([cn('op-1')], 'event');
    assert.equal(d.ok && d.rule.where, '/tmp/rules.config:8');
    assert.equal(auth.decide([cn('x'), dns('op-1'), uri('op-1')], 'event').ok, false, 'a SAN named op-1 is not the CN');
  });

  it('dns: matches SAN DNS entries only', () => {
    const d = auth.decide([cn('x'), dns('a.example'), dns('hmi.plant.local')], 'hist-a');
    assert.deepEqual(d.ok && d.matched, dns('hmi.plant.local'));
    assert.equal(auth.decide([cn('hmi.plant.local')], 'hist-a').ok, false, 'a CN that looks like a DNS name is not a SAN');
    assert.equal(auth.decide([uri('hmi.plant.local')], 'hist-a').ok, false);
  });

  it('uri: matches SAN URI entries only', () => {
    const d = auth.decide([cn('x'), uri('spiffe://plc/4')], 'data');
    assert.deepEqual(d.ok && [d.matched, d.rule.text], [uri('spiffe://plc/4'), 'uri:spiffe://plc/* data']);
    assert.equal(auth.decide([cn('spiffe://plc/4'), dns('spiffe://plc/4')], 'data').ok, false);
  });

  it('answers ERR_UNKNOWN_TARGET for a name no server entry defines, whoever asks', () => {
    const d = auth.decide([cn('admin')], 'nosuch');
    assert.equal(!d.ok && d.code, 'ERR_UNKNOWN_TARGET');
  });

  it('declines when no identity is known', () => {
    const d = auth.decide([], 'data');
    assert.equal(!d.ok && d.code, 'ERR_NOT_ALLOWED');
  });

  it('treats glob metacharacters other than * and ? literally', () => {
    const c = readProxyConfig(['[proxy]', 'server = "a.b 127.0.0.1:1"', 'allow = "(x)+[y] a.b"'].join('\n'), '/tmp/meta.config', { checkFiles: false });
    const a = new Authorizer(c);
    assert.equal(a.decide([cn('(x)+[y]')], 'a.b').ok, true);
    assert.equal(a.decide([cn('xx+[y]')], 'a.b').ok, false);
  });

  it('an adversarial CN against many stars is declined (the matcher does not backtrack)', () => {
    const c = readProxyConfig(['[proxy]', 'server = "data 127.0.0.1:1"', 'allow = "hmi-*-*-*-panel data"'].join('\n'), '/tmp/adv.config', { checkFiles: false });
    const a = new Authorizer(c);
    assert.equal(a.decide([cn(`hmi-${'-'.repeat(3000)}`)], 'data').ok, false);
    assert.equal(a.decide([cn(`hmi-${'-'.repeat(3000)}panel`)], 'data').ok, true);
  });
});
