/**
 * Certificate generation for the project's own PKI: one CA, server and client leaf certificates.
 *
 * Built on @peculiar/x509 over Node's WebCrypto (no openssl, no native add-ons). Keys are EC P-256 by default;
 * RSA 2048/3072 for peers that cannot do ECDSA. Everything is DER-correct enough for Node's `tls` (mutual TLS)
 * and `openssl verify`.
 */
import 'reflect-metadata'; // @peculiar/x509 uses tsyringe, which needs the Reflect metadata API before it loads
import * as x509 from '@peculiar/x509';
import { X509Certificate as NodeX509, createPrivateKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { TlsMaterialError } from '../errors.js';

type CryptoKey = webcrypto.CryptoKey;

// Node's webcrypto object is a complete WebCrypto implementation, but its TypeScript type (node:crypto's
// webcrypto.Crypto) is not the DOM `Crypto` type @peculiar/x509 declares, so it needs this one cast.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type KeyAlgorithm = 'ec-p256' | 'rsa-2048' | 'rsa-3072';

/** A certificate and its private key, both PEM; the key is PKCS#8 ("BEGIN PRIVATE KEY"). */
export interface Issued {
  certPem: string;
  keyPem: string;
}

/**
 * Validity window. Explicit dates win over `validityDays`. Default notBefore is now − 5 min (clock skew
 * between hosts); notAfter defaults to (notBefore given ? notBefore : now) + validityDays.
 */
export interface ValidityOptions {
  validityDays?: number;
  notBefore?: Date;
  notAfter?: Date;
}

export interface CaOptions extends ValidityOptions {
  commonName: string;
  algorithm?: KeyAlgorithm;
}

export interface LeafOptions extends ValidityOptions {
  kind: 'server' | 'client';
  commonName: string;
  dns?: string[];
  ips?: string[];
  uris?: string[];
  algorithm?: KeyAlgorithm;
}

/** Bad input to certificate generation, or a CA that cannot sign: ERR_CERTS. */
const certsError = (message: string, options?: ErrorOptions) => new TlsMaterialError('ERR_CERTS', message, options);

export const CA_VALIDITY_DAYS = 3650;
export const LEAF_VALIDITY_DAYS = 825;
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const SHA256 = 'SHA-256';

type ImportParams = webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;

function keyGenParams(algorithm: KeyAlgorithm): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams {
  switch (algorithm) {
    case 'ec-p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'rsa-2048':
    case 'rsa-3072':
      return {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: algorithm === 'rsa-2048' ? 2048 : 3072,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: SHA256,
      };
    default:
      throw certsError(`unknown key algorithm "${String(algorithm)}" (expected ec-p256, rsa-2048 or rsa-3072)`);
  }
}

/** The signature algorithm a key signs with: ECDSA/SHA-256 for EC, RSASSA-PKCS1-v1_5/SHA-256 for RSA. */
export function signingAlgorithm(key: webcrypto.CryptoKey): webcrypto.EcdsaParams | webcrypto.Algorithm {
  return key.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: SHA256 } : { name: 'RSASSA-PKCS1-v1_5' };
}

async function generateKeys(algorithm: KeyAlgorithm): Promise<webcrypto.CryptoKeyPair> {
  const keys = await webcrypto.subtle.generateKey(keyGenParams(algorithm), true, ['sign', 'verify']);
  return keys as webcrypto.CryptoKeyPair;
}

/** PEM files end with a newline: `cat ca-old.pem ca-new.pem > bundle.pem` must give two certificates. */
export function withFinalNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

