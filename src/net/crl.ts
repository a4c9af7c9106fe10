/**
 * The revocation list (`[proxy] sslCrl`), checked at start the way OpenSSL will use it on every handshake:
 * with a CRL set, Node has OpenSSL check each certificate of a chain against the CRL of its issuer
 * (X509_V_FLAG_CRL_CHECK | CRL_CHECK_ALL). A CA without a CRL, an expired CRL or one with a bad signature
 * would refuse every client (UNABLE_TO_GET_CRL, CRL_HAS_EXPIRED, CRL_SIGNATURE_FAILURE): that is refused here,
 * at start, with the file and the CA named, instead.
 */
import { verify, type X509Certificate } from 'node:crypto';
import { DerError, TlsMaterialError, type CrlErrorCode } from '../errors.js';
import { readCrl, subjectDer, type CrlInfo } from './der.js';

const crlError = (message: string, code: CrlErrorCode): TlsMaterialError => new TlsMaterialError(code, message);


const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/g;
const DAY_MS = 24 * 60 * 60 * 1000;
/** A CRL that expires sooner is announced at start: when it does, every client is refused. */
export const CRL_EXPIRY_WARNING_DAYS = 30;

/** Signature algorithms whose CRL signature is checked here (hash for crypto.verify); others are left to OpenSSL. */
const SIGNATURE_HASH: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519
};

const subjectOf = (cert: X509Certificate): string => cert.subject.replace(/\n/g, ', ');

function signedBy(crl: CrlInfo, ca: X509Certificate): boolean | 'unchecked' {
  const hash = SIGNATURE_HASH[crl.signatureAlgorithm];
  if (hash === undefined) return 'unchecked';
  try {
    return verify(hash, crl.tbs, ca.publicKey, crl.signature);
  } catch {
    return false;
  }
}

export interface CheckedCrls {
  /** One PEM block per CRL, as Node's `crl` option needs them. */
  crls: string[];
  warnings: string[];
}

/**
 * Checks the CRL file's text against the CA certificates (`anchors`, from the CA file): every CRL parses, is
 * issued and signed by one of them and is current; every CA has one. Throws TlsMaterialError (ERR_CRL_…).
 */
export function checkCrls(pem: string, file: string, anchors: X509Certificate[], caFile: string, now = new Date()): CheckedCrls {
  const blocks = [...pem.matchAll(PEM_CRL)];
  if (blocks.length === 0) {
    const hint = /-----BEGIN CRL-----/.test(pem) ? ' (it says "BEGIN CRL": OpenSSL needs "BEGIN X509 CRL")' : '';
    throw crlError(`${file}: no PEM CRL ("-----BEGIN X509 CRL-----") found${hint}`, 'ERR_CRL_INVALID');
  }
  const covered = new Set<X509Certificate>();
  const warnings: string[] = [];
  const subjects = anchors.map((ca) => ({ ca, der: subjectDer(ca) }));
  blocks.forEach((block, i) => {
    const which = blocks.length > 1 ? `${file}: CRL #${i + 1}` : file;
    let crl: CrlInfo;
    try {
      crl = readCrl(Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64'));
    } catch (err) {
      if (!(err instanceof DerError)) throw err;
      throw crlError(`${which} cannot be parsed (${err.message})`, 'ERR_CRL_INVALID');
    }
    const named = subjects.filter((s) => s.der.equals(crl.issuer)).map((s) => s.ca);
    if (named.length === 0) {
      throw crlError(`${which} is issued by "${crl.issuerText}", which is not a CA in ${caFile}`, 'ERR_CRL_INVALID');
    }
    // Two CAs of one name (a CA renewed under the same name): the CRL belongs to the one whose key signed it.
    const issuer = named.find((ca) => signedBy(crl, ca) !== false);
    if (!issuer) {
      throw crlError(`${which}: the signature does not verify with the key of "${crl.issuerText}" in ${caFile}`, 'ERR_CRL_INVALID');
    }
    if (crl.thisUpdate.getTime() > now.getTime()) {
      throw crlError(`${which} is not valid before ${crl.thisUpdate.toISOString()} (is this host's clock right?)`, 'ERR_CRL_INVALID');
    }
    if (crl.nextUpdate && crl.nextUpdate.getTime() <= now.getTime()) {
      throw crlError(
        `${which} (CA "${subjectOf(issuer)}") expired on ${crl.nextUpdate.toISOString()}: every client would be refused ` +
          '(CRL_HAS_EXPIRED); write a new one with `mxproxy certs revoke` or your CA tool',
        'ERR_CRL_EXPIRED',
      );
    }
    if (crl.nextUpdate && crl.nextUpdate.getTime() - now.getTime() < CRL_EXPIRY_WARNING_DAYS * DAY_MS) {
      warnings.push(
        `${which} (CA "${subjectOf(issuer)}") expires on ${crl.nextUpdate.toISOString()}: from then on every client is ` +
          'refused (CRL_HAS_EXPIRED) until a new CRL is in place and the proxy reloaded (SIGHUP) or restarted',
      );
    }
    covered.add(issuer);
  });
  const missing = anchors.filter((ca) => !covered.has(ca));
  if (missing.length > 0) {
    throw crlError(
      `${file} has no CRL from ${missing.map((ca) => `"${subjectOf(ca)}"`).join(', ')} (in ${caFile}): with a CRL set, ` +
        'every CA in the CA file needs one, or its clients are refused (UNABLE_TO_GET_CRL)',
      'ERR_CRL_MISSING',
    );
  }
  return { crls: blocks.map((b) => `${b[0]}\n`), warnings };
}
