/**
 * winston set-up: readable console lines by default, JSON lines with `--log-format json`. Every line about a
 * connection carries its id, peer address, identity and target (see `connMeta`).
 */
import winston from 'winston';

export type LogFormat = 'text' | 'json';
export type Logger = winston.Logger;

export interface LogOptions {
  level?: string;
  format?: LogFormat;
  /** Where lines go; default stderr would interleave with `--dbg work` output, so it is stdout. */
  stream?: NodeJS.WritableStream;
}

const textFormat = winston.format.printf((info) => {
  const { level, message, timestamp, ...meta } = info as Record<string, unknown>;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined || v === null || typeof k === 'symbol') continue;
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    parts.push(`${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`);
  }
  return `${String(timestamp)} ${String(level).padEnd(5)} ${String(message)}${parts.length ? ' ' + parts.join(' ') : ''}`;
});

/** Where each logger created here writes, for closeLogger. */
const outputs = new WeakMap<Logger, NodeJS.WritableStream>();

export function createLogger(opts: LogOptions = {}): Logger {
  const format =
    opts.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
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

/** The fields every connection log line carries. */
export function connMeta(c: ConnFields, extra?: Record<string, unknown>): Record<string, unknown> {
  return { conn: c.id, peer: c.peer, identity: c.identity ?? undefined, target: c.target ?? undefined, ...extra };
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
