/**
 * The pieces of session resumption that need no network: what the DER reader takes from a certificate and a
 * CRL, the checks on a resumed certificate at chosen instants (net/resumption.ts), the client's session cache,
 * and a reload of the terminator's material ending resumption (loopback, no proxy).
 */
import assert from 'node:assert/strict';
import { X509Certificate, constants } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { createCa, createCrl, issueCertificate, type Issued } from '../../src/certs/index.js';
import { TlsSessionCache, withoutPeerCertificate } from '../../src/client/sessionCache.js';
import { certificateFacts, normalSerial, readCrl, sessionPeerCertificate } from '../../src/net/der.js';
import { resumptionCheck } from '../../src/net/resumption.js';
import {
  createTlsTerminator,
  reloadTlsTerminator,
  rotateTicketKeys,
  secureContextOptions,
  SESSION_LIFETIME_S,
  TICKET_KEY_BYTES,
  type TlsMaterial,
} from '../../src/net/tlsTerminator.js';

const DAY = 24 * 60 * 60 * 1000;
const der = (pem: string): Buffer => new X509Certificate(pem).raw;
/** A certificate as a resumed session's getPeerCertificate() gives it (the fields the check reads). */
const peer = (pem: string) => {
  const x = new X509Certificate(pem);
  return { raw: x.raw, fingerprint256: x.fingerprint256 };
};
const crlDer = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

async function world() {
  const ca = await createCa({ commonName: 'resumption unit CA', validityDays: 10 });
  const other = await createCa({ commonName: 'another CA' });
  const t0 = Date.now();
  const leaf = await issueCertificate(ca, { kind: 'client', commonName: 'leaf', notBefore: new Date(t0 - DAY), notAfter: new Date(t0 + DAY) });
  // Outlives its CA: only the CA's own expiry can refuse it.
  const longLeaf = await issueCertificate(ca, { kind: 'client', commonName: 'long', notAfter: new Date(t0 + 20 * DAY) });
  const revoked = await issueCertificate(ca, { kind: 'client', commonName: 'revoked' });
  const stranger = await issueCertificate(other, { kind: 'client', commonName: 'stranger' });
  const serialOf = (i: Issued) => new X509Certificate(i.certPem).serialNumber;
  const crl = await createCrl(ca, [{ serial: serialOf(revoked), revokedAt: new Date(), reason: 'keyCompromise' }], {
    number: 2n,
    nextUpdate: new Date(t0 + 3 * DAY),
  });
  return { ca, other, leaf, longLeaf, revoked, stranger, crl, t0, serialOf };
}

describe('DER: what a resumed session is checked against', () => {
  it('certificateFacts: issuer, serial and validity as node:crypto reads them', async () => {
    const w = await world();
    const f = certificateFacts(der(w.leaf.certPem));
    const x = new X509Certificate(w.leaf.certPem);
    assert.equal(f.serial, normalSerial(x.serialNumber));
    assert.equal(f.notBefore.getTime(), Date.parse(x.validFrom));
    assert.equal(f.notAfter.getTime(), Date.parse(x.validTo));
    assert.ok(x.checkIssued(new X509Certificate(w.ca.certPem)));
    assert.equal(normalSerial('00A1'), 'a1');
    assert.equal(normalSerial('000'), '0');
  });

  it('readCrl: the revoked serials, none for an empty CRL', async () => {
    const w = await world();
    assert.deepEqual(readCrl(crlDer(w.crl)).revoked, [normalSerial(w.serialOf(w.revoked))]);
    const empty = await createCrl(w.ca, [], { number: 1n, nextUpdate: new Date(w.t0 + DAY) });
    assert.deepEqual(readCrl(crlDer(empty)).revoked, []);
  });
});

