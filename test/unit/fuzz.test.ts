/**
 * Hostile input, generated: the request-frame parser, the config readers and the event-log record validator
 * take arbitrary input and answer with a result or their own clear error (an MxError with a stable code), never
 * another exception and never a hang (each property runs a bounded number of cases under the test timeout).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { readClientConfig, readProxyConfig } from '../../src/config/index.js';
import { ConfigError, MxError, ProtocolError } from '../../src/errors.js';
import { asLogRecord } from '../../src/eventlog/records.js';
import { FrameReader, decodeBody, parseReply, parseRequest } from '../../src/protocol/frame.js';

const packr = new Packr({ useRecords: false });

/** Runs `fn`; passes when it returns, or throws an error of the expected family with a code and a message. */
function answersOrRefuses(fn: () => unknown, family: new (...args: never[]) => MxError): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof family, `expected ${family.name}, got ${String(err)}`);
    assert.match(err.code, /^ERR_[A-Z_]+$/);
    assert.ok(err.message.length > 0);
  }
}

/** Msgpack values a client could send: maps with and without the request's keys, and everything else. */
const msgpackValue = fc.oneof(
  fc.record({ v: fc.oneof(fc.constant(1), fc.anything()), target: fc.oneof(fc.string({ maxLength: 300 }), fc.anything()) }, { requiredKeys: [] }),
  fc.record({ v: fc.constant(1), ok: fc.boolean(), code: fc.oneof(fc.constantFrom('ERR_NOT_ALLOWED', 'ERR_NEW_CODE'), fc.anything()) }, { requiredKeys: [] }),
  fc.anything(),
);

describe('fuzz: the request frame', () => {
  it('arbitrary bytes in arbitrary chunks: a frame, incomplete, or a clear error; a frame body is a request or ERR_BAD_REQUEST', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const reader = new FrameReader(4096);
        for (const chunk of chunks) {
          const r = reader.push(Buffer.from(chunk));
          if (r.kind === 'incomplete') continue;
          if (r.kind === 'error') {
            assert.ok(r.message.length > 0);
            return;
          }
          assert.ok(r.body.length > 0 && r.body.length <= 4096);
          answersOrRefuses(() => parseRequest(decodeBody(r.body)), ProtocolError);
          return;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('well-framed msgpack of any shape: a valid request (target 1..255 chars) or ERR_BAD_REQUEST; a reply or ERR_BAD_REPLY', () => {
    fc.assert(
      fc.property(msgpackValue, (value) => {
        let body: Buffer;
        try {
          body = packr.pack(value);
        } catch {
          return; // not encodable: no client can send it
        }
        try {
          const req = parseRequest(decodeBody(body));
          assert.equal(req.v, 1);
          assert.ok(req.target.length >= 1 && req.target.length <= 255);
        } catch (err) {
          assert.ok(err instanceof ProtocolError && err.code === 'ERR_BAD_REQUEST', String(err));
        }
        try {
          const reply = parseReply(decodeBody(body));
          if (!reply.ok) assert.match(reply.code, /^ERR_/);
        } catch (err) {
          assert.ok(err instanceof ProtocolError && (err.code === 'ERR_BAD_REPLY' || err.code === 'ERR_BAD_REQUEST'), String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** Config-shaped text: sections, known and unknown keys, quotes, numbers, comments, brackets, garbage lines. */
const configText = fc
  .array(
    fc.oneof(
      fc.constantFrom('[proxy]', '[client]', '[general]', '[', '[proxy', '# comment', '', '   '),
      fc
        .tuple(
          fc.constantFrom('listen', 'server', 'allow', 'sslCertificate', 'handshakeTimeout', 'connectRate', 'maxConnections', 'forward', 'mxProxy', 'eventLog', 'user', 'nosuchkey', 'allow '),
          fc.oneof(
            fc.string({ maxLength: 40 }).map((s) => `"${s}"`),
            fc.constantFrom('"127.0.0.1:5678"', '"data 127.0.0.1:1 [::1]:2"', '"cn:hmi-* data"', '"20/s burst 40"', '"off"', '5000', '-1', '1e9', '"', '"\\"', '"a" "b"'),
            fc.integer().map(String),
            fc.string({ maxLength: 40 }),
          ),
        )
        .map(([k, v]) => `${k} = ${v}`),
      fc.string({ maxLength: 80 }),
    ),
    { maxLength: 25 },
  )
  .map((lines) => lines.join('\n'));

describe('fuzz: the config readers', () => {
  it('arbitrary config-shaped text: a config or a ConfigError whose every issue has a file and a line', () => {
    fc.assert(
      fc.property(configText, (text) => {
        for (const read of [
          () => readProxyConfig(text, 'fuzz.config', { checkFiles: false }),
          () => readClientConfig(text, 'fuzz.config', { checkFiles: false }),
        ]) {
          try {
            read();
          } catch (err) {
            assert.ok(err instanceof ConfigError, String(err));
            for (const i of err.issues) {
              assert.equal(i.file, 'fuzz.config');
              assert.ok(Number.isInteger(i.line) && i.line >= 0);
              assert.ok(i.message.length > 0);
            }
          }
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('arbitrary bytes as text: never anything but a ConfigError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400, unit: 'binary' }), (text) => {
        answersOrRefuses(() => readProxyConfig(text, 'fuzz.config', { checkFiles: false }), ConfigError);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('fuzz: event-log records', () => {
  it('any decoded value: a record or a string saying why not, never a throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ k: fc.constantFrom('e', 'x', 'c', 'd', 'z'), s: fc.anything(), t: fc.anything(), e: fc.anything(), id: fc.anything() }, { requiredKeys: [] })), (value) => {
        const r = asLogRecord(value);
        if (typeof r === 'string') assert.ok(r.length > 0);
        else assert.ok(['e', 'x', 'c', 'd'].includes(r.k));
      }),
      { numRuns: 2000 },
    );
  });
});
