/**
 * Just enough DER to read what node:crypto does not report: a CA certificate's pathLen constraint, a CRL's
 * issuer, dates, signature and revoked serials, and what a resumed session is checked against (a certificate's
 * issuer, serial and validity). Kept here rather than loading the X.509 library, which costs a running proxy
 * about 20 MB (see cli/main.ts). Anything unexpected throws DerError; callers turn it into their own message.
 */
import { X509Certificate } from 'node:crypto';

import { DerError } from '../errors.js';

/** One element: its tag and where its header and contents lie in the buffer. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the contents. */
  body: number;
  /** Offset just past the contents. */
  end: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in X.509');
  let len = buf[offset + 1]!;
  let body = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported length encoding');
    if (body + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[body + i]!;
    body += n;
  }
  const end = body + len;
  if (end > limit) throw new DerError('element runs past its container');
  return { tag, start: offset, body, end };
}

/** The elements inside a constructed element, in order. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  if ((parent.tag & 0x20) === 0) throw new DerError(`element with tag 0x${parent.tag.toString(16)} is not constructed`);
  const out: Tlv[] = [];
  for (let at = parent.body; at < parent.end; ) {
    const t = readTlv(buf, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`${what}: unexpected structure`);
  return t;
}

export function oidText(buf: Uint8Array, t: Tlv): string {
  const arcs: number[] = [];
  let value = 0;
  for (let i = t.body; i < t.end; i++) {
    value = value * 128 + (buf[i]! & 0x7f);
    if ((buf[i]! & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** A small non-negative INTEGER (pathLen, version). */
function smallInteger(buf: Uint8Array, t: Tlv): number {
  if (t.end - t.body > 4 || (buf[t.body]! & 0x80) !== 0) throw new DerError('integer out of range');
  let n = 0;
  for (let i = t.body; i < t.end; i++) n = n * 256 + buf[i]!;
  return n;
}

function time(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(buf.subarray(t.body, t.end)).toString('latin1');
  const m =
    t.tag === TAG.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : t.tag === TAG.GENERALIZED_TIME
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s)
        : null;
  if (!m) throw new DerError(`unsupported time "${s}"`);
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const year = t.tag === TAG.UTC_TIME ? (y < 50 ? 2000 + y : 1900 + y) : y;
  return new Date(Date.UTC(year, mo - 1, d, h, mi, se));
}

const NAME_ATTRIBUTES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
};

/** A Name as "CN=…, O=…" for messages (not for comparison: compare the DER bytes). */
export function nameText(buf: Uint8Array, name: Tlv): string {
  const parts: string[] = [];
  for (const rdn of childrenOf(buf, name)) {
    for (const atv of childrenOf(buf, rdn)) {
      const [type, value] = childrenOf(buf, atv);
      if (!type || !value) continue;
      const oid = oidText(buf, type);
      parts.push(`${NAME_ATTRIBUTES[oid] ?? oid}=${Buffer.from(buf.subarray(value.body, value.end)).toString('utf8')}`);
    }
  }
  return parts.join(', ');
}

/** The TBSCertificate's fields, by name, for a certificate's DER. */
function tbsFields(der: Uint8Array): { serial: Tlv; issuer: Tlv; validity: Tlv; subject: Tlv; extensions: Tlv | undefined } {
  const cert = expect(readTlv(der, 0), TAG.SEQUENCE, 'certificate');
  const tbs = expect(childrenOf(der, cert)[0], TAG.SEQUENCE, 'tbsCertificate');
  const f = childrenOf(der, tbs);
  const v = f[0]?.tag === 0xa0 ? 1 : 0; // [0] version, absent for v1
  return {
    serial: expect(f[v], TAG.INTEGER, 'serialNumber'),
    issuer: expect(f[v + 2], TAG.SEQUENCE, 'issuer'),
    validity: expect(f[v + 3], TAG.SEQUENCE, 'validity'),
    subject: expect(f[v + 4], TAG.SEQUENCE, 'subject'),
    extensions: f.find((t) => t.tag === 0xa3),
  };
}

/** A serial number as lowercase hex without leading zeros ("0" for zero): one spelling per certificate. */
function serialHex(buf: Uint8Array, t: Tlv): string {
  return Buffer.from(buf.subarray(t.body, t.end)).toString('hex').replace(/^0+(?=.)/, '');
}

/** Normalises a serial written as hex (Node's "1A0B…", a CRL entry's "00a1…") to serialHex's spelling. */
export function normalSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

