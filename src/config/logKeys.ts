/**
 * The log keys: where log lines go besides stdout — a size-rotated file and a syslog server. The same keys in
 * `[proxy]` (for `mxproxy start`) and `[client]` (for `mxproxy forward`), not a shared `[log]` section: one
 * config file often holds both sections, and two processes must never write and rotate one log file.
 *
 * `resolveLogTargets` adds the command line (`--log-file`, `--syslog`) to what a section said: the one step
 * from config and flags to the targets src/log.ts builds transports for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { parseHostPort } from '../shared/address.js';
import type { ConfigEntry } from './parse.js';
import {
  SYSLOG_FACILITIES,
  type ConfigIssue,
  type KeyDoc,
  type LogConfig,
  type LogFileConfig,
  type SourceRef,
  type SyslogConfig,
  type SyslogFacility,
} from './types.js';

export type LogKeyName = 'logFile' | 'logFileMaxBytes' | 'logFiles' | 'syslog' | 'syslogFacility';

export const LOG_DEFAULTS: { logFileMaxBytes: number; logFiles: number; syslogFacility: SyslogFacility } = {
  logFileMaxBytes: 10 * 1024 * 1024,
  logFiles: 5,
  syslogFacility: 'daemon',
};

/** Two files at least: rotation always renames the current file to <name>1<ext> (src/log/rotatingFile.ts). */
const LOG_BOUNDS = {
  logFileMaxBytes: { min: 65_536, max: 1_099_511_627_776 },
  logFiles: { min: 2, max: 1000 },
} as const;

export const SYSLOG_DEFAULT_PORT = 514;
const FACILITY_NAMES = Object.keys(SYSLOG_FACILITIES) as SyslogFacility[];

function docs(who: 'proxy' | 'forwarder'): KeyDoc<LogKeyName>[] {
  const flag = who === 'proxy' ? 'mxproxy start' : 'mxproxy forward';
  return [
    {
      name: 'logFile',
      type: 'string',
      syntax: 'logFile = "<file>"',
      default: undefined,
      repeatable: false,
      description:
        `Also writes the ${who}'s log lines to this file, the same lines as on stdout (text, or JSON with ` +
        '--log-format json), rotated by size: <name>.log becomes <name>1.log, and so on. Relative to the config ' +
        `file; the directory must exist. \`${flag} --log-file <file>\` overrides it.` +
        (who === 'proxy'
          ? ' With user set, the file is opened as root before the drop and handed to that account; rotation ' +
            'renames and creates files after the drop, so the directory must be writable by the account: the ' +
            'proxy does not start otherwise.'
          : '') +
        ' Unset: stdout only.',
      example: who === 'proxy' ? 'logFile = "/var/log/mxproxy/mxproxy.log"' : 'logFile = "/var/log/mxproxy/forward.log"',
    },
    {
      name: 'logFileMaxBytes',
      type: 'number',
      syntax: 'logFileMaxBytes = <bytes>',
      default: String(LOG_DEFAULTS.logFileMaxBytes),
      repeatable: false,
      ...LOG_BOUNDS.logFileMaxBytes,
      description: 'The log file is rotated before a line would take it past this size (bytes, default 10 MiB).',
      example: 'logFileMaxBytes = 10485760',
    },
    {
      name: 'logFiles',
      type: 'number',
      syntax: 'logFiles = <count>',
      default: String(LOG_DEFAULTS.logFiles),
      repeatable: false,
      ...LOG_BOUNDS.logFiles,
      description:
        'Log files kept, the current one included: <name>.log, <name>1.log (the newest rotated) … ; the ' +
        'oldest is overwritten at rotation.',
      example: 'logFiles = 5',
    },
    {
      name: 'syslog',
      type: 'string',
      syntax: 'syslog = "udp://<host>:<port>" | "tcp://<host>:<port>"',
      default: undefined,
      repeatable: false,
      description:
        `Also sends each log line to a syslog server as an RFC 5424 message (app name mxproxy, the ${who}'s pid, ` +
        'facility syslogFacility): over UDP one datagram per line, over TCP one line each (LF-framed, RFC 6587). ' +
        'Levels become severities: error → err (3), warn → warning (4), info → info (6), debug → debug (7). ' +
        `The port defaults to 514; an IPv6 address goes in brackets. \`${flag} --syslog <url>\` overrides it. ` +
        'Unset: no syslog.',
      example: 'syslog = "udp://127.0.0.1:514"',
    },
    {
      name: 'syslogFacility',
      type: 'string',
      syntax: `syslogFacility = ${FACILITY_NAMES.map((f) => `"${f}"`).join(' | ')}`,
      default: `"${LOG_DEFAULTS.syslogFacility}"`,
      repeatable: false,
      description: 'The syslog facility of the messages sent to syslog.',
      example: 'syslogFacility = "local3"',
    },
  ];
}

/** The log keys as each section documents them. */
export const LOG_KEY_DOCS = { proxy: docs('proxy'), client: docs('forwarder') } as const;

const numberSchema = (key: keyof typeof LOG_BOUNDS) => {
  const { min, max } = LOG_BOUNDS[key];
  const range = `${key} must be between ${min} and ${max}`;
  return z.number().int({ error: `${key} must be a whole number` }).min(min, { error: range }).max(max, { error: range });
};
const NUMBERS = { logFileMaxBytes: numberSchema('logFileMaxBytes'), logFiles: numberSchema('logFiles') };

/** The problem with `p` as a log file to open, or undefined: its directory must exist (it is not created). */
export function logFileProblem(p: string): string | undefined {
  const dir = path.dirname(p);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENOENT' ? `the log file directory ${dir} does not exist: create it first` : `log file directory ${dir}: ${code}`;
  }
  if (!st.isDirectory()) return `${dir} is not a directory`;
  try {
    if (!fs.statSync(p).isFile()) return `log file ${p} exists and is not a regular file`;
  } catch {
    /* not there yet: created at start */
  }
  return undefined;
}

