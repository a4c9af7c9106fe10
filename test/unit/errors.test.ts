/**
 * src/errors.ts: every code is documented, no code is thrown without being listed, and each family's class is
 * an MxError with its own name and code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ALL_ERROR_CODES,
  ConfigError,
  DialError,
  ERROR_CODES,
  EventLogError,
  InternalError,
  ListenError,
  MxError,
  ProtocolError,
  ProxyConnectError,
  ProxyDeclinedError,
  TlsMaterialError,
  UsageError,
  type ErrorCode,
} from '../../src/errors.js';
import { ALL_REPLY_CODES, ReplyCode } from '../../src/shared/codes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DOC = fs.readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** A documented code is the first cell of a table row in docs/errors.md. */
const documented = (code: string): boolean => DOC.includes(`\n| \`${code}\` |`);

describe('error codes', () => {
  it('the lists hold ERR_ names only, none twice in a family', () => {
    for (const [family, codes] of Object.entries(ERROR_CODES)) {
      assert.equal(new Set(codes).size, codes.length, family);
      for (const code of codes) assert.match(code, /^ERR_[A-Z0-9_]+$/, family);
    }
    assert.ok(ALL_ERROR_CODES.length >= 14);
  });

  it('every error code and every reply code has a row in docs/errors.md', () => {
    const missing = [...ALL_ERROR_CODES, ...ALL_REPLY_CODES].filter((c) => !documented(c));
    assert.deepEqual(missing, [], `not documented in docs/errors.md: ${missing.join(', ')}`);
  });

  it('every error class is named in docs/errors.md', () => {
    const classes = ['ConfigError', 'TlsMaterialError', 'ProtocolError', 'ProxyDeclinedError', 'DialError', 'ProxyConnectError'];
    for (const name of [...classes, 'ListenError', 'EventLogError', 'UsageError', 'InternalError']) {
      assert.ok(DOC.includes(`\`${name}\``), name);
    }
  });

  it("no 'ERR_…' string literal in src is missing from the lists (a new code needs its docs row)", () => {
    const known = new Set<string>([...ALL_ERROR_CODES, ...ALL_REPLY_CODES]);
    const unknown: string[] = [];
    let seen = 0;
    for (const file of sourceFiles(path.join(ROOT, 'src'))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(['"`])(ERR_[A-Z0-9_]+)\1/g)) {
        seen++;
        if (!known.has(m[2]!)) unknown.push(`${path.relative(ROOT, file)}: ${m[2]}`);
      }
    }
    assert.ok(seen > 10, `the scan found only ${seen} literals: is it looking in the right place?`);
    assert.deepEqual(unknown, []);
  });
});

describe('error classes', () => {
  const cause = new Error('underneath');
  const cases: [MxError, new (...args: never[]) => MxError, string, ErrorCode][] = [
    [new ConfigError([{ file: 'a.config', line: 3, entry: 'x = 1', message: 'unknown key' }]), ConfigError, 'ConfigError', 'ERR_CONFIG'],
    [new TlsMaterialError('ERR_CA_PUBLIC', 'public CA', { cause }), TlsMaterialError, 'TlsMaterialError', 'ERR_CA_PUBLIC'],
    [new ProtocolError('ERR_BAD_REQUEST', 'not a map'), ProtocolError, 'ProtocolError', 'ERR_BAD_REQUEST'],
    [new ProxyDeclinedError(ReplyCode.NOT_ALLOWED, 'no rule'), ProxyDeclinedError, 'ProxyDeclinedError', 'ERR_NOT_ALLOWED'],
    [new DialError('ERR_DIAL', 'no answer', { causeCode: 'ETIMEDOUT' }), DialError, 'DialError', 'ERR_DIAL'],
    [new ProxyConnectError('ECONNREFUSED', 'refused', { cause }), ProxyConnectError, 'ProxyConnectError', 'ERR_PROXY_CONNECT'],
    [new ListenError('cannot listen', 'EADDRINUSE'), ListenError, 'ListenError', 'ERR_LISTEN'],
    [new EventLogError('cannot open event log', { cause }), EventLogError, 'EventLogError', 'ERR_EVENT_LOG_OPEN'],
    [new UsageError('--days must be a number'), UsageError, 'UsageError', 'ERR_USAGE'],
    [new InternalError('link without both sockets'), InternalError, 'InternalError', 'ERR_INTERNAL_STATE'],
  ];

  for (const [err, cls, name, code] of cases) {
    it(`${name}: an MxError and an Error, named ${name}, code ${code}`, () => {
      assert.ok(err instanceof cls);
      assert.ok(err instanceof MxError);
      assert.ok(err instanceof Error);
      assert.equal(err.name, name);
      assert.equal(err.code, code);
      assert.ok(ALL_ERROR_CODES.includes(err.code));
      assert.match(String(err), new RegExp(`^${name}: `));
      assert.match(err.stack ?? '', new RegExp(`^${name}: `));
    });
  }

  it('keeps the cause and the underlying code', () => {
    const connect = new ProxyConnectError('ECONNREFUSED', 'refused', { cause });
    assert.equal(connect.cause, cause);
    assert.equal(connect.causeCode, 'ECONNREFUSED');
    assert.ok(connect instanceof DialError);
    assert.equal(new DialError('ERR_DIAL', 'no address').causeCode, undefined);
    assert.equal(new ListenError('cannot listen', 'EACCES').causeCode, 'EACCES');
  });

  it('ConfigError keeps its issues, one message line each', () => {
    const err = new ConfigError([
      { file: 'a.config', line: 3, entry: 'x = 1', message: 'unknown key' },
      { file: 'a.config', line: 0, entry: '', message: 'no [proxy] section' },
    ]);
    assert.equal(err.issues.length, 2);
    assert.equal(err.message, 'a.config:3: unknown key (in: x = 1)\na.config: no [proxy] section');
  });

  it('ProxyDeclinedError puts its reply code before the message', () => {
    assert.equal(new ProxyDeclinedError(ReplyCode.UNKNOWN_TARGET, 'no server "x"').message, 'ERR_UNKNOWN_TARGET: no server "x"');
  });

  it('codes are checked by the compiler', () => {
    // Never called: the lines below are for tsc. Each @ts-expect-error fails the build once it stops being one.
    const typeOnly = (): void => {
      const reply: ReplyCode = new ProxyDeclinedError(ReplyCode.NOT_ALLOWED, '').code;
      // @ts-expect-error ProxyDeclinedError.code is a reply code, not any error code
      new ProxyDeclinedError('ERR_CONFIG', '');
      // @ts-expect-error nor any string
      new ProxyDeclinedError('ECONNREFUSED', '');
      // @ts-expect-error each family takes its own codes only
      new TlsMaterialError('ERR_DIAL', '');
      // @ts-expect-error an unlisted code is no ErrorCode
      const unlisted: ErrorCode = 'ERR_NOPE';
      void reply;
      void unlisted;
    };
    void typeOnly;
  });
});
