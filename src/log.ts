/**
 * winston set-up: readable console lines by default, JSON lines with `--log-format json`. Every line about a
 * connection carries its id, peer address, identity and target (see `connMeta`).
 *
 * A client must not be able to forge a log line. Text lines: every field value goes through `printable` (see
 * src/shared/printable.ts: control characters as `\xNN`, long values cut with their length), the message
 * through `singleLine` (messages quote client values with `printable` where they are built). JSON lines: field
 * values are cut like text ones, and what JSON.stringify leaves raw (DEL, C1, U+2028/9, bidi overrides) is
 * written as `\uXXXX`. Either way one record is exactly one line.
 *
 * Lines go to stdout, and also to a size-rotated file and to syslog when the config or the command line asks
 * (`targets`, from src/config/logKeys.ts resolveLogTargets): the one place transports are built. The file
 * gets the stdout lines; syslog the same minus timestamp and level in text mode (its header has both).
 */
import fs from 'node:fs';
import winston from 'winston';
import type { LogConfig, LogFileConfig } from './config/types.js';
import { RotatingFileTransport } from './log/rotatingFile.js';
import { createSyslogTransport, isSyslogTransport } from './log/syslog.js';
import { jsonSafe, PRINTABLE_MAX, printable, singleLine, truncate } from './shared/printable.js';

export type LogFormat = 'text' | 'json';
export type Logger = winston.Logger;

export interface LogOptions {
  level?: string;
  format?: LogFormat;
  /** Where lines go; default stderr would interleave with `--dbg work` output, so it is stdout. */
  stream?: NodeJS.WritableStream;
  /** Also a log file and/or syslog. */
  targets?: Pick<LogConfig, 'file' | 'syslog'>;
  /**
   * Started as root and dropping to this account later ([proxy] user): the log file is created for it now, and
   * the files rotation creates after the drop are its own anyway.
   */
  fileOwner?: { uid: number; gid: number } | undefined;
}

/** Longest field value in a log line (characters of escaped text); connMeta cuts identity and target shorter. */
export const FIELD_MAX = 1024;