describe('resumptionCheck', () => {
  it('no CRL: the certificate and its CA within their validity, nothing else', async () => {
    const w = await world();
    const check = resumptionCheck(w.ca.certPem, undefined);
    const leaf = peer(w.leaf.certPem);
    assert.equal(check(leaf, w.t0), null);
    assert.equal(check(peer(w.revoked.certPem), w.t0), null, 'without sslCrl a revoked serial is not known');
    assert.equal(check(leaf, w.t0 + DAY + 1000)?.code, 'ERR_RESUMED_CERT_EXPIRED');
    assert.equal(check(leaf, w.t0 - DAY - 1000)?.code, 'ERR_RESUMED_CERT_NOT_YET_VALID');
    const long = peer(w.longLeaf.certPem);
    assert.equal(check(long, w.t0 + 5 * DAY), null);
    const afterCa = check(long, w.t0 + 11 * DAY);
    assert.equal(afterCa?.code, 'ERR_RESUMED_CERT_EXPIRED');
    assert.match(afterCa?.message ?? '', /the CA that issued/);
  });

  it('with a CRL: revoked serials, the CRL running out, an issuer without a CRL', async () => {
    const w = await world();
    const check = resumptionCheck(w.ca.certPem + w.other.certPem, [w.crl]);
    assert.equal(check(peer(w.leaf.certPem), w.t0), null);
    const revoked = check(peer(w.revoked.certPem), w.t0);
    assert.equal(revoked?.code, 'ERR_RESUMED_CERT_REVOKED');
    assert.match(revoked?.message ?? '', new RegExp(normalSerial(w.serialOf(w.revoked)), 'i'));
    assert.equal(check(peer(w.longLeaf.certPem), w.t0 + 3 * DAY - 1000), null);
    assert.equal(check(peer(w.longLeaf.certPem), w.t0 + 3 * DAY + 1000)?.code, 'ERR_RESUMED_CRL_EXPIRED');
    // The other CA has no CRL in the set: as OpenSSL's UNABLE_TO_GET_CRL, refused.
    assert.equal(check(peer(w.stranger.certPem), w.t0)?.code, 'ERR_RESUMED_CRL_EXPIRED');
  });
});

describe('TlsSessionCache', () => {
  const owner = { cert: 'cert A', key: 'key A', ca: 'ca' };
  const s = (n: number) => Buffer.from([n]);

  it('keeps the latest sessions per proxy, bounded; forgets on request', () => {
    const c = new TlsSessionCache({ perProxy: 2 });
    const k = TlsSessionCache.keyOf('127.0.0.1', 5678, undefined, owner);
    assert.equal(c.get(k), undefined);
    c.add(k, s(1));
    c.add(k, s(2));
    c.add(k, s(3));
    assert.equal(c.size, 2);
    assert.deepEqual(c.get(k), s(3));
    c.forget(k);
    assert.equal(c.get(k), undefined);
    assert.equal(c.size, 0);
  });

  it('a session is only offered with the certificate, CA, address and name it was made with', () => {
    const keys = new Set([
      TlsSessionCache.keyOf('127.0.0.1', 5678, undefined, owner),
      TlsSessionCache.keyOf('127.0.0.1', 5678, undefined, { ...owner, cert: 'cert B' }),
      TlsSessionCache.keyOf('127.0.0.1', 5678, undefined, { ...owner, ca: 'other ca' }),
      TlsSessionCache.keyOf('127.0.0.1', 5679, undefined, owner),
      TlsSessionCache.keyOf('127.0.0.2', 5678, undefined, owner),
      TlsSessionCache.keyOf('127.0.0.1', 5678, 'proxy.plant.local', owner),
    ]);
    assert.equal(keys.size, 6);
    assert.equal(TlsSessionCache.keyOf('127.0.0.1', 5678, undefined, owner), TlsSessionCache.keyOf('127.0.0.1', 5678, undefined, { ...owner }));
  });

  it('remembers a bounded number of proxies, the least recently used going first', () => {
    const c = new TlsSessionCache({ proxies: 2 });
    const k = (port: number) => TlsSessionCache.keyOf('127.0.0.1', port, undefined, owner);
    c.add(k(1), s(1));
    c.add(k(2), s(2));
    c.get(k(1)); // used: now the most recent
    c.add(k(3), s(3));
    assert.deepEqual([c.get(k(1)), c.get(k(2)), c.get(k(3))], [s(1), undefined, s(3)]);
  });
});

