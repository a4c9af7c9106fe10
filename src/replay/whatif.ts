/**
 * What if another config had been in force: every request in an event log decided again under its servers and
 * rules (`mxproxy replay LOG --config NEW.config`), against what the log recorded. Lists the pairs whose outcome
 * would change: allowed → declined (with the code), declined → allowed, a decline for another reason, the
 * target resolving to other addresses. Only the rules are decided again: a pair the limits declined
 * (ERR_OVERLOADED) had been allowed by the rules, and is compared as such.
 *
 * It reads the records only (no machines): each REQUEST with the names its pair's TLS_OK carried, and the
 * AUTHORIZED or DECLINED that answered it.
 */
import { decideNames, decisionEvent, type Authorizer, type DecisionEvent } from '../auth/rules.js';
import { iterateEventLogFile } from '../eventlog/index.js';
import { asLogRecord, isHeader } from '../eventlog/records.js';
import { sameData } from '../shared/canonical.js';
import { ReplyCode } from '../shared/codes.js';
import { IDENTITY_KINDS, decodeIdentity } from '../shared/identity.js';
import { printable } from '../shared/printable.js';
import { ioProblem, type LogRun, type RunPlan } from './runs.js';
import type { FileProblem } from './run.js';
import { formatTimeOfDay } from './timeline.js';

/** What a request got, in short: `allowed` with its addresses, or `declined` with the code. */
export type Outcome = { allowed: true; addresses: string[]; rule: string | null } | { allowed: false; code: string; message: string };

export interface WhatIfChange {
  run: number;
  /** The pair's id, and the sequence number of its REQUEST. */
  id: string;
  at: number;
  /** ms since the epoch of the REQUEST. */
  t: number;
  identity: string;
  target: string;
  recorded: Outcome;
  would: Outcome;
  /** `allowed → declined`, `declined → allowed`, `declined otherwise`, `other addresses`. */
  change: string;
}

export interface WhatIfResult {
  /** Requests decided again (with a recorded decision to compare with). */
  requests: number;
  changes: WhatIfChange[];
  /** The limits declined them (ERR_OVERLOADED): compared as allowed by the rules. */
  overloaded: number;
  /** Names recorded without their certificate field (logs from before the fields): matched as any field. */
  bareNames: number;
  /** A file that could not be read, or is not a log / damaged: what came before it was still decided. */
  error: FileProblem | undefined;
}

interface PendingRequest {
  at: number;
  t: number;
  identity: string;
  target: string;
  would: DecisionEvent;
}

function recordedOutcome(e: Record<string, unknown>): Outcome | undefined {
  if (e.type === 'AUTHORIZED') {
    const addresses = Array.isArray(e.addresses) ? e.addresses.filter((a): a is string => typeof a === 'string') : [];
    return { allowed: true, addresses, rule: typeof e.rule === 'string' ? e.rule : null };
  }
  if (e.type === 'DECLINED') return { allowed: false, code: String(e.code), message: String(e.message ?? '') };
  return undefined;
}

const outcomeOf = (d: DecisionEvent): Outcome =>
  d.type === 'AUTHORIZED' ? { allowed: true, addresses: d.addresses, rule: d.rule } : { allowed: false, code: d.code, message: d.message };

/** The change from `recorded` to `would`, or undefined when it is the same outcome. */
function changeOf(recorded: Outcome, would: Outcome): string | undefined {
  if (recorded.allowed && would.allowed) return sameData(recorded.addresses, would.addresses) ? undefined : 'other addresses';
  if (recorded.allowed) return 'allowed → declined';
  if (would.allowed) return 'declined → allowed';
  return recorded.code === would.code ? undefined : 'declined otherwise';
}

/**
 * Names as decideNames takes them. A log from before names carried their field holds bare values: each is
 * tried as every field (so a rule of any field may match it), and counted.
 */
function namesOf(identities: unknown, count: () => void): string[] {
  if (!Array.isArray(identities)) return [];
  const out: string[] = [];
  for (const n of identities) {
    if (typeof n !== 'string') continue;
    if (decodeIdentity(n)) out.push(n);
    else {
      count();
      for (const kind of IDENTITY_KINDS) out.push(`${kind}:${n}`);
    }
  }
  return out;
}

export async function whatIf(plan: RunPlan, authorizer: Pick<Authorizer, 'decide'>): Promise<WhatIfResult> {
  const result: WhatIfResult = { requests: 0, changes: [], overloaded: 0, bareNames: 0, error: undefined };
  for (const run of plan.runs) {
    const problem = await whatIfRun(run, authorizer, result);
    if (problem) {
      result.error = problem;
      return result;
    }
  }
  result.error = plan.unreadable;
  return result;
}

