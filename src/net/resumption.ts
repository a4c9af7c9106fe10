/**
 * What OpenSSL does not check when a client resumes a TLS session: the certificate in a session ticket was
 * verified once, at the full handshake that issued it, and a resumption takes it as it was (no chain, no dates,
 * no CRL). Until the ticket's lifetime runs out a client could go on resuming with a certificate that has since
 * expired or been revoked. So on every resumed session the terminator asks this module the questions a full
 * handshake would have asked OpenSSL: is the certificate (and the CA that issued it) still within its validity,
 * is its serial on the CRL in force, is that CRL itself still current. Authorization needs nothing here: it runs
 * on every request, against the rules in force (src/proxy/effects.ts).
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { DerError } from '../errors.js';
import { certificateFacts, normalSerial, readCrl, subjectDer } from './der.js';
import { pemCertificates } from './trust.js';

export type ResumptionRefusalCode =
  | 'ERR_RESUMED_CERT_EXPIRED'
  | 'ERR_RESUMED_CERT_NOT_YET_VALID'
  | 'ERR_RESUMED_CERT_REVOKED'
  | 'ERR_RESUMED_CRL_EXPIRED'
  | 'ERR_DER';

export interface ResumptionRefusal {
  code: ResumptionRefusalCode;
  message: string;
}

/** A resumed session's certificate as getPeerCertificate() gives it: the DER and Node's SHA-256 fingerprint. */
export type SessionCertificate = Pick<PeerCertificate, 'raw' | 'fingerprint256'>;

/** Judges a resumed session's certificate at `now` (ms since the epoch). */
export type ResumptionCheck = (cert: SessionCertificate, now: number) => ResumptionRefusal | null;

/** Certificates whose facts are kept, by fingerprint: the clients that resume are few, and come back often. */
const FACTS_CACHE = 1024;

interface Issuer {
  /** Validity of the CA certificates of this name (a renewed CA keeps its name): the widest window counts. */
  notBefore: number;
  notAfter: number;
  /** From the issuer's CRL, when sslCrl is set. */
  revoked: Set<string> | undefined;
  crlNextUpdate: number | undefined;
}

