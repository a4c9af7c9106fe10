/**
 * Authorization: which client identity may reach which target. Pure and precompiled once per configuration.
 */
import type { ProxyConfig } from '../config/types.js';
import { formatHostPort } from '../shared/address.js';
import { ReplyCode } from '../shared/codes.js';

/**
 * A glob where `*` matches any run of characters (also `/` and `:`, since identities are CNs, DNS names and
 * URIs such as spiffe://plant/hmi-1) and `?` one character. Path-oriented glob libraries treat `/` specially,
 * which is wrong here, hence these few lines.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(re + '$', 's');
}

export type Decision =
  | { ok: true; addresses: string[] }
  | { ok: false; code: typeof ReplyCode.UNKNOWN_TARGET | typeof ReplyCode.NOT_ALLOWED; message: string };

interface CompiledRule {
  identity: RegExp;
  targets: RegExp[];
}

export class Authorizer {
  private readonly rules: CompiledRule[];
  private readonly addresses: Map<string, string[]>;

  constructor(config: Pick<ProxyConfig, 'allow' | 'servers'>) {
    this.rules = config.allow.map((r) => ({ identity: globToRegExp(r.identity), targets: r.targets.map(globToRegExp) }));
    this.addresses = new Map(
      [...config.servers.values()].map((s) => [s.name, s.addresses.map(formatHostPort)]),
    );
  }

  /** `identities`: the subject CN and the SAN DNS/URI entries; any of them may match a rule. */
  decide(identities: readonly string[], target: string): Decision {
    const addresses = this.addresses.get(target);
    if (!addresses) return { ok: false, code: ReplyCode.UNKNOWN_TARGET, message: `no server named "${target}"` };
    for (const rule of this.rules) {
      if (!rule.targets.some((t) => t.test(target))) continue;
      if (identities.some((id) => rule.identity.test(id))) return { ok: true, addresses };
    }
    const who = identities.length ? `"${identities[0]}"` : 'a client without identity';
    return { ok: false, code: ReplyCode.NOT_ALLOWED, message: `${who} may not reach "${target}"` };
  }
}
