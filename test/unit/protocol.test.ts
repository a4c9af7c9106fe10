/** mxproxy/1 frames: reading one request incrementally, validating it, encoding replies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FrameReader,
  OK_REPLY,
  decodeBody,
  encodeFrame,
  encodeReply,
  encodeRequest,
  parseReply,
  parseRequest,
} from '../../src/protocol/frame.js';
import { ProtocolError } from '../../src/errors.js';
import { ALL_REPLY_CODES, isReplyCode } from '../../src/shared/codes.js';

describe('FrameReader', () => {
  it('assembles a frame split at every byte boundary and returns the bytes after it', () => {
    const request = encodeRequest('data');
    const stream = Buffer.concat([request, Buffer.from('tail')]);
    for (let cut = 1; cut < request.length; cut++) {
      const r = new FrameReader(4096);
      assert.deepEqual(r.push(stream.subarray(0, cut)), { kind: 'incomplete' }, `cut at ${cut}`);
      const done = r.push(stream.subarray(cut));
      assert.equal(done.kind, 'frame', `cut at ${cut}`);
      if (done.kind !== 'frame') continue;
      assert.equal(done.rest.toString(), 'tail');
      assert.equal(parseRequest(decodeBody(done.body)).target, 'data');
    }
  });

  it('refuses a zero length and a length above the limit as soon as the header is in', () => {
    assert.equal(new FrameReader(64).push(Buffer.from([0, 0, 0, 0])).kind, 'error');
    const r = new FrameReader(64).push(Buffer.from([0, 0, 0, 65]));
    assert.equal(r.kind, 'error');
    assert.match(r.kind === 'error' ? r.message : '', /exceeds maxRequestBytes \(64\)/);
    assert.equal(new FrameReader(64).push(Buffer.from([0, 0, 0, 64])).kind, 'incomplete');
  });
});

describe('request validation', () => {
  it('accepts { v: 1, target } and ignores unknown keys', () => {
    assert.deepEqual(parseRequest({ v: 1, target: 'event', extra: true }), { v: 1, target: 'event' });
  });

  for (const [name, value] of [
    ['a string', 'data'],
    ['an array', [1, 'data']],
    ['null', null],
    ['version 2', { v: 2, target: 'data' }],
    ['no version', { target: 'data' }],
    ['no target', { v: 1 }],
    ['an empty target', { v: 1, target: '' }],
    ['a numeric target', { v: 1, target: 5 }],
    ['an overlong target', { v: 1, target: 'x'.repeat(256) }],
  ] as const) {
    it(`refuses ${name} with a ProtocolError carrying ERR_BAD_REQUEST`, () => {
      assert.throws(() => parseRequest(value), (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_BAD_REQUEST');
    });
  }

  it('refuses bytes that are not msgpack, and msgpack that is not a request', () => {
    assert.throws(() => decodeBody(Buffer.from([0x82, 0xa1])), ProtocolError); // a map cut short
    assert.throws(() => parseRequest(decodeBody(Buffer.from([0xc1]))), ProtocolError); // the never-used byte
  });
});

describe('replies', () => {
  it('round-trips ok and decline replies', () => {
    const dec = (b: Buffer) => parseReply(decodeBody(b.subarray(4)));
    assert.deepEqual(dec(OK_REPLY), { v: 1, ok: true });
    assert.deepEqual(dec(encodeReply({ v: 1, ok: false, code: 'ERR_NOT_ALLOWED', message: 'no' })), {
      v: 1,
      ok: false,
      code: 'ERR_NOT_ALLOWED',
      message: 'no',
    });
    assert.equal(OK_REPLY.readUInt32BE(0), OK_REPLY.length - 4);
  });

  it('encodes plain msgpack maps any implementation reads (fixmap with str keys)', () => {
    const f = encodeFrame({ v: 1, target: 'data' });
    assert.equal(f[4]! & 0xf0, 0x80, 'a fixmap');
    assert.equal(f[5], 0xa1, 'first key is a 1-char fixstr');
  });

  it('has the documented stable codes', () => {
    for (const c of ['ERR_BAD_REQUEST', 'ERR_UNKNOWN_TARGET', 'ERR_NOT_ALLOWED', 'ERR_TARGET_UNREACHABLE', 'ERR_HANDSHAKE_TIMEOUT', 'ERR_SHUTTING_DOWN']) {
      assert.ok(isReplyCode(c), c);
    }
    assert.ok(!isReplyCode('ERR_NOPE'));
    assert.equal(new Set(ALL_REPLY_CODES).size, ALL_REPLY_CODES.length);
  });
});
