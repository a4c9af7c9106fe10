/** Event log storage: file format round trips, damage handling (truncation, corruption, garbage), writer behaviour. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  EventLogWriter,
  MAGIC,
  MAX_RECORD_BYTES,
  decodeEventLog,
  encodeFrame,
  iterateEventLogFile,
  listLogFiles,
  readEventLogFile,
  type EventLogEnd,
} from '../../src/eventlog/index.js';

const HEADER = { kind: 'header', app: 'mxproxy', format: 1, startedAt: 1_700_000_000_000 };

let dir = '';
let fileNo = 0;
const freshPath = (): string => join(dir, `log-${++fileNo}`, 'events.mxlog');
async function freshLogPath(): Promise<string> {
  const path = freshPath();
  await mkdir(join(path, '..'));
  return path;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mxproxy-eventlog-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Records of varied shapes; `expected` is what reading back gives (binary comes back as Buffer). */
function makeRecord(i: number): { record: unknown; expected: unknown } {
  switch (i % 8) {
    case 0:
      return same({ seq: i, kind: 'event', n: i * 1.5, neg: -i - 1, big: 2 ** 40 + i, ok: i % 3 === 0, none: null });
    case 1:
      return same({ seq: i, text: `grüße ${'é'.repeat(i % 13)} ✓ ${i}`, empty: '' });
    case 2:
      return same({ seq: i, nested: { a: [1, 2, { b: [i, 'x'] }], deep: { deeper: { deepest: [[], {}] } } } });
    case 3:
      return same({ seq: i, bytes: Buffer.from([i & 255, 0, 255, 1]) });
    case 4: {
      const bytes = new Uint8Array([9, 8, 7, i & 255]);
      return { record: { seq: i, bytes }, expected: { seq: i, bytes: Buffer.from(bytes) } };
    }
    case 5:
      return same({ seq: i, id: BigInt(i) * 1_000_000_007n, at: new Date(1_700_000_000_000 + i) });
    case 6:
      return same([i, 'array-record', { x: -0.25 }, [true, false]]);
    default:
      return same({ seq: i, long: 'z'.repeat(200 + (i % 50)), list: Array.from({ length: i % 20 }, (_, k) => k * i) });
  }
}
const same = (record: unknown): { record: unknown; expected: unknown } => ({ record, expected: record });

/** An in-memory log plus the byte offset each record starts at (index 0 = header). */
function buildLog(records: unknown[], header: unknown = HEADER): { buf: Buffer; starts: number[] } {
  const frames = [encodeFrame(header), ...records.map((r) => encodeFrame(r))];
  const starts: number[] = [];
  let at = MAGIC.length;
  for (const f of frames) {
    starts.push(at);
    at += f.length;
  }
  return { buf: Buffer.concat([MAGIC, ...frames]), starts };
}

/** A frame with a correct length and CRC around an arbitrary body. */
function rawFrame(body: Buffer): Buffer {
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 4 + body.length);
  return out;
}

