/**
 * Authorization: which client identity may reach which target. Pure and precompiled once per configuration.
 */
import type { ProxyConfig } from '../config/types.js';
import { ReplyCode } from '../shared/codes.js';
import { formatHostPort } from '../config/proxySection.js';
import { compileGlob, matchGlob, type Glob } from './glob.js';

export type Decision =
  | { ok: true; addresses: string[] }
  | { ok: false; code: typeof ReplyCode.UNKNOWN_TARGET | typeof ReplyCode.NOT_ALLOWED; message: string };

interface CompiledRule {
  identity: Glob;
  targets: Glob[];
}

export class Authorizer {
  private readonly rules: CompiledRule[];
  private readonly addresses: Map<string, string[]>;

  constructor(config: Pick<ProxyConfig, 'allow' | 'servers'>) {
    this.rules = config.allow.map((r) => ({ identity: compileGlob(r.identity), targets: r.targets.map(compileGlob) }));
    this.addresses = new Map(
      [...config.servers.values()].map((s) => [s.name, s.addresses.map(formatHostPort)]),
    );
  }

  /** `identities`: the subject CN and the SAN DNS/URI entries; any of them may match a rule. */
  decide(identities: readonly string[], target: string): Decision {
    const addresses = this.addresses.get(target);
    if (!addresses) return { ok: false, code: ReplyCode.UNKNOWN_TARGET, message: `no server named "${target}"` };
    for (const rule of this.rules) {
      if (!rule.targets.some((t) => matchGlob(t, target))) continue;
      if (identities.some((id) => matchGlob(rule.identity, id))) return { ok: true, addresses };
    }
    const who = identities.length ? `"${identities[0]}"` : 'a client without identity';
    return { ok: false, code: ReplyCode.NOT_ALLOWED, message: `${who} may not reach "${target}"` };
  }
}
