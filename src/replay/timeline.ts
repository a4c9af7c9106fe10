/**
 * The human-readable replay output: one block per connection, a line per record with its time offset from the
 * connection's first record, and a short section for the proxy itself.
 *
 *   connection 5  peer 127.0.0.1:48044  identity hmi-1  target data  backend 10.0.0.7:502  at 2026-11-25 03:12:01.364  (15.000 ms)
 *     +  0.000 ms  ACCEPTED peer=127.0.0.1:48044 local=10.0.0.5:5678
 *     +  0.000 ms      → handshake.tls
 *     +  6.000 ms  TLS_OK identity=hmi-1 TLSv1.3
 *     +  6.000 ms      handshake.tls → handshake.awaitingRequest
 *     …
 *     traffic  up 3 chunks 120 B  down 2 chunks 1.4 kB
 *
 * Never throws on odd records: a log can come from anywhere, fields are read defensively. Every text taken
 * from a record is printed through `printable` (src/shared/printable.ts): a client's target or certificate
 * name, or a log file written by someone else, cannot put a control character or a line break on the screen.
 */
import type { HeaderRecord, LogRecord } from '../eventlog/records.js';
import { printable, quoted as quotedPrintable, singleLine, truncate } from '../shared/printable.js';
import { CHUNK_LIST_LIMIT, type ConnectionView } from './connections.js';

