/**
 * A client's names, typed by the certificate field they come from, and the field an allow rule names.
 *
 *   cn   the subject CN (a certificate with more than one CN is refused at TLS time)
 *   dns  a SAN DNS entry
 *   uri  a SAN URI entry (spiffe://plant/hmi-1)
 *
 * The TLS_OK event carries them in its `identities: string[]` as `<kind>:<value>` — `cn:hmi-01`,
 * `dns:hmi-01.plant.local`, `uri:spiffe://plant/hmi-01` — CN first, then the SAN entries in certificate order.
 * The kind ends at the first colon, so a value may hold colons of its own (`cn:a:b` is the CN `a:b`). Its
 * `identity` stays the bare first value (the CN, else the first SAN name), as logs show it. Event logs written
 * before the kinds existed hold bare values there; replay does not authorize, so they still replay.
 *
 * An allow rule's identity is `cn:<glob>`, `dns:<glob>`, `uri:<glob>`, `any:<glob>` or a bare `<glob>`, which
 * is `any:`: the glob may match the CN, a SAN DNS or a SAN URI entry. Prefixes are case-insensitive
 * (`DNS:` as `mxproxy certs show` prints SANs). A bare glob that starts like another prefix (`word:`, not
 * followed by `//` as in spiffe://) is an error, so that a typo (`nds:`) cannot silently widen a rule into one
 * that matches a literal CN; to match a name that starts so, write `any:` before it.
 */

export type IdentityKind = 'cn' | 'dns' | 'uri';
export const IDENTITY_KINDS: readonly IdentityKind[] = ['cn', 'dns', 'uri'];

export interface Identity {
  kind: IdentityKind;
  value: string;
}

/** `cn:hmi-01`: an identity inside TLS_OK's `identities`, and in log lines (`matched=dns:hmi.plant.local`). */
export const encodeIdentity = (id: Identity): string => `${id.kind}:${id.value}`;

/** The inverse of encodeIdentity; undefined for a string without a known kind (an old event log's bare value). */
export function decodeIdentity(s: string): Identity | undefined {
  const colon = s.indexOf(':');
  if (colon < 0) return undefined;
  const kind = s.slice(0, colon);
  return (IDENTITY_KINDS as readonly string[]).includes(kind) ? { kind: kind as IdentityKind, value: s.slice(colon + 1) } : undefined;
}

/** The certificate field an allow rule matches: one kind, or any of them. */
export type IdentityField = IdentityKind | 'any';

export type IdentityPattern = { ok: true; field: IdentityField; glob: string } | { ok: false; message: string };

const FIELDS: readonly IdentityField[] = ['cn', 'dns', 'uri', 'any'];

/** Splits an allow rule's identity into its field and glob, or says what is wrong with the prefix. */
export function parseIdentityPattern(text: string): IdentityPattern {
  const m = /^([A-Za-z][A-Za-z0-9_-]*):(?!\/\/)/.exec(text);
  if (!m) return { ok: true, field: 'any', glob: text };
  const name = m[1]!;
  const glob = text.slice(m[0].length);
  const field = FIELDS.find((f) => f === name.toLowerCase());
  if (!field) {
    return {
      ok: false,
      message:
        `unknown identity field "${name}:" in "${text}": use cn:, dns: or uri: (or a bare glob for any of them; ` +
        `write any:${text} to match names that start with "${name}:")`,
    };
  }
  if (glob === '') return { ok: false, message: `"${text}" names the field but no glob: e.g. ${field}:hmi-*` };
  return { ok: true, field, glob };
}
