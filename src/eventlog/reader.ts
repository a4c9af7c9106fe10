/** Reading event logs: whole buffers, whole files, or streamed in chunks. Never throws on bad bytes. */
import { open, readFile } from 'node:fs/promises';
import { MAGIC_BYTES, checkMagic, readFrame } from './format.js';

export type EventLogStopReason = 'end' | 'truncated' | 'corrupt' | 'not-a-log';

/** Where and why reading stopped. `offset` is the file offset of the record (or magic) that could not be read. */
export interface EventLogStop {
  offset: number;
  reason: EventLogStopReason;
  message: string;
}

export interface EventLogContents {
  /** The file's first record; undefined if the file ends or breaks before it. */
  header: unknown | undefined;
  records: unknown[];
  stop: EventLogStop;
}

/** What `iterateEventLogFile` returns once its records are exhausted. */
export interface EventLogEnd {
  header: unknown | undefined;
  /** How many records (not counting the header) were yielded. */
  records: number;
  stop: EventLogStop;
}

export interface IterateOptions {
  /** Bytes per read; default 1 MiB. A record longer than this is read whole regardless. */
  chunkBytes?: number;
  /** Called after each read, e.g. for a progress bar. `totalBytes` is the size when the file was opened. */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Called with the header before the first record is yielded. */
  onHeader?: (header: unknown) => void;
}

type Step =
  | { kind: 'magic'; end: number }
  | { kind: 'header' | 'record'; value: unknown; end: number }
  | { kind: 'need'; needed: number; lengthKnown: boolean }
  | { kind: 'stop'; stop: EventLogStop };

/**
 * Incremental parse state shared by the buffer and the streaming readers. `next` looks at `buf` from `pos`
 * (buf[0] being file offset `base`) and reports one item, or how many more bytes it needs.
 */
class Scanner {
  private phase: 'magic' | 'header' | 'records' = 'magic';
  header: unknown = undefined;
  count = 0;

  next(buf: Buffer, pos: number, base: number): Step {
    if (this.phase === 'magic') {
      const magic = checkMagic(buf.subarray(pos));
      if (magic.kind === 'not-a-log') return stopAt(base + pos, 'not-a-log', magic.message);
      if (magic.kind === 'incomplete') {
        return { kind: 'need', needed: MAGIC_BYTES - (buf.length - pos), lengthKnown: true };
      }
      this.phase = 'header';
      return { kind: 'magic', end: pos + MAGIC_BYTES };
    }
    const frame = readFrame(buf, pos);
    if (frame.kind === 'incomplete') return { kind: 'need', needed: frame.needed, lengthKnown: frame.lengthKnown };
    if (frame.kind === 'corrupt') {
      const offset = base + pos;
      return stopAt(offset, 'corrupt', `${this.what()} at byte ${offset} is corrupt: ${frame.message}; ${this.progress()}`);
    }
    if (this.phase === 'header') {
      this.phase = 'records';
      this.header = frame.value;
      return { kind: 'header', value: frame.value, end: frame.end };
    }
    this.count++;
    return { kind: 'record', value: frame.value, end: frame.end };
  }

  /** The stop for input that ended with `remaining` bytes at file offset `offset` and `next` wanting `needed` more. */
  ended(offset: number, remaining: number, needed: number, lengthKnown: boolean): EventLogStop {
    if (this.phase === 'records' && remaining === 0) return { offset, reason: 'end', message: this.progress() };
    if (this.phase === 'magic') {
      const empty = offset + remaining === 0;
      const message = empty ? 'log is empty (0 bytes)' : `log ends inside the magic (needed ${needed} more bytes)`;
      return { offset, reason: 'truncated', message };
    }
    const more = `${lengthKnown ? '' : 'at least '}${needed} more bytes`;
    const message = `log ends inside the ${this.what()} at byte ${offset} (needed ${more}); ${this.progress()}`;
    return { offset, reason: 'truncated', message };
  }

  private what(): string {
    return this.phase === 'header' ? 'header record' : 'record';
  }

  private progress(): string {
    return `read ${this.count} record${this.count === 1 ? '' : 's'}${this.phase === 'records' ? '' : ' (no header)'}`;
  }
}

const stopAt = (offset: number, reason: EventLogStopReason, message: string): Step => ({
  kind: 'stop',
  stop: { offset, reason, message },
});

/** Decodes a whole log held in memory. Never throws: damage ends the result at the last whole, valid record. */
export function decodeEventLog(input: Uint8Array): EventLogContents {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const scanner = new Scanner();
  const records: unknown[] = [];
  let pos = 0;
  for (;;) {
    const step = scanner.next(buf, pos, 0);
    if (step.kind === 'stop') return { header: scanner.header, records, stop: step.stop };
    if (step.kind === 'need') {
      return { header: scanner.header, records, stop: scanner.ended(pos, buf.length - pos, step.needed, step.lengthKnown) };
    }
    if (step.kind === 'record') records.push(step.value);
    pos = step.end;
  }
}

/** Reads and decodes a whole log file (it must fit in memory; see iterateEventLogFile otherwise). */
export async function readEventLogFile(path: string): Promise<EventLogContents> {
  return decodeEventLog(await readFile(path));
}

/**
 * Streams a log file's records (not the header: see `onHeader` and the return value) reading `chunkBytes` at a
 * time, and returns where and why reading stopped. `for await` drops that return value: call `next()` directly
 * to get it. I/O errors (missing file, EACCES) reject; bad bytes end the iteration with a stop reason.
 */
export async function* iterateEventLogFile(
  path: string,
  opts: IterateOptions = {},
): AsyncGenerator<unknown, EventLogEnd, undefined> {
  const chunkBytes = Math.max(4096, opts.chunkBytes ?? 1024 * 1024);
  const handle = await open(path, 'r');
  try {
    const totalBytes = (await handle.stat()).size;
    const scanner = new Scanner();
    let buf = Buffer.alloc(0);
    let pos = 0;
    let base = 0; // file offset of buf[0]
    let bytesRead = 0;
    let eof = false;
    for (;;) {
      const step = scanner.next(buf, pos, base);
      if (step.kind === 'stop') return { header: scanner.header, records: scanner.count, stop: step.stop };
      if (step.kind === 'header') opts.onHeader?.(step.value);
      if (step.kind === 'record') yield step.value;
      if (step.kind !== 'need') {
        pos = step.end;
        continue;
      }
      if (eof) {
        const stop = scanner.ended(base + pos, buf.length - pos, step.needed, step.lengthKnown);
        return { header: scanner.header, records: scanner.count, stop };
      }
      // Read whole chunks until the missing bytes are in (one concat, so a 16 MiB record costs one copy).
      const chunks: Buffer[] = [buf.subarray(pos)];
      let got = 0;
      while (got < step.needed) {
        const chunk = Buffer.allocUnsafe(Math.max(chunkBytes, step.needed - got));
        const { bytesRead: n } = await handle.read(chunk, 0, chunk.length, null);
        if (n === 0) {
          eof = true;
          break;
        }
        chunks.push(chunk.subarray(0, n));
        got += n;
        bytesRead += n;
      }
      opts.onProgress?.(bytesRead, totalBytes);
      base += pos;
      pos = 0;
      buf = Buffer.concat(chunks);
    }
  } finally {
    await handle.close();
  }
}
