/**
 * The project CA's certificate revocation list: written by `mxproxy certs init` (empty) and `certs revoke`, read
 * by the proxy (`[proxy] sslCrl`). A v2 CRL with the CA's authority key identifier and a CRL number, PEM with
 * the "X509 CRL" label OpenSSL reads (the library's default label, "CRL", it does not).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { TlsMaterialError } from '../errors.js';
import { loadSigner, signingAlgorithm, withFinalNewline, type Issued } from './x509.js';

export const REVOCATION_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export interface RevokedEntry {
  /** Hex, as in the certificate. */
  serial: string;
  revokedAt: Date;
  reason: RevocationReason | undefined;
}

export interface CrlContents {
  entries: RevokedEntry[];
  /** The CRL number (cRLNumber extension); 0 when absent. */
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
}

const CRL_NUMBER_OID = '2.5.29.20';

/** Serials compare as numbers: "00A1" and "a1" are the same certificate. */
export function sameSerial(a: string, b: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/^0+(?=.)/, '');
  return norm(a) === norm(b);
}

/** DER INTEGER (non-negative) for the cRLNumber extension. */
function derInteger(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  if (body.length > 20) throw new TlsMaterialError('ERR_CERTS', 'CRL number too large'); // RFC 5280: at most 20 octets
  return Uint8Array.from([0x02, body.length, ...body]);
}

function crlNumberOf(crl: x509.X509Crl): bigint {
  const ext = crl.getExtension(CRL_NUMBER_OID);
  if (!ext) return 0n;
  const der = Buffer.from(ext.value);
  if (der[0] !== 0x02 || der[1] === undefined || der[1] + 2 !== der.length) throw new TlsMaterialError('ERR_CERTS', 'the CRL number cannot be read');
  return BigInt(`0x${der.subarray(2).toString('hex') || '0'}`);
}

const REASON_CODES: Record<RevocationReason, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
};

function reasonName(code: x509.X509CrlReason | undefined): RevocationReason | undefined {
  return REVOCATION_REASONS.find((r) => REASON_CODES[r] === code);
}

/** Signs a CRL listing `entries`, valid from now (less a little clock skew) until `nextUpdate`. */
export async function createCrl(ca: Issued, entries: readonly RevokedEntry[], opts: { number: bigint; nextUpdate: Date }): Promise<string> {
  const signer = await loadSigner(ca);
  const crl = await x509.X509CrlGenerator.create({
    issuer: signer.cert.subjectName, // the CA's own encoding: OpenSSL matches it against the certificate's issuer
    thisUpdate: new Date(Date.now() - 5 * 60 * 1000),
    nextUpdate: opts.nextUpdate,
    signingKey: signer.key,
    signingAlgorithm: signingAlgorithm(signer.key),
    extensions: [new x509.AuthorityKeyIdentifierExtension(signer.keyId), new x509.Extension(CRL_NUMBER_OID, false, derInteger(opts.number))],
    // "unspecified" is written as no reason at all (RFC 5280 5.3.1)
    entries: entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.revokedAt, reason: e.reason ? REASON_CODES[e.reason] : undefined })),
  });
  return withFinalNewline(x509.PemConverter.encode(crl.rawData, 'X509 CRL'));
}

/** Reads a CRL (PEM or DER) and checks that `ca` issued and signed it. Throws TlsMaterialError (ERR_CERTS). */
export async function readCrl(text: string | Buffer, ca: Issued): Promise<CrlContents> {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(typeof text === 'string' ? text.trim() : text);
  } catch (err) {
    throw new TlsMaterialError('ERR_CERTS', `the CRL cannot be parsed: ${(err as Error).message}`);
  }
  const signer = await loadSigner(ca);
  if (crl.issuer !== signer.cert.subject || !(await crl.verify({ publicKey: signer.cert }))) {
    throw new TlsMaterialError('ERR_CERTS', `the CRL was not issued by the CA "${signer.cert.subject}" (issuer "${crl.issuer}", or the signature does not verify)`);
  }
  return {
    entries: crl.entries.map((e) => ({ serial: e.serialNumber, revokedAt: e.revocationDate, reason: reasonName(e.reason) })),
    number: crlNumberOf(crl),
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
  };
}