/** A field value in a text line: escaped and cut, in quotes when it holds a space, a quote or `=`. */
function textValue(v: unknown): string {
  const s = typeof v === 'string' ? printable(v, FIELD_MAX) : singleLine(JSON.stringify(v) ?? String(v));
  return /[\s"=]/.test(s) ? `"${s.replace(/"/g, '\\"')}"` : s;
}

/** `message key=value …`: a text line without its timestamp and level. */
function textBody(info: Record<string, unknown>): string {
  const { level: _level, message, timestamp: _timestamp, ...meta } = info;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined || v === null || typeof k === 'symbol') continue;
    parts.push(`${printable(k, 64)}=${textValue(v)}`);
  }
  return `${singleLine(String(message))}${parts.length ? ' ' + parts.join(' ') : ''}`;
}

const textFormat = winston.format.printf((info) => `${String(info.timestamp)} ${String(info.level).padEnd(5)} ${textBody(info)}`);
const syslogTextFormat = winston.format.printf((info) => textBody(info));

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

/** How long closeLogger waits for syslog messages still on their way. */
const SYSLOG_CLOSE_MS = 2000;

/** How long the log file may take to open. */
const OPEN_MS = 5000;
/** The log file of a logger created here, until it is open. */
const opening = new WeakMap<Logger, Promise<void>>();

/** How long closeLogger waits for a transport to finish (a stuck disk or syslog must not hold the exit). */
const FINISH_MS = 5000;

/** Where each logger created here writes, for closeLogger. */
const outputs = new WeakMap<Logger, NodeJS.WritableStream>();

/**
 * The log file, created (or appended to) here, synchronously, before its transport's stream opens it: a file
 * that cannot be opened stops the start now, with its path, instead of an 'error' event later; and under a
 * privilege drop it belongs to the account from the start. 0640: the lines name clients and targets.
 */
function fileTransport(f: LogFileConfig, format: winston.Logform.Format, owner: LogOptions['fileOwner']): RotatingFileTransport {
  let fd: number | undefined;
  try {
    fd = fs.openSync(f.path, 'a', 0o640);
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw Object.assign(new Error(`cannot open the log file ${f.path}: ${(err as Error).message}`), { code });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return new RotatingFileTransport({ path: f.path, maxBytes: f.maxBytes, files: f.files, format });
}

/** A transport that fails (syslog unreachable, disk full) is said on stderr, at most once a minute each. */
function reportTransportErrors(logger: Logger): void {
  const said = new Map<string, number>();
  logger.on('error', (err: unknown, transport?: { name?: string }) => {
    const name = transport?.name ?? 'log';
    const now = Date.now();
    if ((said.get(name) ?? -Infinity) > now - 60_000) return;
    said.set(name, now);
    process.stderr.write(`mxproxy: ${name} log output failed: ${singleLine(err instanceof Error ? err.message : String(err))}\n`);
  });
}

export function createLogger(opts: LogOptions = {}): Logger {
  const json = opts.format === 'json';
  // Time stamped and fields cut once, in the logger; each transport renders the line it needs.
  const base = json ? winston.format.combine(winston.format.timestamp(), cutFields()) : winston.format.timestamp();
  const line = json ? winston.format.combine(winston.format.json(), jsonSafeLine()) : textFormat;
  const stream = opts.stream ?? process.stdout;
  const transports: winston.transport[] = [new winston.transports.Stream({ stream, format: line })];
  let fileOpen: Promise<void> | undefined;
  if (opts.targets?.file) {
    const file = fileTransport(opts.targets.file, line, opts.fileOwner);
    const where = opts.targets.file.path;
    // The stream opens asynchronously; waited for in loggerReady.
    fileOpen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cannot open the log file ${where}: not open after ${OPEN_MS} ms`)), OPEN_MS);
      file.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    fileOpen.catch(() => {}); // a caller that never asks must not get an unhandled rejection
    transports.push(file);
  }
  if (opts.targets?.syslog) transports.push(createSyslogTransport(opts.targets.syslog, json ? line : syslogTextFormat));
  const logger = winston.createLogger({ level: opts.level ?? 'info', format: base, transports });
  reportTransportErrors(logger);
  outputs.set(logger, stream);
  if (fileOpen) opening.set(logger, fileOpen);
  return logger;
}

/**
 * Resolves once the log file is open (at once without one). The proxy waits for it before it drops root,
 * so the file is open under the account it was started with, as documented; rejects if it does not open.
 */
export async function loggerReady(logger: Logger): Promise<void> {
  await opening.get(logger);
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
  // Syslog's 'finish' comes before its datagrams are sent: it says 'closed' once they are (or it gave up).
  const syslogSent = logger.transports.filter(isSyslogTransport).map((t) => new Promise<void>((resolve) => t.once('closed', () => resolve())));
  await new Promise<void>((resolve) => {
    let pending = logger.transports.length;
    if (pending === 0) return resolve();
    const timer = setTimeout(resolve, FINISH_MS);
    for (const t of logger.transports) {
      t.once('finish', () => {
        if (--pending > 0) return;
        clearTimeout(timer);
        resolve();
      });
    }
    logger.end();
  });
  if (syslogSent.length > 0) {
    let timer: NodeJS.Timeout | undefined;
    // An unreachable TCP server is not waited for long: the process is stopping.
    await Promise.race([Promise.all(syslogSent), new Promise<void>((r) => (timer = setTimeout(r, SYSLOG_CLOSE_MS)))]);
    clearTimeout(timer);
  }
  const stream = outputs.get(logger);
  // An empty write completes after every write before it.
  if (stream) await new Promise<void>((resolve) => stream.write('', () => resolve()));
}
