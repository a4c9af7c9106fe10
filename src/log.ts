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

export function createLogger(opts: LogOptions = {}): Logger {
  const format =
    opts.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(winston.format.timestamp(), textFormat);
  return winston.createLogger({
    level: opts.level ?? 'info',
    format,
    transports: [new winston.transports.Stream({ stream: opts.stream ?? process.stdout })],
  });
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