describe('sessions without the proxy\'s certificate (keepPeerCertificate: false)', () => {
  /** A plain Node mutual-TLS server on loopback (up to `maxVersion`) that answers "hi" and closes. */
  async function pair(maxVersion: tls.SecureVersion) {
    const ca = await createCa({ commonName: 'session unit CA' });
    const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    const client = await issueCertificate(ca, { kind: 'client', commonName: 'c' });
    const srv = tls.createServer({ cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true, maxVersion }, (s) =>
      s.end('hi'),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    /** One connection; its sessions, whether it resumed, and the certificate it saw. */
    const connect = (session?: Buffer) =>
      new Promise<{ sessions: Buffer[]; reused: boolean; authorized: boolean; peerRaw: Buffer | undefined }>((resolve, reject) => {
        const sessions: Buffer[] = [];
        let reused = false;
        let authorized = false;
        let peerRaw: Buffer | undefined;
        const s = tls.connect({ host: '127.0.0.1', port, cert: client.certPem, key: client.keyPem, ca: ca.certPem, ...(session ? { session } : {}) });
        s.on('session', (b: Buffer) => sessions.push(b));
        s.once('secureConnect', () => {
          reused = s.isSessionReused();
          authorized = s.authorized;
          peerRaw = (s.getPeerCertificate() as Partial<tls.PeerCertificate>).raw;
        });
        s.on('data', () => {});
        s.on('error', reject);
        s.on('close', () => resolve({ sessions, reused, authorized, peerRaw }));
      });
    return { connect, serverDer: der(server.certPem), close: () => new Promise<void>((r) => srv.close(() => r())) };
  }

  it('TLS 1.3: the certificate is taken out, nothing else; the session still resumes, authorized', async () => {
    const p = await pair('TLSv1.3');
    try {
      const full = await p.connect();
      assert.ok(full.authorized && !full.reused);
      assert.deepEqual(full.peerRaw, p.serverDer);
      const session = full.sessions.at(-1)!;
      const lean = withoutPeerCertificate(session);
      assert.ok(session.includes(p.serverDer), 'OpenSSL keeps the certificate in the session');
      assert.ok(!lean.includes(p.serverDer), 'taken out');
      assert.equal(session.length - lean.length >= p.serverDer.length, true);
      assert.deepEqual(withoutPeerCertificate(lean), lean, 'nothing more to take out');
      const cut = session.subarray(0, session.length - 1);
      assert.equal(withoutPeerCertificate(cut), cut, 'a cut session is left as it is');
      const resumed = await p.connect(lean);
      assert.equal(resumed.reused, true, 'resumed with the lean session');
      assert.equal(resumed.authorized, true);
      assert.equal(resumed.peerRaw, undefined, 'getPeerCertificate() is empty on such a resumed connection');
      const cache = new TlsSessionCache({ keepPeerCertificate: false });
      cache.add('k', session);
      assert.deepEqual(cache.get('k'), lean);
      const keeping = new TlsSessionCache();
      keeping.add('k', session);
      assert.deepEqual(keeping.get('k'), session, 'kept whole by default');
    } finally {
      await p.close();
    }
  });

  it('sessionPeerCertificate: the client certificate of a server-side session, TLS 1.2 and 1.3, full and resumed', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const ca = await createCa({ commonName: 'session DER CA' });
      const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
      const client = await issueCertificate(ca, { kind: 'client', commonName: 'c' });
      const seen: { fromSession: Uint8Array | undefined; raw: Buffer; reused: boolean }[] = [];
      const srv = tls.createServer(
        { cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true, maxVersion },
        (s) => {
          const session = s.getSession();
          seen.push({ fromSession: session && sessionPeerCertificate(session), raw: s.getPeerCertificate().raw, reused: s.isSessionReused() });
          s.end('hi');
        },
      );
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const port = (srv.address() as net.AddressInfo).port;
      try {
        let ticket: Buffer | undefined;
        for (let i = 0; i < 2; i++) {
          await new Promise<void>((resolve, reject) => {
            const s = tls.connect({ host: '127.0.0.1', port, cert: client.certPem, key: client.keyPem, ca: ca.certPem, ...(ticket ? { session: ticket } : {}) });
            s.on('session', (b: Buffer) => (ticket = b));
            s.on('data', () => {});
            s.on('error', reject);
            s.on('close', () => resolve());
          });
        }
      } finally {
        await new Promise<void>((r) => srv.close(() => r()));
      }
      assert.deepEqual(seen.map((x) => x.reused), [false, true], `${maxVersion}: a full handshake, then a resumed one`);
      for (const x of seen) assert.deepEqual(Buffer.from(x.fromSession ?? []), der(client.certPem), `${maxVersion}: the DER getPeerCertificate gives`);
      assert.deepEqual(seen[0]!.raw, der(client.certPem));
    }
    // A session without a peer certificate, and what is no session at all: nothing, never a throw.
    const noPeer = Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x00]);
    for (const junk of [noPeer, Buffer.alloc(0), Buffer.from([0x30]), Buffer.from([0x30, 0x85, 1, 2, 3, 4, 5]), Buffer.from('not DER at all'), Buffer.from([0x30, 0x04, 0xa3, 0x02, 0x04, 0x00])]) {
      assert.equal(sessionPeerCertificate(junk), undefined);
    }
  });

  it('TLS 1.2 sessions and what is not a session come back unchanged', async () => {
    const p = await pair('TLSv1.2');
    try {
      const full = await p.connect();
      const session = full.sessions.at(-1)!;
      assert.ok(session.includes(p.serverDer));
      assert.equal(withoutPeerCertificate(session), session);
      assert.equal((await p.connect(withoutPeerCertificate(session))).reused, true);
    } finally {
      await p.close();
    }
    for (const junk of [Buffer.alloc(0), Buffer.from([0x30]), Buffer.from([0x30, 0x85, 1, 2, 3, 4, 5]), Buffer.from('not DER at all')]) {
      assert.equal(withoutPeerCertificate(junk), junk);
    }
  });
});