export interface CertificateFacts {
  /** DER of the issuer Name (compare with a CA's subjectDer). */
  issuer: Buffer;
  /** normalSerial spelling. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Issuer, serial and validity of a certificate's DER (`PeerCertificate.raw`). */
export function certificateFacts(der: Uint8Array): CertificateFacts {
  const { serial, issuer, validity } = tbsFields(der);
  const [notBefore, notAfter] = childrenOf(der, validity);
  if (!notBefore || !notAfter) throw new DerError('validity: unexpected structure');
  return {
    issuer: Buffer.from(der.subarray(issuer.start, issuer.end)),
    serial: serialHex(der, serial),
    notBefore: time(der, notBefore),
    notAfter: time(der, notAfter),
  };
}

/** Context tag [3] (constructed): the peer certificate in OpenSSL's SSL_SESSION_ASN1 (ssl/ssl_asn1.c). */
const SESSION_PEER = 0xa3;

/**
 * The peer certificate's DER inside a serialized TLS session (`TLSSocket.getSession()`): OpenSSL's
 * SSL_SESSION_ASN1 is a SEQUENCE whose optional `[3] EXPLICIT X509` field holds it. Undefined when the session
 * has none or cannot be read: the caller then asks Node for the certificate the dearer way.
 */
export function sessionPeerCertificate(session: Uint8Array): Uint8Array | undefined {
  try {
    const top = readTlv(session, 0);
    if (top.tag !== TAG.SEQUENCE) return undefined;
    for (let at = top.body; at < top.end; ) {
      const t = readTlv(session, at, top.end);
      if (t.tag === SESSION_PEER) {
        const cert = readTlv(session, t.body, t.end);
        return cert.tag === TAG.SEQUENCE ? session.subarray(cert.start, cert.end) : undefined;
      }
      at = t.end;
    }
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
  }
  return undefined;
}

const BASIC_CONSTRAINTS = '2.5.29.19';

/** basicConstraints of a certificate: `pathLen` undefined means no limit. Undefined when the extension is absent. */
export function basicConstraints(cert: X509Certificate): { ca: boolean; pathLen: number | undefined } | undefined {
  const der = cert.raw;
  const { extensions } = tbsFields(der);
  if (!extensions) return undefined;
  const list = expect(childrenOf(der, extensions)[0], TAG.SEQUENCE, 'extensions');
  for (const ext of childrenOf(der, list)) {
    const [oid, ...rest] = childrenOf(der, ext);
    if (!oid || oidText(der, expect(oid, TAG.OID, 'extension')) !== BASIC_CONSTRAINTS) continue;
    const octets = expect(rest.at(-1), TAG.OCTET_STRING, 'basicConstraints');
    const value = expect(readTlv(der, octets.body, octets.end), TAG.SEQUENCE, 'basicConstraints');
    let ca = false;
    let pathLen: number | undefined;
    for (const t of childrenOf(der, value)) {
      if (t.tag === TAG.BOOLEAN) ca = der[t.body] !== 0;
      else if (t.tag === TAG.INTEGER) pathLen = smallInteger(der, t);
    }
    return { ca, pathLen };
  }
  return undefined;
}

/** The subject Name of a certificate, DER, for comparing with a CRL's issuer. */
export function subjectDer(cert: X509Certificate): Buffer {
  const der = cert.raw;
  const { subject } = tbsFields(der);
  return der.subarray(subject.start, subject.end);
}

export interface CrlInfo {
  /** DER of the issuer Name. */
  issuer: Buffer;
  issuerText: string;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** The serials it revokes: lower-case hex without leading zeros (see normalSerial). */
  revoked: string[];
  /** The signed part and its signature, to check against the issuing CA's key. */
  tbs: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
}

/** Reads a CRL (CertificateList, RFC 5280 5.1). */
export function readCrl(der: Buffer): CrlInfo {
  const list = expect(readTlv(der, 0), TAG.SEQUENCE, 'CRL');
  if (list.end !== der.length) throw new DerError('trailing bytes after the CRL');
  const [tbs, alg, sig] = childrenOf(der, list);
  const tbsT = expect(tbs, TAG.SEQUENCE, 'tbsCertList');
  const algId = childrenOf(der, expect(alg, TAG.SEQUENCE, 'signatureAlgorithm'))[0];
  const sigT = expect(sig, TAG.BIT_STRING, 'signature');
  const f = childrenOf(der, tbsT);
  const v = f[0]?.tag === TAG.INTEGER ? 1 : 0; // version, optional
  const issuer = expect(f[v + 1], TAG.SEQUENCE, 'issuer');
  const thisUpdate = f[v + 2];
  if (!thisUpdate) throw new DerError('thisUpdate: missing');
  const next = f[v + 3];
  const hasNext = next !== undefined && (next.tag === TAG.UTC_TIME || next.tag === TAG.GENERALIZED_TIME);
  // revokedCertificates is optional (absent when empty); crlExtensions [0] follows it.
  const entries = f[v + (hasNext ? 4 : 3)];
  const revoked: string[] = [];
  if (entries && entries.tag === TAG.SEQUENCE) {
    for (const entry of childrenOf(der, entries)) {
      revoked.push(serialHex(der, expect(childrenOf(der, expect(entry, TAG.SEQUENCE, 'revoked entry'))[0], TAG.INTEGER, 'revoked serial')));
    }
  }
  return {
    issuer: der.subarray(issuer.start, issuer.end),
    issuerText: nameText(der, issuer),
    thisUpdate: time(der, thisUpdate),
    nextUpdate: hasNext ? time(der, next) : undefined,
    tbs: der.subarray(tbsT.start, tbsT.end),
    signatureAlgorithm: oidText(der, expect(algId, TAG.OID, 'signatureAlgorithm')),
    signature: der.subarray(sigT.body + 1, sigT.end), // the first byte counts unused bits: 0 for signatures
    revoked,
  };
}