export interface TimelineStyle {
  /** Dim the time column (stdout is a terminal). */
  color: boolean;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** "2026-11-25 03:12:01.364", local time. */
export function formatLocalTime(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${formatTimeOfDay(ms)}`;
}

/** "03:12:01.364", local time. */
export function formatTimeOfDay(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** 512 B, 1.4 kB, 10.3 MB (powers of 1000). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

const MESSAGE_MAX = 160;
const PREVIEW_BYTES = 40;

/** Longest value other than a message (characters of escaped text). */
const VALUE_MAX = 256;

/** Any value of a record as text for a line: escaped, cut. */
function text(v: unknown, max = VALUE_MAX): string {
  if (typeof v === 'string') return printable(v, max);
  if (v === undefined) return '?';
  return singleLine(truncate(jsonText(v) ?? String(v), max));
}

const jsonText = (v: unknown): string | undefined => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));

/** A message in quotes, escaped and shortened. */
const quoted = (v: unknown): string => (typeof v === 'string' ? quotedPrintable(v, MESSAGE_MAX) : `"${text(v, MESSAGE_MAX)}"`);

/** The first bytes of a chunk as text: printable ASCII kept, \n \r \t escaped, anything else a dot. */
export function preview(b: Uint8Array, max = PREVIEW_BYTES): string {
  let out = '';
  for (const byte of b.subarray(0, max)) {
    if (byte === 0x0a) out += '\\n';
    else if (byte === 0x0d) out += '\\r';
    else if (byte === 0x09) out += '\\t';
    else if (byte === 0x22 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += '.';
  }
  return `"${out}"${b.length > max ? '…' : ''}`;
}

/** An event with its key fields: `TLS_OK identity=hmi-1 TLSv1.3`, `DECLINED ERR_NOT_ALLOWED "…"`. */
export function describeEvent(e: Record<string, unknown>): string {
  const type = text(e.type);
  const codeAndMessage = () => `${type} ${text(e.code)} ${quoted(e.message)}`;
  switch (type) {
    case 'ACCEPTED': {
      // A forwarder's pair: its target and what it dials (the proxy, or the target's own addresses).
      const addresses = Array.isArray(e.addresses) ? e.addresses.map((v) => text(v)).join(' ') : '';
      const forward =
        typeof e.target === 'string'
          ? ` target=${text(e.target)} ${typeof e.proxy === 'string' ? `via proxy ${text(e.proxy)}` : `direct ${addresses}`}`
          : '';
      return `ACCEPTED peer=${text(e.peer)} local=${text(e.local)}${forward}`;
    }
    case 'TLS_OK': {
      const ids = Array.isArray(e.identities) && e.identities.length > 1 ? ` identities=${e.identities.map((v) => text(v)).join(',')}` : '';
      const alpn = typeof e.alpn === 'string' ? ` ${e.alpn}` : '';
      return `TLS_OK identity=${text(e.identity)}${ids} ${text(e.protocol)}${alpn}${e.resumed === true ? ' resumed' : ''}`;
    }
    case 'CONFIG_LOADED': {
      const c = (typeof e.config === 'object' && e.config !== null ? e.config : {}) as Record<string, unknown>;
      const count = (v: unknown) => (Array.isArray(v) ? v.length : '?');
      const hash = typeof c.hash === 'string' ? c.hash.slice(0, 12) : '?';
      return `CONFIG_LOADED ${text(e.reason)} ${text(c.file)} hash=${hash} servers=${count(c.servers)} rules=${count(c.allow)}`;
    }
    case 'REQUEST':
      return `REQUEST target=${text(e.target)}${typeof e.earlyBytes === 'number' && e.earlyBytes > 0 ? ` early=${e.earlyBytes} B` : ''}`;
    case 'AUTHORIZED': {
      const by = typeof e.rule === 'string' ? ` by ${text(e.matched)} rule ${text(e.rule)}` : '';
      return `AUTHORIZED ${Array.isArray(e.addresses) ? e.addresses.map((v) => text(v)).join(' ') : text(e.addresses)}${by}`;
    }
    case 'DECLINED':
      return `${codeAndMessage()}${typeof e.why === 'string' ? `  why: ${quoted(e.why)}` : ''}`;
    case 'BACKEND_CONNECTED':
      return `BACKEND_CONNECTED ${text(e.address)} attempt=${text(e.attempt)}`;
    case 'BACKEND_FAILED':
      return `BACKEND_FAILED ${text(e.address)} ${text(e.code)} attempt=${text(e.attempt)}`;
    case 'CONNECT_TIMEOUT':
      return `CONNECT_TIMEOUT attempt=${text(e.attempt)}`;
    case 'TLS_FAILED':
    case 'REQUEST_INVALID':
    case 'PROXY_DECLINED':
    case 'CLIENT_ERROR':
    case 'SERVER_ERROR':
      return codeAndMessage();
    case 'CLIENT_CLOSED':
    case 'SERVER_CLOSED':
      return `${type} read=${text(e.read)} written=${text(e.written)}`;
    case 'HANDSHAKE_TIMEOUT':
    case 'TEARDOWN_TIMEOUT':
    case 'HALF_CLOSE_TIMEOUT':
    case 'IDLE_TIMEOUT':
    case 'DRAIN_TIMEOUT':
    case 'CLIENT_END':
    case 'SERVER_END':
    case 'PROXY_REPLY_OK':
      return type;
    case 'SHUTDOWN':
      return e.now === true ? 'SHUTDOWN now' : 'SHUTDOWN';
    case 'REVOKED':
      return `REVOKED ${text(e.reason)}`;
    default: {
      // An event this version does not know: its fields as they are.
      const { type: _type, id: _id, ...rest } = e;
      const fields = Object.keys(rest).length > 0 ? ` ${singleLine(truncate(jsonText(rest) ?? '', MESSAGE_MAX))}` : '';
      return `${type}${fields}`;
    }
  }
}

/**
 * One record as a line of text (without the time). Transitions are indented under the events; one caused by
 * an event other than the connection's latest says which (`(on REQUEST)`).
 */
export function describeRecord(r: LogRecord, lastEvent?: string): string {
  switch (r.k) {
    case 'e':
      return describeEvent(r.e as unknown as Record<string, unknown>);
    case 'x': {
      const cause = r.on !== lastEvent && r.on !== 'xstate.init' ? `  (on ${text(r.on)})` : '';
      return `    ${r.from === null ? '' : `${text(r.from)} `}→ ${text(r.to)}${cause}`;
    }
    case 'f':
      return `      do ${text(r.name)}${fields(r.params)}`;
    case 'o': {
      const { id: _id, peer: _peer, ...rest } = r.o;
      return `ended${fields(rest)}`;
    }
    case 'n':
      return `${describeEvent(r.e)}  (not taken by the machines: ${text(r.why)})`;
    case 'c':
      return `chunk ${text(r.d).padEnd(4)} ${formatBytes(r.n)}${r.b ? ` ${preview(r.b)}` : ''}`;
    case 'd':
      return `not recorded: ${r.pairs} connection${r.pairs === 1 ? '' : 's'} that ended before TLS (${r.records} records, over the budget)`;
    default:
      return describeUnknown(r);
  }
}

/** A record of a kind this version does not describe: its fields as they are. */
function describeUnknown(r: object): string {
  const { s: _s, t: _t, ...rest } = r as Record<string, unknown>;
  return singleLine(truncate(jsonText(rest) ?? '', MESSAGE_MAX));
}

/** ` key=value …` for an effect's parameters or an output: strings escaped, messages quoted, the rest as JSON. */
function fields(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return ` ${text(v)}`;
  return Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => ` ${text(k)}=${k === 'message' ? quoted(x) : text(x)}`)
    .join('');
}

const dim = (s: string, style: TimelineStyle) => (style.color ? `\x1b[2m${s}\x1b[22m` : s);

/** `+ 12.000 ms`, the number right-aligned to `width`. */
export const formatOffset = (ms: number, width = 0): string => `+${ms.toFixed(3).padStart(width + 1)} ms`;

/** Lines for records, time as offsets from `origin`, aligned. */
export function recordLines(records: LogRecord[], origin: number, style: TimelineStyle, indent = '  '): string[] {
  const width = Math.max(0, ...records.map((r) => (r.t - origin).toFixed(3).length));
  let lastEvent: string | undefined;
  return records.map((r) => {
    const line = `${indent}${dim(formatOffset(r.t - origin, width), style)}  ${describeRecord(r, lastEvent)}`;
    if (r.k === 'e') lastEvent = r.e.type;
    return line;
  });
}

const chunkCount = (c: { count: number; bytes: number }) => `${c.count} chunk${c.count === 1 ? '' : 's'} ${formatBytes(c.bytes)}`;

/**
 * A connection's block: its header line, a line per record, a traffic summary if it forwarded anything.
 * `open`: it had not closed where the records end (`openNote` says where that is).
 */
export function formatConnection(view: ConnectionView, open: boolean, style: TimelineStyle, openNote = 'still open at the end of the log'): string[] {
  const facts: [string, string | null][] = [
    ['peer', view.peer],
    ['identity', view.identity],
    ['target', view.target],
    ['backend', view.backend],
  ];
  const head = [`connection ${text(view.id)}`, ...facts.filter(([, v]) => v !== null).map(([k, v]) => `${k} ${text(v)}`)];
  head.push(`at ${formatLocalTime(view.first)}`);
  const notes: string[] = [];
  if (view.preexisting) notes.push('began before the log: not replayed');
  if (open) notes.push(`${openNote}, ${formatOffset(view.last - view.first).slice(1)} in`);
  else if (view.closedAt !== null) notes.push(view.preexisting ? 'closed' : `closed after ${formatOffset(view.closedAt - view.first).slice(1)}`);
  if (notes.length > 0) head.push(`(${notes.join('; ')})`);
  const lines = [head.join('  '), ...recordLines(view.records, view.first, style)];
  const { up, down } = view.chunks;
  if (up.count + down.count > 0) {
    const listed = view.chunksListed ? '' : `  (more than ${CHUNK_LIST_LIMIT}: not listed)`;
    lines.push(`  traffic  up ${chunkCount(up)}  down ${chunkCount(down)}${listed}`);
  }
  return lines;
}

/** A record that arrived for a connection after its block was printed. */
export function formatLate(r: LogRecord, id: string, first: number, style: TimelineStyle): string {
  return `late for connection ${text(id)}  ${dim(formatOffset(r.t - first), style)}  ${describeRecord(r).trimStart()}`;
}

/** The root's own records (the proxy's or the forwarder's transitions, SHUTDOWN), offsets from the log's start. */
export function formatProxySection(header: HeaderRecord | undefined, records: LogRecord[], style: TimelineStyle): string[] {
  if (records.length === 0) return [];
  const origin = typeof header?.started === 'number' ? header.started : records[0]!.t;
  const who = header?.machine === 'forwarder' ? 'forwarder' : 'proxy';
  const head = header
    ? `${who}  log started ${formatLocalTime(origin)}  host ${text(header.host)}  pid ${text(header.pid)}${header.worker !== undefined ? `  worker ${text(header.worker)}` : ''}  mxproxy ${text(header.mxproxy)}  level ${text(header.level)}`
    : who;
  return [head, ...recordLines(records, origin, style)];
}