async function exportPkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return withFinalNewline(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

/** A random, positive, 16-byte serial number (hex), with a non-zero first byte so DER keeps all 16 bytes. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex');
}

function resolveValidity(opts: ValidityOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const days = opts.validityDays ?? defaultDays;
  if (!Number.isFinite(days) || days <= 0) throw certsError(`validityDays must be a positive number, got ${days}`);
  for (const [name, d] of [['notBefore', opts.notBefore], ['notAfter', opts.notAfter]] as const) {
    if (d !== undefined && (!(d instanceof Date) || Number.isNaN(d.getTime()))) {
      throw certsError(`${name} is not a valid date`);
    }
  }
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  const notAfter = opts.notAfter ?? new Date((opts.notBefore?.getTime() ?? now) + days * DAY_MS);
  // certificates carry whole seconds; compare at that precision
  if (Math.floor(notAfter.getTime() / 1000) <= Math.floor(notBefore.getTime() / 1000)) {
    throw certsError(`notAfter (${notAfter.toISOString()}) must be after notBefore (${notBefore.toISOString()})`);
  }
  return { notBefore, notAfter };
}

function checkCommonName(commonName: string): void {
  if (typeof commonName !== 'string' || commonName.trim() === '') throw certsError('commonName must be a non-empty string');
  if (commonName.length > 64) throw certsError(`commonName is longer than 64 characters: "${commonName}"`);
}

/**
 * A subject name holding only CN, as a UTF8String taken verbatim (the plain-string JSON form would run it through
 * DN-string unescaping, mangling commas and quotes).
 */
function cnName(commonName: string): x509.Name {
  return new x509.Name([{ CN: [{ utf8String: commonName }] }]);
}

const IA5 = /^[\x20-\x7e]+$/;

function checkDnsName(name: string): string {
  if (typeof name !== 'string' || !IA5.test(name) || /\s/.test(name)) {
    throw certsError(`invalid DNS name for subjectAltName: "${name}" (ASCII, no spaces; use punycode for IDNs)`);
  }
  return name;
}

function checkUri(uri: string): string {
  if (typeof uri !== 'string' || !IA5.test(uri) || /\s/.test(uri)) throw certsError(`invalid URI for subjectAltName: "${uri}"`);
  try {
    new URL(uri);
  } catch {
    throw certsError(`invalid URI for subjectAltName: "${uri}" (needs a scheme, e.g. spiffe://plant/hmi)`);
  }
  return uri;
}

/**
 * An IP address in a form @peculiar/x509's parser reliably handles: dotted IPv4, or IPv6 as eight hex groups
 * (which also covers IPv4-embedded forms such as ::ffff:10.0.0.1).
 */
function canonicalIp(ip: string): string {
  const family = typeof ip === 'string' && !ip.includes('%') ? isIP(ip) : 0;
  if (family === 4) return ip.split('.').map((p) => String(Number(p))).join('.');
  if (family !== 6) throw certsError(`invalid IP address for subjectAltName: "${ip}"`);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...fill, ...tailGroups];
  if (groups.length !== 8) throw certsError(`invalid IP address for subjectAltName: "${ip}"`);
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

// ---------------------------------------------------------------------------------------------------------------

/** Creates a self-signed CA: basicConstraints critical CA:TRUE pathlen:0, keyUsage critical keyCertSign+cRLSign. */
export async function createCa(opts: CaOptions): Promise<Issued> {
  checkCommonName(opts.commonName);
  const algorithm = opts.algorithm ?? 'ec-p256';
  const { notBefore, notAfter } = resolveValidity(opts, CA_VALIDITY_DAYS);
  const keys = await generateKeys(algorithm);
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: cnName(opts.commonName),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
  return { certPem: withFinalNewline(cert.toString('pem')), keyPem: await exportPkcs8Pem(keys.privateKey) };
}

/** A usable CA: its certificate, its signing key and key identifier (for issuing certificates and CRLs). */
export interface Signer {
  cert: x509.X509Certificate;
  key: CryptoKey;
  keyId: string;
}

function importParamsFor(key: KeyObject): ImportParams {
  if (key.asymmetricKeyType === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: SHA256 };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const named = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : null;
    if (named) return { name: 'ECDSA', namedCurve: named };
    throw certsError(`CA key uses unsupported EC curve ${curve ?? '(unknown)'} (supported: P-256, P-384, P-521)`);
  }
  throw certsError(`CA key type ${key.asymmetricKeyType ?? '(unknown)'} is not supported (EC or RSA only)`);
}

/** Parses and checks the CA pair: a CA certificate, allowed to sign certificates, whose key matches. */
export async function loadSigner(ca: Issued): Promise<Signer> {
  let nodeCert: NodeX509;
  let cert: x509.X509Certificate;
  try {
    nodeCert = new NodeX509(ca.certPem);
    cert = new x509.X509Certificate(ca.certPem);
  } catch (err) {
    throw certsError(`CA certificate cannot be parsed: ${(err as Error).message}`, { cause: err });
  }
  if (!nodeCert.ca) throw certsError(`"${nodeCert.subject.replace(/\n/g, ', ')}" is not a CA certificate`);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw certsError('CA certificate keyUsage does not allow keyCertSign');
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(ca.keyPem); // PKCS#8, PKCS#1 or SEC1 PEM
  } catch (err) {
    throw certsError(`CA private key cannot be parsed: ${(err as Error).message}`, { cause: err });
  }
  if (!nodeCert.checkPrivateKey(keyObject)) throw certsError('CA private key does not match the CA certificate');
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const key = await webcrypto.subtle.importKey('pkcs8', der, importParamsFor(keyObject), false, ['sign']);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const keyId = ski ? ski.keyId : Buffer.from(await cert.publicKey.getKeyIdentifier()).toString('hex');
  return { cert, key: key as CryptoKey, keyId };
}

