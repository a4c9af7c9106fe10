/**
 * A client's identity from its verified certificate: the subject CN, then the SAN DNS and URI entries.
 * The first one is the identity shown in logs; rules may match any of them.
 */
import type { X509Certificate } from 'node:crypto';

/** Splits Node's `subjectaltname` string ("DNS:a, URI:b, IP Address:c"); values with special characters
 * come JSON-quoted since Node 17, so quotes are honoured. */
export function parseSubjectAltName(san: string | undefined): { type: string; value: string }[] {
  if (!san) return [];
  const out: { type: string; value: string }[] = [];
  const re = /(DNS|URI|IP Address|email|othername|DirName|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(san)) !== null && m[0].length > 0) {
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        /* keep it as written */
      }
    }
    out.push({ type: m[1]!, value });
  }
  return out;
}

/** `\\,` → `,` and `\\2C` → `,` (hex pairs are UTF-8 bytes). */
export function unescapeDn(value: string): string {
  if (!value.includes('\\')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\\' && i + 1 < value.length) {
      const hex = value.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(value[++i]!, 'utf8'));
      }
    } else {
      bytes.push(...Buffer.from(ch, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Identities of a verified peer certificate. Reads the X509Certificate's subject and SAN strings:
 * cheaper per connection than getPeerCertificate(), which also computes fingerprints and copies the DER.
 */
export function identitiesOf(cert: X509Certificate | undefined | null): string[] {
  if (!cert) return [];
  const ids: string[] = [];
  // subject is one "KEY=value" per line, special characters backslash-escaped (RFC 4514 style)
  for (const line of cert.subject.split('\n')) {
    if (!line.startsWith('CN=')) continue;
    const value = unescapeDn(line.slice(3));
    if (value) ids.push(value);
  }
  for (const { type, value } of parseSubjectAltName(cert.subjectAltName)) {
    if ((type === 'DNS' || type === 'URI') && !ids.includes(value)) ids.push(value);
  }
  return ids;
}