/** `udp://host:port` / `tcp://host:port` (port 514 if left out) → its parts, or why not. */
export function parseSyslogUrl(
  url: string,
): { ok: true; value: Pick<SyslogConfig, 'protocol' | 'host' | 'port'> } | { ok: false; message: string } {
  const m = /^(udp|tcp):\/\/(.+)$/.exec(url.trim());
  if (!m) return { ok: false, message: `syslog must be "udp://<host>:<port>" or "tcp://<host>:<port>", e.g. "udp://127.0.0.1:514"; got "${url}"` };
  const rest = m[2]!;
  const withPort = /^\[[^\]]*\]$/.test(rest) || !rest.includes(':') ? `${rest}:${SYSLOG_DEFAULT_PORT}` : rest;
  const hp = parseHostPort(withPort);
  if (!hp.ok) return { ok: false, message: `syslog: ${hp.message}` };
  return { ok: true, value: { protocol: m[1] as 'udp' | 'tcp', host: hp.value.host, port: hp.value.port } };
}

/**
 * Collects the log keys of one section while the section's builder walks its entries (after it has checked
 * the key is known, given once and of the right type).
 */
export class LogEntries {
  private filePath: { path: string; source: SourceRef } | undefined;
  private syslogUrl: { url: string; parts: Pick<SyslogConfig, 'protocol' | 'host' | 'port'>; source: SourceRef } | undefined;
  private maxBytes: number | undefined;
  private files: number | undefined;
  private facility: SyslogFacility | undefined;

  constructor(
    private readonly file: string,
    private readonly baseDir: string,
    private readonly checkFiles: boolean,
  ) {}

  static isLogKey(key: string): key is LogKeyName {
    return LOG_KEY_DOCS.proxy.some((d) => d.name === key);
  }

  read(e: ConfigEntry, issue: (e: ConfigEntry, message: string) => void): void {
    const v = e.value.value;
    switch (e.key as LogKeyName) {
      case 'logFile': {
        if (String(v).trim() === '') {
          issue(e, 'logFile needs a file name, e.g. logFile = "/var/log/mxproxy/mxproxy.log"; leave the entry out for stdout only');
          return;
        }
        const p = path.resolve(this.baseDir, String(v));
        const problem = this.checkFiles ? logFileProblem(p) : undefined;
        if (problem) issue(e, problem);
        else this.filePath = { path: p, source: { file: this.file, line: e.line } };
        return;
      }
      case 'syslog': {
        const r = parseSyslogUrl(String(v));
        if (!r.ok) issue(e, r.message);
        else this.syslogUrl = { url: String(v).trim(), parts: r.value, source: { file: this.file, line: e.line } };
        return;
      }
      case 'syslogFacility': {
        const f = FACILITY_NAMES.find((n) => n === v);
        if (f) this.facility = f;
        else issue(e, `syslogFacility must be one of ${FACILITY_NAMES.map((n) => `"${n}"`).join(', ')}`);
        return;
      }
      case 'logFileMaxBytes':
      case 'logFiles': {
        const key = e.key as keyof typeof NUMBERS;
        const r = NUMBERS[key].safeParse(v);
        if (!r.success) issue(e, r.error.issues[0]?.message ?? 'invalid value');
        else if (key === 'logFiles') this.files = r.data;
        else this.maxBytes = r.data;
        return;
      }
    }
  }

  config(): LogConfig {
    const maxBytes = this.maxBytes ?? LOG_DEFAULTS.logFileMaxBytes;
    const files = this.files ?? LOG_DEFAULTS.logFiles;
    const facility = this.facility ?? LOG_DEFAULTS.syslogFacility;
    return {
      file: this.filePath && { ...this.filePath, maxBytes, files },
      syslog: this.syslogUrl && { url: this.syslogUrl.url, ...this.syslogUrl.parts, facility, source: this.syslogUrl.source },
      maxBytes,
      files,
      facility,
    };
  }
}

export interface LogFlags {
  /** `--log-file <path>`, relative to the current directory. */
  logFile?: string | undefined;
  /** `--syslog <url>`. */
  syslog?: string | undefined;
}

const COMMAND_LINE = '<command line>';

/**
 * The log targets in force: the section's, with `--log-file` / `--syslog` in place of its logFile / syslog
 * (size, count and facility still come from the section). The file's directory is checked here, whoever
 * named it, right before it is opened. Throws a ConfigError.
 */
export function resolveLogTargets(section: LogConfig, flags: LogFlags): LogConfig {
  const issues: ConfigIssue[] = [];
  const cli: SourceRef = { file: COMMAND_LINE, line: 0 };
  let file: LogFileConfig | undefined = section.file;
  if (flags.logFile !== undefined) {
    file = { path: path.resolve(flags.logFile), maxBytes: section.maxBytes, files: section.files, source: cli };
  }
  let syslog: SyslogConfig | undefined = section.syslog;
  if (flags.syslog !== undefined) {
    const r = parseSyslogUrl(flags.syslog);
    if (!r.ok) issues.push({ ...cli, entry: `--syslog ${flags.syslog}`, message: r.message });
    else syslog = { url: flags.syslog.trim(), ...r.value, facility: section.facility, source: cli };
  }
  const problem = file ? logFileProblem(file.path) : undefined;
  if (file && problem) {
    const entry = file.source === cli ? `--log-file ${flags.logFile ?? ''}` : '';
    issues.push({ ...file.source, entry, message: problem });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { ...section, file, syslog };
}
