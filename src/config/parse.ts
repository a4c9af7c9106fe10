/**
 * The generic part of the config reader: WinCC OA style text → sections → entries, with line numbers.
 *
 * It knows nothing about the meaning of keys; `proxySection.ts` reads `[proxy]`, the client side reads
 * `[general]` and `[client]` from the same result. Syntax problems are collected in `issues`, never thrown.
 */
import type { ConfigIssue } from './types.js';

/** A value as written: a double-quoted string (escapes resolved) or a bare number. */
export type ConfigValue =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number; /** The number as written. */ raw: string };

export interface ConfigEntry {
  /** The section the entry is in. */
  section: string;
  key: string;
  value: ConfigValue;
  /** 1-based line number. */
  line: number;
  /** The line as written, trimmed (used in messages). */
  text: string;
}

export interface ConfigSection {
  name: string;
  /** Line of the `[name]` header. */
  line: number;
  entries: ConfigEntry[];
}

export interface ParsedConfig {
  file: string;
  /** In file order. A section name may occur more than once; each occurrence is its own element. */
  sections: ConfigSection[];
  /** Syntax problems; entries with problems are left out of `sections`. */
  issues: ConfigIssue[];
}

const SECTION_RE = /^\[\s*([A-Za-z0-9_.-]+)\s*\]/;
const KEY_RE = /^([A-Za-z0-9_.-]+)\s*=/;
const NUMBER_RE = /^-?\d+(?:\.\d+)?$/;

/** True when `s` (already left-trimmed) is empty or only a comment. */
function isBlankOrComment(s: string): boolean {
  const t = s.trim();
  return t === '' || t.startsWith('#') || t.startsWith('//');
}

type ValueResult = { ok: true; value: ConfigValue; rest: string } | { ok: false; message: string };

/** Reads one value from the start of `s` (which begins right after `=`). */
function readValue(s: string): ValueResult {
  const src = s.trimStart();
  if (src.startsWith('"')) {
    let out = '';
    for (let i = 1; i < src.length; i++) {
      const ch = src[i];
      if (ch === '\\') {
        const next = src[i + 1];
        if (next === '"' || next === '\\') {
          out += next;
          i++;
        } else {
          // Unknown escapes are kept as written, so Windows paths like "C:\certs\proxy.pem" survive.
          out += ch;
        }
      } else if (ch === '"') {
        return { ok: true, value: { kind: 'string', value: out }, rest: src.slice(i + 1) };
      } else {
        out += ch;
      }
    }
    return { ok: false, message: 'unterminated string (missing closing ")' };
  }
  // A bare token ends at whitespace or at a comment.
  const m = /^(?:[^\s#/]|\/(?!\/))*/.exec(src);
  const token = m ? m[0] : '';
  if (token === '') {
    return { ok: false, message: 'missing value after "="' };
  }
  if (NUMBER_RE.test(token)) {
    const n = Number(token);
    if (Number.isInteger(n) && !Number.isSafeInteger(n)) {
      return { ok: false, message: `number ${token} is too large` };
    }
    return { ok: true, value: { kind: 'number', value: n, raw: token }, rest: src.slice(token.length) };
  }
  return {
    ok: false,
    message: `bad value ${token}: strings must be in double quotes (key = "text"), numbers are written bare (key = 5000)`,
  };
}

/** Parses config text. Never throws; problems are returned in `issues`. */
export function parseConfigText(text: string, file: string): ParsedConfig {
  const sections: ConfigSection[] = [];
  const issues: ConfigIssue[] = [];
  let current: ConfigSection | undefined;

  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    const trimmed = raw.trim();
    if (isBlankOrComment(trimmed)) return;
    const issue = (message: string): void => {
      issues.push({ file, line, entry: trimmed, message });
    };

    if (trimmed.startsWith('[')) {
      const m = SECTION_RE.exec(trimmed);
      if (!m || !isBlankOrComment(trimmed.slice(m[0].length))) {
        issue('bad section header: expected [name] with a name of letters, digits, "_", "." or "-"');
        // Entries up to the next good header would land in the wrong section; drop them silently
        // (the header error explains them).
        current = { name: '', line, entries: [] };
        return;
      }
      current = { name: m[1] ?? '', line, entries: [] };
      sections.push(current);
      return;
    }

    const km = KEY_RE.exec(trimmed);
    if (!km) {
      issue(
        trimmed.includes('=')
          ? 'bad key name: use letters, digits, "_", "." or "-" before "="'
          : 'expected an entry "key = value" or a section header "[name]"',
      );
      return;
    }
    const key = km[1] ?? '';
    const value = readValue(trimmed.slice(km[0].length));
    if (!value.ok) {
      issue(value.message);
      return;
    }
    if (!isBlankOrComment(value.rest)) {
      issue(`unexpected text after the value: ${value.rest.trim()}`);
      return;
    }
    if (!current) {
      issue('entry outside any section: put it under a section header such as [proxy]');
      return;
    }
    if (current.name === '') return; // under a broken header, already reported
    current.entries.push({ section: current.name, key, value: value.value, line, text: trimmed });
  });

  return { file, sections, issues };
}

/** All entries of every occurrence of section `name`, in file order. */
export function sectionEntries(parsed: ParsedConfig, name: string): ConfigEntry[] {
  return parsed.sections.filter((s) => s.name === name).flatMap((s) => s.entries);
}

/** True when the file has at least one `[name]` header. */
export function hasSection(parsed: ParsedConfig, name: string): boolean {
  return parsed.sections.some((s) => s.name === name);
}