describe('the terminator: ticket keys and a reload', () => {
  /** A terminator behind a loopback listener; `hello` reports each connection's resumed flag. */
  async function serve(material: TlsMaterial, ticketKeys?: Buffer) {
    const resumed: boolean[] = [];
    const server = createTlsTerminator(
      material,
      {
        ok: (_raw, socket, info) => {
          resumed.push(info.resumed);
          socket.end('hello');
        },
        failed: () => {},
      },
      { ticketKeys },
    );
    const listener = net.createServer((raw) => server.emit('connection', raw));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    return { server, resumed, port: (listener.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => listener.close(() => r())) };
  }

  /** Connects; resolves with the last ticket it got (TLS 1.3 tickets come after the handshake). */
  function hello(port: number, client: TlsMaterial, session?: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      let ticket: Buffer | undefined;
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', cert: client.cert, key: client.key, ca: client.ca, ...(session ? { session } : {}) });
      s.on('session', (b: Buffer) => (ticket = b));
      s.on('data', () => {});
      s.on('error', reject);
      s.on('close', () => resolve(ticket));
    });
  }

  it('two certificates of one name are told apart, fresh and resumed (facts kept per certificate)', async () => {
    const ca = await createCa({ commonName: 'terminator facts CA' });
    const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    const first = await issueCertificate(ca, { kind: 'client', commonName: 'same-name' });
    const renewed = await issueCertificate(ca, { kind: 'client', commonName: 'same-name', dns: ['renewed.example'] });
    const seen: { serial: string; identities: string[]; resumed: boolean }[] = [];
    const t = createTlsTerminator(
      { cert: server.certPem, key: server.keyPem, ca: ca.certPem },
      {
        ok: (_raw, socket, info) => {
          seen.push({ serial: info.cert.serial, identities: info.identities, resumed: info.resumed });
          socket.end('hello');
        },
        failed: () => {},
      },
    );
    const listener = net.createServer((raw) => t.emit('connection', raw));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as net.AddressInfo).port;
    try {
      for (const c of [first, renewed, first, renewed]) {
        const mine: TlsMaterial = { cert: c.certPem, key: c.keyPem, ca: ca.certPem };
        const ticket = await hello(port, mine);
        await hello(port, mine, ticket);
      }
    } finally {
      await new Promise<void>((r) => listener.close(() => r()));
    }
    const serial = (i: Issued) => new X509Certificate(i.certPem).serialNumber;
    assert.deepEqual(
      seen.map((x) => x.serial),
      [first, first, renewed, renewed, first, first, renewed, renewed].map(serial),
    );
    assert.deepEqual(seen.map((x) => x.resumed), [false, true, false, true, false, true, false, true]);
    assert.deepEqual(seen[0]!.identities, ['cn:same-name']);
    assert.deepEqual(seen[2]!.identities, ['cn:same-name', 'dns:renewed.example']);
    assert.deepEqual(seen[7]!.identities, seen[2]!.identities);
  });

  it('shares a given key, rotates, and a reload ends resumption of the sessions verified before it', async () => {
    const ca = await createCa({ commonName: 'terminator unit CA' });
    const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    const client = await issueCertificate(ca, { kind: 'client', commonName: 'c' });
    const material: TlsMaterial = { cert: server.certPem, key: server.keyPem, ca: ca.certPem };
    const mine: TlsMaterial = { cert: client.certPem, key: client.keyPem, ca: ca.certPem };
    const key = Buffer.alloc(TICKET_KEY_BYTES, 7);
    const a = await serve(material, key);
    const b = await serve(material, key);
    try {
      assert.deepEqual(a.server.getTicketKeys(), key);
      const ticket = await hello(a.port, mine);
      assert.ok(ticket);
      await hello(b.port, mine, ticket);
      assert.deepEqual(b.resumed, [true], 'the same key: the other terminator resumes it');
      rotateTicketKeys(b.server);
      await hello(b.port, mine, ticket);
      assert.deepEqual(b.resumed, [true, false], 'rotated: a full handshake');
      reloadTlsTerminator(a.server, material);
      assert.notDeepEqual(a.server.getTicketKeys(), key, 'a reload brings a new key');
      await hello(a.port, mine, ticket);
      assert.deepEqual(a.resumed, [false, false], 'no resumption across the reload');
      // A reload builds the context from the same options as the start: renegotiation refused, the session
      // lifetime and the CA-bound session context kept.
      const o = secureContextOptions(material);
      assert.equal((o.secureOptions ?? 0) & constants.SSL_OP_NO_RENEGOTIATION, constants.SSL_OP_NO_RENEGOTIATION);
      assert.equal(o.sessionTimeout, SESSION_LIFETIME_S);
      assert.notEqual(o.sessionIdContext, secureContextOptions({ ...material, ca: server.certPem }).sessionIdContext);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