async function collect(path: string, chunkBytes?: number): Promise<{ records: unknown[]; end: EventLogEnd; progress: Array<[number, number]>; header: unknown }> {
  const records: unknown[] = [];
  const progress: Array<[number, number]> = [];
  let header: unknown;
  const it = iterateEventLogFile(path, { chunkBytes, onProgress: (r, t) => progress.push([r, t]), onHeader: (h) => (header = h) });
  for (;;) {
    const step = await it.next();
    if (step.done) return { records, end: step.value, progress, header };
    records.push(step.value);
  }
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

const seqOf = (r: unknown): number => (r as { seq: number }).seq;

describe('event log format: round trip', () => {
  it('writes a header and 1,000 varied records and reads them back equal, whole and streamed', async () => {
    const path = await freshLogPath();
    const made = Array.from({ length: 1000 }, (_, i) => makeRecord(i));
    const writer = await EventLogWriter.open({ path, header: HEADER });
    for (const m of made) writer.append(m.record);
    await writer.close();
    const size = (await stat(path)).size;

    const read = await readEventLogFile(path);
    assert.deepEqual(read.header, HEADER);
    assert.deepEqual(read.records, made.map((m) => m.expected));
    assert.deepEqual(read.stop, { offset: size, reason: 'end', message: 'read 1000 records' });
    assert.deepEqual(writer.stats(), { records: 1000, bytes: size, dropped: 0, files: 0 });

    // 4 KiB chunks: records straddle chunk boundaries.
    const streamed = await collect(path, 4096);
    assert.deepEqual(streamed.header, HEADER);
    assert.deepEqual(streamed.records, read.records);
    assert.deepEqual(streamed.end, { header: HEADER, records: 1000, stop: read.stop });
    assert.ok(streamed.progress.length > 1);
    assert.deepEqual(streamed.progress.at(-1), [size, size]);
  });

  it('streams a record larger than the chunk size', async () => {
    const path = await freshLogPath();
    const big = { seq: 1, blob: Buffer.alloc(3 * 1024 * 1024 + 7, 0xab) };
    const { buf } = buildLog([{ seq: 0 }, big, { seq: 2 }]);
    await writeFile(path, buf);
    const streamed = await collect(path, 1024 * 1024);
    assert.deepEqual(streamed.records, [{ seq: 0 }, big, { seq: 2 }]);
    assert.equal(streamed.end.stop.reason, 'end');
  });

  it('reads a header-only log as a clean end with no records', () => {
    const { buf } = buildLog([]);
    assert.deepEqual(decodeEventLog(buf), { header: HEADER, records: [], stop: { offset: buf.length, reason: 'end', message: 'read 0 records' } });
  });
});

describe('event log format: truncation', () => {
  const records = Array.from({ length: 20 }, (_, i) => makeRecord(i).record);
  const expected = Array.from({ length: 20 }, (_, i) => makeRecord(i).expected);
  const { buf, starts } = buildLog(records);
  const lastStart = starts.at(-1)!;

  it('a cut at every byte inside the last record keeps the 19 whole records before it', () => {
    for (let cut = lastStart + 1; cut < buf.length; cut++) {
      const got = decodeEventLog(buf.subarray(0, cut));
      assert.deepEqual(got.header, HEADER);
      assert.deepEqual(got.records, expected.slice(0, 19), `cut at ${cut}`);
      assert.equal(got.stop.reason, 'truncated', `cut at ${cut}`);
      assert.equal(got.stop.offset, lastStart, `cut at ${cut}`);
      assert.match(got.stop.message, new RegExp(`^log ends inside the record at byte ${lastStart} \\(needed (at least )?\\d+ more bytes\\); read 19 records$`));
    }
    const exact = decodeEventLog(buf.subarray(0, lastStart + 4));
    assert.match(exact.stop.message, new RegExp(`needed ${buf.length - lastStart - 4} more bytes`));
    // A cut exactly between records is a clean end.
    assert.deepEqual(decodeEventLog(buf.subarray(0, lastStart)).stop, { offset: lastStart, reason: 'end', message: 'read 19 records' });
  });

  it('a cut inside the header record or right after the magic gives no header, truncated at byte 8', () => {
    for (let cut = MAGIC.length; cut < starts[1]!; cut++) {
      const got = decodeEventLog(buf.subarray(0, cut));
      assert.equal(got.header, undefined, `cut at ${cut}`);
      assert.deepEqual(got.records, []);
      assert.equal(got.stop.reason, 'truncated');
      assert.equal(got.stop.offset, MAGIC.length);
      assert.match(got.stop.message, /^log ends inside the header record at byte 8 .*read 0 records \(no header\)$/);
    }
  });

  it('a cut inside the magic (an empty file included) is truncated at byte 0', () => {
    for (let cut = 0; cut < MAGIC.length; cut++) {
      const got = decodeEventLog(buf.subarray(0, cut));
      assert.deepEqual([got.header, got.records, got.stop.reason, got.stop.offset], [undefined, [], 'truncated', 0], `cut at ${cut}`);
    }
    assert.equal(decodeEventLog(Buffer.alloc(0)).stop.message, 'log is empty (0 bytes)');
  });

  it('the streaming reader stops at the same place for every cut inside the magic, header, first and last records', async () => {
    const path = await freshLogPath();
    const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
    for (const cut of [...range(0, starts[2]!), ...range(lastStart, buf.length)]) {
      await writeFile(path, buf.subarray(0, cut));
      const streamed = await collect(path, 4096);
      const whole = decodeEventLog(buf.subarray(0, cut));
      assert.deepEqual(streamed.records, whole.records, `cut at ${cut}`);
      assert.deepEqual(streamed.end, { header: whole.header, records: whole.records.length, stop: whole.stop }, `cut at ${cut}`);
    }
  });
});

describe('event log format: corruption and garbage', () => {
  const records = Array.from({ length: 10 }, (_, i) => ({ seq: i, payload: `record number ${i}` }));
  const { buf, starts } = buildLog(records);
  const k = 5; // damaged record
  const at = starts[k + 1]!; // starts[0] is the header

  it('any flipped byte in a body or CRC is corrupt at that record; the records before it are kept', () => {
    const end = starts[k + 2]!;
    for (let i = at + 4; i < end; i++) {
      const bad = Buffer.from(buf);
      bad[i]! ^= 0x5a;
      const got = decodeEventLog(bad);
      assert.deepEqual(got.records, records.slice(0, k), `flip at ${i}`);
      assert.equal(got.stop.reason, 'corrupt');
      assert.equal(got.stop.offset, at);
      assert.match(got.stop.message, new RegExp(`^record at byte ${at} is corrupt: CRC mismatch \\(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\\); read 5 records$`));
    }
  });

  it('a huge or zero length field is corrupt at once, without waiting for (or allocating) the body', async () => {
    for (const length of [0, MAX_RECORD_BYTES + 1, 0xffffffff]) {
      const bad = Buffer.from(buf);
      bad.writeUInt32BE(length, at);
      const got = decodeEventLog(bad);
      assert.deepEqual(got.records, records.slice(0, k));
      assert.deepEqual([got.stop.reason, got.stop.offset], ['corrupt', at]);
      assert.match(got.stop.message, new RegExp(`bad record length ${length} \\(must be 1\\.\\.${MAX_RECORD_BYTES}\\)`));
      // Even when the file ends right after the length field.
      assert.equal(decodeEventLog(bad.subarray(0, at + 4)).stop.reason, 'corrupt');
    }
    const path = await freshLogPath();
    const bad = Buffer.from(buf);
    bad.writeUInt32BE(0xffffffff, at);
    await writeFile(path, bad);
    const streamed = await collect(path);
    assert.deepEqual([streamed.records.length, streamed.end.stop.reason, streamed.end.stop.offset], [k, 'corrupt', at]);
  });

  it('a body with a valid CRC that is not one msgpack value is corrupt', () => {
    for (const body of [Buffer.from([0x92, 0x01]), Buffer.from([0x01, 0x02])]) {
      const log = Buffer.concat([buf, rawFrame(body)]);
      const got = decodeEventLog(log);
      assert.deepEqual(got.records, records);
      assert.deepEqual([got.stop.reason, got.stop.offset], ['corrupt', buf.length]);
      assert.match(got.stop.message, /msgpack body does not decode/);
    }
  });

  it('other files and other versions are not-a-log', () => {
    const text = decodeEventLog(Buffer.from('hello, this is not a log at all'));
    assert.deepEqual([text.header, text.records, text.stop.reason, text.stop.offset], [undefined, [], 'not-a-log', 0]);
    assert.match(text.stop.message, /bad magic/);
    assert.equal(decodeEventLog(Buffer.from('MXPX')).stop.reason, 'not-a-log');
    const v2 = Buffer.from(buf);
    v2[7] = 2;
    assert.match(decodeEventLog(v2).stop.message, /unsupported event log format version 2/);
  });
});

describe('event log format: properties', () => {
  const prefixRecords = Array.from({ length: 12 }, (_, i) => makeRecord(i));
  const prefix = buildLog(prefixRecords.map((m) => m.record));
  const prefixExpected = prefixRecords.map((m) => m.expected);
  const reasons = new Set(['end', 'truncated', 'corrupt', 'not-a-log']);

  it('arbitrary bytes (with or without the magic in front) never make decodeEventLog throw', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 600 }), (withMagic, bytes) => {
        const input = withMagic ? Buffer.concat([MAGIC, bytes]) : bytes;
        const got = decodeEventLog(input);
        assert.ok(reasons.has(got.stop.reason));
        assert.ok(got.stop.offset >= 0 && got.stop.offset <= input.length);
      }),
      { numRuns: 1000 },
    );
  });

  it('arbitrary bytes after a valid prefix keep all the prefix records', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (tail) => {
        const got = decodeEventLog(Buffer.concat([prefix.buf, tail]));
        assert.deepEqual(got.header, HEADER);
        assert.deepEqual(got.records.slice(0, prefixExpected.length), prefixExpected);
        if (tail.length === 0) assert.equal(got.stop.reason, 'end');
        else assert.ok(got.stop.offset >= prefix.buf.length);
      }),
      { numRuns: 500 },
    );
  });

  it('random damage to a valid log keeps exactly the records before the first damaged byte (or more), in order', () => {
    fc.assert(
      fc.property(fc.nat({ max: prefix.buf.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.nat({ max: prefix.buf.length }), (pos, xor, cut) => {
        const bad = Buffer.from(prefix.buf);
        bad[pos]! ^= xor;
        const damaged = bad.subarray(0, Math.max(cut, pos + 1));
        const got = decodeEventLog(damaged);
        const intact = prefix.starts.filter((_, i) => i > 0 && (prefix.starts[i + 1] ?? prefix.buf.length) <= pos).length;
        assert.ok(got.records.length >= Math.min(intact, prefixExpected.length));
        assert.deepEqual(got.records, prefixExpected.slice(0, got.records.length));
        assert.notEqual(got.stop.reason, 'end');
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary JSON-like records round-trip', () => {
    // msgpackr renames a "__proto__" key (prototype-pollution guard) and JSON has no -0: compare JSON-normal forms.
    const record = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"'));
    fc.assert(
      fc.property(record, fc.array(record, { maxLength: 5 }), (header, records) => {
        const normal = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
        const got = decodeEventLog(buildLog(records, header).buf);
        assert.deepEqual(got.header, normal(header));
        assert.deepEqual(got.records, records.map(normal));
        assert.equal(got.stop.reason, 'end');
      }),
      { numRuns: 300 },
    );
  });
});

describe('EventLogWriter', () => {
  it('flushes on its own within a few hundred ms, without flush() or close()', async () => {
    const path = await freshLogPath();
    const writer = await EventLogWriter.open({ path, header: HEADER });
    for (let seq = 0; seq < 3; seq++) writer.append({ seq });
    const seen = await waitFor(async () => (await readEventLogFile(path)).records.length === 3, 1000);
    assert.ok(seen, 'records reached the file within 1 s');
    assert.deepEqual((await readEventLogFile(path)).records, [{ seq: 0 }, { seq: 1 }, { seq: 2 }]);
    await writer.close();
  });

  it('writes at once when more than 64 KiB is pending, long before a slow timer', async () => {
    const path = await freshLogPath();
    const writer = await EventLogWriter.open({ path, header: HEADER, flushIntervalMs: 60_000 });
    for (let seq = 0; seq < 100; seq++) writer.append({ seq, pad: 'p'.repeat(1000) });
    const seen = await waitFor(async () => (await readEventLogFile(path)).records.length >= 60, 1000);
    assert.ok(seen, 'the first 64 KiB reached the file');
    await writer.close();
  });

  it('flush() and close() put everything on disk; appends after close are dropped and counted', async () => {
    const path = await freshLogPath();
    const writer = await EventLogWriter.open({ path, header: HEADER, flushIntervalMs: 60_000 });
    for (let seq = 0; seq < 250; seq++) writer.append({ seq });
    await writer.flush();
    assert.equal((await readEventLogFile(path)).records.length, 250);
    for (let seq = 250; seq < 500; seq++) writer.append({ seq });
    await writer.close();
    await writer.close(); // idempotent
    writer.append({ seq: 500 });
    writer.flushSync(); // no-op once closed
    const read = await readEventLogFile(path);
    assert.deepEqual(read.records.map(seqOf), Array.from({ length: 500 }, (_, i) => i));
    assert.equal(read.stop.reason, 'end');
    assert.deepEqual(writer.stats(), { records: 500, bytes: (await stat(path)).size, dropped: 1, files: 0 });
  });

  it('flushSync() writes everything pending before it returns', async () => {
    const path = await freshLogPath();
    const writer = await EventLogWriter.open({ path, header: HEADER, flushIntervalMs: 60_000 });
    for (let seq = 0; seq < 10; seq++) writer.append({ seq });
    writer.flushSync();
    assert.deepEqual(decodeEventLog(readFileSync(path)).records.map(seqOf), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    writer.append({ seq: 10 });
    await writer.close();
    assert.equal((await readEventLogFile(path)).records.length, 11);
  });

  it('rotates at maxBytes keeping exactly `files` files, each with magic and header, newest records contiguous', async () => {
    const path = await freshLogPath();
    const maxBytes = 4096;
    const writer = await EventLogWriter.open({ path, header: HEADER, maxBytes, files: 3, flushIntervalMs: 5 });
    const total = 2000;
    for (let seq = 0; seq < total; seq++) {
      writer.append({ seq, pad: 'r'.repeat(seq % 40) });
      if (seq % 300 === 0) await writer.flush(); // rotate both from a backlog and from small writes
    }
    await writer.close();

    const files = await listLogFiles(path);
    assert.deepEqual(files, [`${path}.2`, `${path}.1`, path]);
    const seqs: number[] = [];
    for (const file of files) {
      const bytes = await readFile(file);
      assert.ok(bytes.subarray(0, 8).equals(MAGIC), file);
      assert.ok(bytes.length <= maxBytes, `${file} has ${bytes.length} bytes`);
      const read = decodeEventLog(bytes);
      assert.deepEqual(read.header, HEADER);
      assert.equal(read.stop.reason, 'end');
      assert.ok(read.records.length > 0);
      seqs.push(...read.records.map(seqOf));
    }
    assert.equal(seqs.at(-1), total - 1);
    assert.ok(seqs[0]! > 0, 'the oldest records were rotated out');
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    const stats = writer.stats();
    assert.equal(stats.records, total);
    assert.equal(stats.dropped, 0);
    assert.ok(stats.files >= 3, `rotated ${stats.files} times`);
  });

  it('puts a record bigger than maxBytes in a file of its own', async () => {
    const path = await freshLogPath();
    const writer = await EventLogWriter.open({ path, header: HEADER, maxBytes: 1024, files: 5 });
    writer.append({ seq: 0 });
    writer.append({ seq: 1, blob: 'b'.repeat(5000) });
    writer.append({ seq: 2 });
    await writer.close();
    const files = await listLogFiles(path);
    assert.equal(files.length, 3);
    const contents = await Promise.all(files.map((f) => readEventLogFile(f)));
    assert.deepEqual(contents.map((c) => c.records.map(seqOf)), [[0], [1], [2]]);
    assert.ok(contents.every((c) => c.stop.reason === 'end'));
  });

  it('rotates an existing file away on open, so each run starts with its own header', async () => {
    const path = await freshLogPath();
    const first = await EventLogWriter.open({ path, header: { ...HEADER, run: 1 } });
    first.append({ seq: 0 });
    await first.close();
    const second = await EventLogWriter.open({ path, header: { ...HEADER, run: 2 } });
    await second.close();
    assert.deepEqual(await listLogFiles(path), [`${path}.1`, path]);
    const old = await readEventLogFile(`${path}.1`);
    assert.deepEqual([old.header, old.records], [{ ...HEADER, run: 1 }, [{ seq: 0 }]]);
    const now = await readEventLogFile(path);
    assert.deepEqual([now.header, now.records, now.stop.reason], [{ ...HEADER, run: 2 }, [], 'end']);
    assert.equal(second.stats().files, 1);
  });

  it('rejects open with a message naming the path when its directory is missing or is a file', async () => {
    const gone = join(dir, 'removed-dir');
    await mkdir(gone);
    await rmdir(gone);
    const path = join(gone, 'events.mxlog');
    await assert.rejects(EventLogWriter.open({ path, header: HEADER }), (err: Error) => {
      assert.equal(err.message, `cannot open event log ${path}: directory ${gone} does not exist`);
      return true;
    });
    const file = join(dir, 'plain-file');
    await writeFile(file, 'x');
    await assert.rejects(EventLogWriter.open({ path: join(file, 'events.mxlog'), header: HEADER }), /cannot open event log .*plain-file is not a directory/);
    await assert.rejects(EventLogWriter.open({ path: await freshLogPath(), header: HEADER, files: 0 }), RangeError);
  });

  it('throws TypeError for a record msgpack cannot encode, and keeps working', async () => {
    const path = await freshLogPath();
    const writer = await EventLogWriter.open({ path, header: HEADER });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => writer.append(cyclic), TypeError);
    assert.throws(() => writer.append({ tooBig: 10n ** 30n }), TypeError);
    writer.append({ seq: 1 });
    await writer.close();
    assert.deepEqual((await readEventLogFile(path)).records, [{ seq: 1 }]);
    await assert.rejects(EventLogWriter.open({ path: await freshLogPath(), header: { bad: Symbol('x') } }), TypeError);
  });

  it('an I/O failure after open (rotation blocked) calls onError once, never throws, and counts dropped records', async () => {
    const path = await freshLogPath();
    await mkdir(`${path}.2`); // unlink(path.2) fails with EISDIR when the first rotation comes
    await writeFile(join(`${path}.2`, 'keep'), 'x');
    const errors: Error[] = [];
    const writer = await EventLogWriter.open({ path, header: HEADER, maxBytes: 2048, files: 3, onError: (e) => errors.push(e) });
    const total = 500;
    for (let seq = 0; seq < total; seq++) writer.append({ seq, pad: 'f'.repeat(30) });
    await writer.flush();
    for (let seq = total; seq < total + 10; seq++) writer.append({ seq });
    await writer.close();
    assert.equal(errors.length, 1);
    assert.match((errors[0] as NodeJS.ErrnoException).code ?? '', /^(EISDIR|EPERM)$/);
    const stats = writer.stats();
    assert.ok(stats.dropped > 0);
    assert.equal(stats.records + stats.dropped, total + 10);
    const read = await readEventLogFile(path);
    assert.equal(read.stop.reason, 'end');
    assert.deepEqual(read.records.map(seqOf), Array.from({ length: stats.records }, (_, i) => i));
  });

  it('a failing write (file size limit, like a full disk) calls onError once and the process carries on', async (t) => {
    const bash = await new Promise<boolean>((resolve) => spawn('bash', ['-c', 'true']).on('error', () => resolve(false)).on('exit', (c) => resolve(c === 0)));
    if (!bash) return t.skip('bash is not available');
    const path = await freshLogPath();
    const moduleUrl = new URL('../../src/eventlog/index.js', import.meta.url).href;
    const script = `
      const { EventLogWriter } = await import(${JSON.stringify(moduleUrl)});
      const errors = [];
      const writer = await EventLogWriter.open({ path: ${JSON.stringify(path)}, header: { kind: 'header' }, onError: (e) => errors.push(e.code) });
      for (let seq = 0; seq < 1000; seq++) writer.append({ seq, pad: 'd'.repeat(90) });
      await writer.flush();
      writer.append({ seq: 1000 });
      await writer.close();
      console.log(JSON.stringify({ errors, stats: writer.stats() }));
    `;
    // ulimit -f counts 1 KiB blocks: writes past 16 KiB fail with EFBIG (Node ignores SIGXFSZ).
    const child = spawn('bash', ['-c', 'ulimit -f 16 && exec "$0" --input-type=module -e "$1"', process.execPath, script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, err);
    const result = JSON.parse(out) as { errors: string[]; stats: { records: number; dropped: number } };
    assert.deepEqual(result.errors, ['EFBIG']);
    assert.equal(result.stats.records + result.stats.dropped, 1001);
    assert.ok(result.stats.dropped > 0);
    const read = await readEventLogFile(path);
    assert.ok(read.records.length >= result.stats.records);
    assert.deepEqual(read.records.map(seqOf), Array.from({ length: read.records.length }, (_, i) => i));
  });

  it('listLogFiles lists the series oldest first and ignores other names', async () => {
    const path = await freshLogPath();
    for (const name of ['.1', '.3', '.10', '', '.01', '.bak', '.2x']) await writeFile(path + name, '');
    assert.deepEqual(await listLogFiles(path), [`${path}.10`, `${path}.3`, `${path}.1`, path]);
    assert.deepEqual(await listLogFiles(join(dir, 'nowhere', 'x.mxlog')), []);
  });
});
