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
import type { ConfigSnapshot } from '../shared/events.js';
import { decodeIdentity, encodeIdentity, parseIdentityPattern, type Identity, type IdentityField } from '../shared/identity.js';
import { PRINTABLE_MAX, truncate } from '../shared/printable.js';
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
  | {
      ok: false;
      code: typeof ReplyCode.UNKNOWN_TARGET | typeof ReplyCode.NOT_ALLOWED;
      /** For the client. */
      message: string;
      /** Why, for the event log and the operator: which names, which target, how many rules were checked. */
      why: string;
    };

/** An allow rule before compilation, from a parsed config or from a config snapshot in an event log. */
interface RuleSpec {
  field: IdentityField;
  glob: string;
  targets: readonly string[];
  ref: RuleRef;
}

/** The rules and servers an Authorizer is made from, already in snapshot form (`host:port` addresses). */
export interface AuthorizerSpec {
  rules: RuleSpec[];
  addresses: ReadonlyMap<string, string[]>;
}

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

  constructor(config: Pick<ProxyConfig, 'allow' | 'servers'> | AuthorizerSpec) {
    const spec: AuthorizerSpec =
      'rules' in config
        ? config
        : {
            rules: config.allow.map((r) => ({ field: r.field, glob: r.glob, targets: r.targets, ref: ruleRef(r) })),
            addresses: new Map([...config.servers.values()].map((s) => [s.name, s.addresses.map(formatHostPort)])),
          };
    this.rules = spec.rules.map((r) => ({ field: r.field, identity: compileGlob(r.glob), targets: r.targets.map(compileGlob), ref: r.ref }));
    this.addresses = new Map(spec.addresses);
  }

  /**
   * The Authorizer of a config snapshot (an event log's CONFIG_LOADED): replay decides each request again with
   * it. A rule whose identity does not parse (a hand-edited log) matches nothing.
   */
  static fromSnapshot(snapshot: Pick<ConfigSnapshot, 'allow' | 'servers'>): Authorizer {
    const rules: RuleSpec[] = [];
    for (const r of snapshot.allow) {
      const pattern = parseIdentityPattern(r.identity);
      if (!pattern.ok) continue;
      rules.push({ field: pattern.field, glob: pattern.glob, targets: r.targets, ref: { where: r.where, text: [r.identity, ...r.targets].join(' ') } });
    }
    return new Authorizer({ rules, addresses: new Map(snapshot.servers.map((s) => [s.name, [...s.addresses]])) });
  }

  /** `identities`: the subject CN and the SAN DNS/URI entries, typed; a rule matches those of its field. */
  decide(identities: readonly Identity[], target: string): Decision {
    const addresses = this.addresses.get(target);
    const quotedTarget = truncate(target, QUOTE_MAX);
    if (!addresses) {
      return {
        ok: false,
        code: ReplyCode.UNKNOWN_TARGET,
        message: `no server named "${quotedTarget}"`,
        why: `no server named "${quotedTarget}" (servers: ${this.addresses.size})`,
      };
    }
    let listing = 0;
    for (const rule of this.rules) {
      if (!rule.targets.some((t) => matchGlob(t, target))) continue;
      listing++;
      const matched = identities.find((id) => (rule.field === 'any' || rule.field === id.kind) && matchGlob(rule.identity, id.value));
      if (matched) return { ok: true, addresses, rule: rule.ref, matched };
    }
    const who = identities[0] ? `"${truncate(identities[0].value, QUOTE_MAX)}"` : 'a client without identity';
    const names = identities.length > 0 ? truncate(identities.map(encodeIdentity).join(' '), QUOTE_MAX) : '(no name)';
    return {
      ok: false,
      code: ReplyCode.NOT_ALLOWED,
      message: `${who} may not reach "${quotedTarget}"`,
      why: `no allow rule for ${names} → ${quotedTarget} (rules checked: ${this.rules.length}, listing the target: ${listing})`,
    };
  }
}

/**
 * A decision for names as TLS_OK carries them (`cn:…`, `dns:…`, `uri:…`; one without a kind matches no rule):
 * how the live proxy decides a request, and how replay decides it again.
 */
export function decideNames(authorizer: Pick<Authorizer, 'decide'>, names: readonly string[], target: string): Decision {
  const identities = names.map(decodeIdentity).filter((id): id is Identity => id !== undefined);
  return authorizer.decide(identities, target);
}

/**
 * The `why` of a decline that was not the rules' doing: the client certificate was revoked (a CRL loaded since
 * its handshake) or expired. Replay, deciding again from the logged rules, accepts such a decline.
 */
export const CERTIFICATE_WHY = 'certificate: ';

/** The fields of the AUTHORIZED or DECLINED event a decision makes (without the pair's id). */
export type DecisionEvent =
  | { type: 'AUTHORIZED'; addresses: string[]; matched: string; rule: string; ruleText: string }
  | { type: 'DECLINED'; code: ReplyCode; message: string; why: string };

export function decisionEvent(d: Decision): DecisionEvent {
  return d.ok
    ? { type: 'AUTHORIZED', addresses: d.addresses, matched: truncate(encodeIdentity(d.matched), PRINTABLE_MAX), rule: d.rule.where, ruleText: d.rule.text }
    : { type: 'DECLINED', code: d.code, message: d.message, why: d.why };
}