/** What is checked of the certificate: its issuer (the key into the tables), serial and validity (ms). */
interface Facts {
  issuer: string | undefined;
  serial: string;
  notBefore: number;
  notAfter: number;
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/;

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The project's DER reader first: about 30 times cheaper than an X509Certificate, and this runs on every resumed
 * session. A certificate it cannot read (one OpenSSL accepted) goes through node:crypto instead, which finds the
 * issuer by asking each CA; null only if that fails too.
 */
function factsOf(certDer: Buffer, anchors: readonly { cert: X509Certificate; key: string }[]): Facts | null {
  try {
    const f = certificateFacts(certDer);
    return { issuer: f.issuer.toString('hex'), serial: f.serial, notBefore: f.notBefore.getTime(), notAfter: f.notAfter.getTime() };
  } catch {
    // read below; nothing thrown may escape: this runs in the TLS server's handler
  }
  try {
    const x = new X509Certificate(certDer);
    return {
      issuer: anchors.find((a) => x.checkIssued(a.cert))?.key,
      serial: normalSerial(x.serialNumber),
      notBefore: Date.parse(x.validFrom),
      notAfter: Date.parse(x.validTo),
    };
  } catch {
    return null;
  }
}

/**
 * Tables for one CA file and CRL set, built once per secure context: per issuer name, the CA's validity and the
 * revoked serials. The CRLs were checked at start (net/crl.ts); one that cannot be read here is skipped (its
 * issuer then counts as having no CRL).
 */
export function resumptionCheck(caPem: string | Buffer, crlPems: readonly string[] | undefined): ResumptionCheck {
  const issuers = new Map<string, Issuer>();
  const anchors = pemCertificates(caPem).map((cert) => ({ cert, key: subjectDer(cert).toString('hex') }));
  for (const { cert, key } of anchors) {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    const known = issuers.get(key);
    if (known) {
      known.notBefore = Math.min(known.notBefore, from);
      known.notAfter = Math.max(known.notAfter, to);
    } else issuers.set(key, { notBefore: from, notAfter: to, revoked: undefined, crlNextUpdate: undefined });
  }
  for (const pem of crlPems ?? []) {
    const body = PEM_CRL.exec(pem)?.[1];
    if (!body) continue;
    let crl: ReturnType<typeof readCrl>;
    try {
      crl = readCrl(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
    } catch (err) {
      if (err instanceof DerError) continue;
      throw err;
    }
    const issuer = issuers.get(crl.issuer.toString('hex'));
    if (!issuer) continue;
    issuer.revoked ??= new Set();
    for (const serial of crl.revoked) issuer.revoked.add(serial);
    const next = crl.nextUpdate?.getTime();
    if (next !== undefined) issuer.crlNextUpdate = Math.min(issuer.crlNextUpdate ?? Infinity, next);
  }
  const withCrl = crlPems !== undefined && crlPems.length > 0;
  // Reading the DER costs some 50 µs a connection in a busy proxy (a few µs in a tight loop); the fingerprint
  // Node already computed finds the same certificate's facts for well under one.
  const known = new Map<string, Facts | null>();
  const factsFor = (cert: SessionCertificate): Facts | null => {
    const hit = known.get(cert.fingerprint256);
    if (hit !== undefined) return hit;
    const facts = factsOf(cert.raw, anchors);
    if (known.size >= FACTS_CACHE) known.delete(known.keys().next().value!);
    known.set(cert.fingerprint256, facts);
    return facts;
  };

  return (cert, now) => {
    const facts = factsFor(cert);
    if (!facts) return { code: 'ERR_DER', message: 'resumed session refused: its client certificate cannot be read' };
    const serial = facts.serial.toUpperCase();
    if (now > facts.notAfter) {
      return { code: 'ERR_RESUMED_CERT_EXPIRED', message: `resumed session refused: client certificate ${serial} expired on ${iso(facts.notAfter)}` };
    }
    if (now < facts.notBefore) {
      return {
        code: 'ERR_RESUMED_CERT_NOT_YET_VALID',
        message: `resumed session refused: client certificate ${serial} is not valid before ${iso(facts.notBefore)}`,
      };
    }
    // Unknown only when the CA file changed under a ticket key that did not (see reloadTlsTerminator): then
    // there is no CA validity to check, and with a CRL set the case below refuses it.
    const issuer = facts.issuer === undefined ? undefined : issuers.get(facts.issuer);
    if (issuer && now > issuer.notAfter) {
      return { code: 'ERR_RESUMED_CERT_EXPIRED', message: `resumed session refused: the CA that issued client certificate ${serial} expired on ${iso(issuer.notAfter)}` };
    }
    if (issuer && now < issuer.notBefore) {
      return {
        code: 'ERR_RESUMED_CERT_NOT_YET_VALID',
        message: `resumed session refused: the CA that issued client certificate ${serial} is not valid before ${iso(issuer.notBefore)}`,
      };
    }
    if (withCrl) {
      // As OpenSSL on a full handshake: no CRL from the issuer (UNABLE_TO_GET_CRL) or one that has run out
      // (CRL_HAS_EXPIRED) refuses every client; a resumption must not be the way around that.
      if (!issuer?.revoked) {
        return { code: 'ERR_RESUMED_CRL_EXPIRED', message: `resumed session refused: no CRL from the CA that issued client certificate ${serial}` };
      }
      if (issuer.crlNextUpdate !== undefined && now > issuer.crlNextUpdate) {
        return {
          code: 'ERR_RESUMED_CRL_EXPIRED',
          message: `resumed session refused: the CRL of the CA that issued client certificate ${serial} expired on ${iso(issuer.crlNextUpdate)}`,
        };
      }
      if (issuer.revoked.has(facts.serial)) {
        return { code: 'ERR_RESUMED_CERT_REVOKED', message: `resumed session refused: client certificate ${serial} is revoked (sslCrl)` };
      }
    }
    return null;
  };
}
