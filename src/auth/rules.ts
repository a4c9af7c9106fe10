/**
 * Authorization: which client identity may reach which target. Pure and precompiled once per configuration.
 *
 * A rule's identity names the certificate field it matches (`cn:`, `dns:`, `uri:`; bare or `any:` for any of
 * them, see src/shared/identity.ts). Rules are tried in file order; within a rule the client's names in
 * certificate order (CN, then SAN DNS and URI). The first rule that lists the target and has a matching name
 * decides, and the decision says which rule (file:line and text) and which name matched.
 */
import type { AllowRule, ProxyConfig } from '../config/types.js';
import { formatHostPort } from '../shared/address.js';
import { ReplyCode } from '../shared/codes.js';
import type { Identity, IdentityField } from '../shared/identity.js';
import { truncate } from '../shared/printable.js';
import { compileGlob, matchGlob, type Glob } from './glob.js';

/** The rule that let a client through. */
export interface RuleRef {
  /** `<config file>:<line>` */
  where: string;
  /** The entry's value as written: `dns:*.plant.local data event`. */
  text: string;
}

export type Decision =
  | { ok: true; addresses: string[]; rule: RuleRef; matched: Identity }
  | { ok: false; code: typeof ReplyCode.UNKNOWN_TARGET | typeof ReplyCode.NOT_ALLOWED; message: string };

interface CompiledRule {
  field: IdentityField;
  identity: Glob;
  targets: Glob[];
  ref: RuleRef;
}

/** Longest client value quoted in a decline message (which goes to the client, the event log and the log). */
const QUOTE_MAX = 128;

const ruleRef = (r: AllowRule): RuleRef => ({ where: `${r.source.file}:${r.source.line}`, text: [r.identity, ...r.targets].join(' ') });

export class Authorizer {
  private readonly rules: CompiledRule[];
  private readonly addresses: Map<string, string[]>;

  constructor(config: Pick<ProxyConfig, 'allow' | 'servers'>) {
    this.rules = config.allow.map((r) => ({
      field: r.field,
      identity: compileGlob(r.glob),
      targets: r.targets.map(compileGlob),
      ref: ruleRef(r),
    }));
    this.addresses = new Map(
      [...config.servers.values()].map((s) => [s.name, s.addresses.map(formatHostPort)]),
    );
  }

  /** `identities`: the subject CN and the SAN DNS/URI entries, typed; a rule matches those of its field. */
  decide(identities: readonly Identity[], target: string): Decision {
    const addresses = this.addresses.get(target);
    if (!addresses) {
      return { ok: false, code: ReplyCode.UNKNOWN_TARGET, message: `no server named "${truncate(target, QUOTE_MAX)}"` };
    }
    for (const rule of this.rules) {
      if (!rule.targets.some((t) => matchGlob(t, target))) continue;
      const matched = identities.find((id) => (rule.field === 'any' || rule.field === id.kind) && matchGlob(rule.identity, id.value));
      if (matched) return { ok: true, addresses, rule: rule.ref, matched };
    }
    const who = identities[0] ? `"${truncate(identities[0].value, QUOTE_MAX)}"` : 'a client without identity';
    return { ok: false, code: ReplyCode.NOT_ALLOWED, message: `${who} may not reach "${truncate(target, QUOTE_MAX)}"` };
  }
}