async function whatIfRun(run: LogRun, authorizer: Pick<Authorizer, 'decide'>, out: WhatIfResult): Promise<FileProblem | undefined> {
  /** Per pair (ids are unique within a run): its names from TLS_OK, then its request decided again. */
  const names = new Map<string, { identities: unknown; identity: string }>();
  const requests = new Map<string, PendingRequest>();
  for (const file of run.files) {
    let header: unknown;
    const it = iterateEventLogFile(file, { onHeader: (h) => (header = h) });
    try {
      for (;;) {
        const step = await it.next();
        if (step.done) {
          const stop = step.value.stop;
          if (stop.reason === 'corrupt' || stop.reason === 'not-a-log') return { file, stop };
          break;
        }
        if (!isHeader(header)) return { file, stop: { offset: 0, reason: 'not-a-log', message: `${file}: not an mxproxy event log` } };
        const r = asLogRecord(step.value);
        if (typeof r === 'string') return { file, stop: { offset: 0, reason: 'corrupt', message: `${file}: ${r}` } };
        if (r.k !== 'e') continue;
        const e = r.e as unknown as Record<string, unknown>;
        const id = typeof e.id === 'string' ? e.id : undefined;
        if (id === undefined) continue;
        if (e.type === 'TLS_OK') {
          names.set(id, { identities: e.identities, identity: typeof e.identity === 'string' ? e.identity : '' });
        } else if (e.type === 'REQUEST' && typeof e.target === 'string') {
          const tls = names.get(id);
          const would = decisionEvent(decideNames(authorizer, namesOf(tls?.identities, () => out.bareNames++), e.target));
          requests.set(id, { at: r.s, t: r.t, identity: tls?.identity ?? '', target: e.target, would });
        } else if (e.type === 'AUTHORIZED' || e.type === 'DECLINED') {
          const req = requests.get(id);
          const recorded = recordedOutcome(e);
          if (!req || !recorded) continue;
          requests.delete(id);
          names.delete(id);
          out.requests++;
          // The rules had allowed it; the limits said no. Only the rules are decided again.
          const overloaded = !recorded.allowed && recorded.code === ReplyCode.OVERLOADED;
          if (overloaded) out.overloaded++;
          const would = outcomeOf(req.would);
          const change = overloaded ? (would.allowed ? undefined : 'allowed → declined') : changeOf(recorded, would);
          if (change) out.changes.push({ run: run.index, id, at: req.at, t: req.t, identity: req.identity, target: req.target, recorded, would, change });
        }
      }
    } catch (err) {
      return ioProblem(file, err);
    } finally {
      await it.return(undefined as never);
    }
  }
  return undefined;
}

/** An outcome in a table cell: `allowed 10.0.0.7:502`, `declined ERR_NOT_ALLOWED`. Escaped (log text). */
function outcomeText(o: Outcome): string {
  return o.allowed ? `allowed ${printable(o.addresses.join(' '), 96)}` : `declined ${printable(o.code, 48)}`;
}

/**
 * The changes as a table, and the line under it: `2 of 14 requests would be decided otherwise under …`.
 * Every value from the log (identities, targets, codes) is escaped: a client chose some of them.
 */
export function whatIfTable(r: WhatIfResult, config: string, runs: number): string[] {
  const head = ['connection', ...(runs > 1 ? ['run'] : []), 'request', 'identity', 'target', 'recorded', 'would be', 'change'];
  const rows = r.changes.map((c) => [
    printable(c.id, 32),
    ...(runs > 1 ? [String(c.run)] : []),
    `#${c.at} ${formatTimeOfDay(c.t)}`,
    printable(c.identity, 64),
    printable(c.target, 64),
    outcomeText(c.recorded),
    outcomeText(c.would),
    c.change,
  ]);
  const lines: string[] = [];
  if (rows.length > 0) {
    const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(width[i]!))).join('  ');
    lines.push(line(head), ...rows.map(line));
  }
  lines.push(whatIfSummary(r, config));
  return lines;
}

/** `what if new.config (ab12…): 2 of 14 requests would be decided otherwise`, and its notes. */
export function whatIfSummary(r: WhatIfResult, config: string): string {
  const notes: string[] = [];
  if (r.overloaded > 0) notes.push(`${r.overloaded} declined by the limits (ERR_OVERLOADED), compared as allowed by the rules`);
  if (r.bareNames > 0) notes.push(`${r.bareNames} names recorded without their certificate field, matched as any field`);
  if (r.error) notes.push(`stopped: ${r.error.stop.message}`);
  const n = r.changes.length;
  const summary =
    `what if ${printable(config)}: ${n === 0 ? 'no' : n} of ${r.requests} request${r.requests === 1 ? '' : 's'} ` +
    `would be decided otherwise`;
  return notes.length > 0 ? `${summary}; ${notes.join('; ')}` : summary;
}

/** JSON lines: one `{"change": …}` per changed request, then `{"whatIf": …}` (values as recorded). */
export function whatIfJson(r: WhatIfResult, config: { file: string; hash: string }): unknown[] {
  return [
    ...r.changes.map((c) => ({ change: c })),
    {
      whatIf: {
        config: config.file,
        hash: config.hash,
        requests: r.requests,
        changed: r.changes.length,
        overloaded: r.overloaded,
        bareNames: r.bareNames,
        error: r.error ? { file: r.error.file, reason: r.error.stop.reason, message: r.error.stop.message } : null,
      },
    },
  ];
}