/**
 * Issues a server or client certificate signed by `ca`. SAN holds the given DNS/IP/URI entries; a server
 * certificate with neither dns nor ips gets DNS=<commonName>.
 */
export async function issueCertificate(ca: Issued, opts: LeafOptions): Promise<Issued> {
  if (opts.kind !== 'server' && opts.kind !== 'client') {
    throw certsError(`kind must be "server" or "client", got "${String(opts.kind)}"`);
  }
  checkCommonName(opts.commonName);
  const algorithm = opts.algorithm ?? 'ec-p256';
  const { notBefore, notAfter } = resolveValidity(opts, LEAF_VALIDITY_DAYS);

  const dns = unique((opts.dns ?? []).map(checkDnsName));
  const ips = unique((opts.ips ?? []).map(canonicalIp));
  const uris = unique((opts.uris ?? []).map(checkUri));
  if (opts.kind === 'server' && dns.length === 0 && ips.length === 0) {
    try {
      dns.push(checkDnsName(opts.commonName));
    } catch {
      throw certsError(`server commonName "${opts.commonName}" is not a DNS name; pass dns or ips for the SAN`);
    }
  }
  const san: x509.JsonGeneralNames = [
    ...dns.map((value) => ({ type: 'dns' as const, value })),
    ...ips.map((value) => ({ type: 'ip' as const, value })),
    ...uris.map((value) => ({ type: 'url' as const, value })),
  ];

  const signer = await loadSigner(ca);
  const keys = await generateKeys(algorithm);
  const usage =
    x509.KeyUsageFlags.digitalSignature | (algorithm.startsWith('rsa') ? x509.KeyUsageFlags.keyEncipherment : 0);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    new x509.ExtendedKeyUsageExtension([opts.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    new x509.AuthorityKeyIdentifierExtension(signer.keyId),
  ];
  if (san.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(san));

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: cnName(opts.commonName),
    issuer: signer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: signer.key,
    signingAlgorithm: signingAlgorithm(signer.key),
    extensions,
  });
  return { certPem: withFinalNewline(cert.toString('pem')), keyPem: await exportPkcs8Pem(keys.privateKey) };
}

// ---------------------------------------------------------------------------------------------------------------

export interface CertificateDescription {
  /** e.g. "CN=plc-gateway" (RDNs joined with ", ") */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** uppercase hex, as node:crypto reports it */
  serial: string;
  /** e.g. ["DNS:localhost", "IP:127.0.0.1", "URI:spiffe://plant/hmi"] */
  san: string[];
  isCa: boolean;
  /** SHA-256 fingerprint, colon-separated uppercase hex */
  fingerprint256: string;
}

/**
 * Splits node:crypto's subjectAltName string ("DNS:a, IP Address:1.2.3.4, URI:…"). Node JSON-quotes values that
 * contain delimiters (`DNS:"a, b"`), so split on ", " only outside quotes.
 */
function parseSubjectAltName(text: string | undefined): string[] {
  if (!text) return [];
  const entries: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && quoted) {
      current += ch + (text[i + 1] ?? '');
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === ',' && text[i + 1] === ' ') {
      entries.push(current);
      current = '';
      i++;
      continue;
    }
    current += ch;
  }
  if (current !== '') entries.push(current);
  return entries.map((entry) => {
    const colon = entry.indexOf(':');
    const type = entry.slice(0, colon);
    let value = entry.slice(colon + 1);
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        /* keep as printed */
      }
    }
    return `${type === 'IP Address' ? 'IP' : type}:${value}`;
  });
}

/** Summary of a PEM certificate (the first one in `pem`), via node:crypto's X509Certificate. */
export function describeCertificate(pem: string): CertificateDescription {
  const cert = new NodeX509(pem);
  return {
    subject: cert.subject.split('\n').join(', '),
    issuer: cert.issuer.split('\n').join(', '),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber,
    san: parseSubjectAltName(cert.subjectAltName),
    isCa: cert.ca,
    fingerprint256: cert.fingerprint256,
  };
}
