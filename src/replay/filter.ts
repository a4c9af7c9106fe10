/**
 * What `mxproxy replay` shows: a connection id, a target, a time window. Replay itself always sees every
 * record (a connection can only be reproduced from all of its events); these decide only what is printed.
 */
import { UsageError } from '../errors.js';

export interface ReplayFilter {
  /** Connection id as in the log (base 36). */
  connection?: string;
  /** The target named in the connection's REQUEST. */
  target?: string;
  /** ms since the epoch: shown if the connection's last record is at or after this. */
  from?: number;
  /** ms since the epoch: shown if the connection's first record is at or before this. */
  until?: number;
}

/** What the filter knows about one connection so far. */
export interface FilterSubject {
  id: string;
  /** From its REQUEST; null until then. */
  target: string | null;
  /** Time of its first and latest record. */
  first: number;
  last: number;
  /** No more records will change the answer: it reached `closed`, or the log ended. */
  ended: boolean;
}

export type Decision = 'yes' | 'no' | 'pending';

/**
 * Whether a connection is shown: 'pending' while it depends on records still to come (its REQUEST, or a record
 * inside the window), so callers can stream a connection as soon as it is known to be shown.
 */
export function decide(f: ReplayFilter, c: FilterSubject): Decision {
  if (f.connection !== undefined && c.id !== f.connection) return 'no';
  if (f.until !== undefined && c.first > f.until) return 'no';
  let pending = false;
  if (f.target !== undefined) {
    if (c.target !== null) {
      if (c.target !== f.target) return 'no';
    } else if (c.ended) return 'no';
    else pending = true;
  }
  if (f.from !== undefined && c.last < f.from) {
    if (c.ended) return 'no';
    pending = true;
  }
  return pending ? 'pending' : 'yes';
}

/** Whether a record of the proxy itself (root transitions, SHUTDOWN) is shown. */
export function showsRoot(f: ReplayFilter, t: number): boolean {
  if (f.connection !== undefined || f.target !== undefined) return false;
  return (f.from === undefined || t >= f.from) && (f.until === undefined || t <= f.until);
}

export const hasFilter = (f: ReplayFilter): boolean =>
  f.connection !== undefined || f.target !== undefined || f.from !== undefined || f.until !== undefined;

export const TIME_SYNTAX =
  'use ISO 8601 (2026-11-25T03:12:00Z, or without a zone for local time), HH:MM[:SS[.mmm]] ' +
  '(local time on the day the log started), or ms since the epoch';

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const CLOCK = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,3}))?)?$/;

const millis = (frac: string | undefined): number => (frac ? Number(frac.padEnd(3, '0').slice(0, 3)) : 0);

/**
 * Reads a time given on the command line. `logStarted` (ms since the epoch, from the log's header) gives the
 * day for a bare HH:MM; without it such a time is an error. A value that cannot be read is a UsageError whose
 * message says why and what is accepted.
 */
export function parseTime(text: string, logStarted: number | undefined): number {
  const s = text.trim();
  const bad = (why: string): never => {
    throw new UsageError(`"${text}" ${why}; ${TIME_SYNTAX}`);
  };
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    if (!Number.isSafeInteger(Math.floor(n))) bad('is too large');
    return n;
  }
  const clock = CLOCK.exec(s);
  if (clock) {
    const [h, m, sec] = [Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0)];
    if (h > 23 || m > 59 || sec > 59) bad('is not a time of day');
    if (logStarted === undefined) bad("is a time of day, but the log's start date is unknown (no readable header)");
    const day = new Date(logStarted!);
    return new Date(day.getFullYear(), day.getMonth(), day.getDate(), h, m, sec, millis(clock[4])).getTime();
  }
  const iso = ISO.exec(s);
  if (!iso) return bad('is not a time');
  const [y, mo, d] = [Number(iso[1]), Number(iso[2]), Number(iso[3])];
  const [h, mi, sec] = [Number(iso[4] ?? 0), Number(iso[5] ?? 0), Number(iso[6] ?? 0)];
  const ms = millis(iso[7]);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) bad('is not a valid date and time');
  const zone = iso[8];
  let t: number;
  if (zone === undefined) {
    const local = new Date(y, mo - 1, d, h, mi, sec, ms);
    // Rolled over (Feb 30 → Mar 2): not a real date.
    if (local.getFullYear() !== y || local.getMonth() !== mo - 1 || local.getDate() !== d) bad('is not a valid date');
    t = local.getTime();
  } else {
    const utc = new Date(Date.UTC(y, mo - 1, d, h, mi, sec, ms));
    if (utc.getUTCMonth() !== mo - 1 || utc.getUTCDate() !== d) bad('is not a valid date');
    let offset = 0;
    if (zone !== 'Z' && zone !== 'z') {
      const sign = zone[0] === '-' ? -1 : 1;
      const digits = zone.slice(1).replace(':', '');
      const oh = Number(digits.slice(0, 2));
      const om = Number(digits.slice(2) || 0);
      if (oh > 23 || om > 59) bad('has a bad time zone offset');
      offset = sign * (oh * 60 + om) * 60_000;
    }
    t = utc.getTime() - offset;
  }
  return t;
}

/** Whether `text` needs the log's start date to be read (a bare time of day). */
export const isTimeOfDay = (text: string): boolean => CLOCK.test(text.trim());
