/**
 * winston set-up: readable console lines by default, JSON lines with `--log-format json`. Every line about a
 * connection carries its id, peer address, identity and target (see `connMeta`).
 *
 * A client must not be able to forge a log line. Text lines: every field value goes through `printable` (see
 * src/shared/printable.ts: control characters as `\xNN`, long values cut with their length), the message
 * through `singleLine` (messages quote client values with `printable` where they are built). JSON lines: field
 * values are cut like text ones, and what JSON.stringify leaves raw (DEL, C1, U+2028/9, bidi overrides) is
 * written as `\uXXXX`. Either way one record is exactly one line.
 */
import winston from 'winston';
import { jsonSafe, PRINTABLE_MAX, printable, singleLine, truncate } from './shared/printable.js';

export type LogFormat = 'text' | 'json';
export type Logger = winston.Logger;

export interface LogOptions {
  level?: string;
  format?: LogFormat;
  /** Where lines go; default stderr would interleave with `--dbg work` output, so it is stdout. */
  stream?: NodeJS.WritableStream;
}

/** Longest field value in a log line (characters of escaped text); connMeta cuts identity and target shorter. */
export const FIELD_MAX = 1024;

/** A field value in a text line: escaped and cut, in quotes when it holds a space, a quote or `=`. */
function textValue(v: unknown): string {
  const s = typeof v === 'string' ? printable(v, FIELD_MAX) : singleLine(JSON.stringify(v) ?? String(v));
  return /[\s"=]/.test(s) ? `"${s.replace(/"/g, '\\"')}"` : s;
}

const textFormat = winston.format.printf((info) => {
  const { level, message, timestamp, ...meta } = info as Record<string, unknown>;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined || v === null || typeof k === 'symbol') continue;
    parts.push(`${printable(k, 64)}=${textValue(v)}`);
  }
  return `${String(timestamp)} ${String(level).padEnd(5)} ${singleLine(String(message))}${parts.length ? ' ' + parts.join(' ') : ''}`;
});

/** JSON lines: string fields cut to FIELD_MAX characters. */
const cutFields = winston.format((info) => {
  for (const [k, v] of Object.entries(info)) if (typeof v === 'string' && k !== 'message') info[k] = truncate(v, FIELD_MAX);
  return info;
});

/** After winston.format.json(): nothing left raw that a terminal would act on. */
const MESSAGE = Symbol.for('message');
const jsonSafeLine = winston.format((info) => {
  const line = (info as unknown as Record<symbol, unknown>)[MESSAGE];
  if (typeof line === 'string') (info as unknown as Record<symbol, unknown>)[MESSAGE] = jsonSafe(line);
  return info;
});

/** Where each logger created here writes, for closeLogger. */
const outputs = new WeakMap<Logger, NodeJS.WritableStream>();

export function createLogger(opts: LogOptions = {}): Logger {
  const format =
    opts.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), cutFields(), winston.format.json(), jsonSafeLine())
      : winston.format.combine(winston.format.timestamp(), textFormat);
  const stream = opts.stream ?? process.stdout;
  const logger = winston.createLogger({ level: opts.level ?? 'info', format, transports: [new winston.transports.Stream({ stream })] });
  outputs.set(logger, stream);
  return logger;
}

/** A logger that drops everything (tests, embedding). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

export interface ConnFields {
  id: string;
  peer: string;
  identity: string | null;
  target: string | null;
}

/**
 * The fields every connection log line carries. Identity and target come from the client: cut to
 * PRINTABLE_MAX characters here, so JSON lines carry the same cut value as text lines (which also escape it).
 */
export function connMeta(c: ConnFields, extra?: Record<string, unknown>): Record<string, unknown> {
  return {
    conn: c.id,
    peer: c.peer,
    identity: c.identity === null ? undefined : truncate(c.identity, PRINTABLE_MAX),
    target: c.target === null ? undefined : truncate(c.target, PRINTABLE_MAX),
    ...extra,
  };
}

/**
 * Ends the logger and resolves once its last line has left the process (every transport finished, then the
 * output stream flushed: stdout to a pipe is asynchronous), so a process can exit right after without losing
 * the lines about its own stop.
 */
export async function closeLogger(logger: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    let pending = logger.transports.length;
    if (pending === 0) return resolve();
    for (const t of logger.transports) t.once('finish', () => --pending === 0 && resolve());
    logger.end();
  });
  const stream = outputs.get(logger);
  // An empty write completes after every write before it.
  if (stream) await new Promise<void>((resolve) => stream.write('', () => resolve()));
}
