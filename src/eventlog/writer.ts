/**
 * Buffered, size-rotated event log writer. `append` only encodes and queues (it runs on the proxy's hot path);
 * one async write at a time drains the queue. I/O failures never throw: they are reported once through
 * `onError`, writing stops and later records are counted as dropped.
 */
import { writeSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EventLogError } from '../errors.js';
import { MAGIC, encodeFrame } from './format.js';
import { exists, rotateFiles } from './files.js';

export interface EventLogWriterOptions {
  path: string;
  /** First record of every file (including rotated ones), e.g. `{ kind: 'header', ... }`. */
  header: unknown;
  /** Rotate before a write would take the current file past this size. Unset: never rotate by size. */
  maxBytes?: number;
  /** Files kept, the current one included (default 5). */
  files?: number;
  /** Longest time appended records stay in memory (default 100 ms). */
  flushIntervalMs?: number;
  /** Called once per distinct I/O failure; default: a process warning. */
  onError?: (err: Error) => void;
}

export interface EventLogWriterStats {
  /** Records (not counting headers) written to disk. */
  records: number;
  /** Bytes written to disk, magic and headers included. */
  bytes: number;
  /** Records that will never be written: appended after close or lost to an I/O failure. */
  dropped: number;
  /** Rotations so far (including the one at open when `path` already existed). */
  files: number;
}

/** Pending bytes above which a write starts at once instead of at the next tick of the flush timer. */
const EAGER_FLUSH_BYTES = 64 * 1024;
/** Largest single write, so a backlog is not copied into one huge buffer. */
const MAX_WRITE_BYTES = 1024 * 1024;
// Owner read/write, group read: logs name peers and targets.
const FILE_MODE = 0o640;

export class EventLogWriter {
  private handle: FileHandle | undefined;
  /** Bytes in the current file, counting a write in flight. */
  private fileBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;
  private readonly reported = new Set<string>();
  private readonly counts: EventLogWriterStats;

  private constructor(
    readonly path: string,
    private readonly headerFile: Buffer,
    private readonly maxBytes: number | undefined,
    private readonly files: number,
    private readonly flushIntervalMs: number,
    private readonly onError: (err: Error) => void,
    handle: FileHandle,
    rotations: number,
  ) {
    this.handle = handle;
    this.fileBytes = headerFile.length;
    this.counts = { records: 0, bytes: headerFile.length, dropped: 0, files: rotations };
  }

  /**
   * Starts a new log at `path`; an existing file there is rotated away first, so every run begins with its
   * header. Rejects if the directory is missing or the file cannot be created (the message names the path).
   */
  static async open(opts: EventLogWriterOptions): Promise<EventLogWriter> {
    const { path, maxBytes, files = 5, flushIntervalMs = 100 } = opts;
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
      throw new RangeError(`event log maxBytes must be a positive integer, got ${maxBytes}`);
    }
    if (!(Number.isSafeInteger(files) && files >= 1)) {
      throw new RangeError(`event log files must be an integer >= 1, got ${files}`);
    }
    if (!(Number.isFinite(flushIntervalMs) && flushIntervalMs >= 0)) {
      throw new RangeError(`event log flushIntervalMs must be >= 0, got ${flushIntervalMs}`);
    }
    const headerFile = Buffer.concat([MAGIC, encodeFrame(opts.header)]);
    const onError = opts.onError ?? ((err: Error) => process.emitWarning(err.message, 'EventLogWarning'));

    const dir = dirname(path);
    const dirStat = await stat(dir).catch((err: NodeJS.ErrnoException) => err);
    if (dirStat instanceof Error) {
      const why = dirStat.code === 'ENOENT' ? 'does not exist' : `cannot be read (${dirStat.message})`;
      throw new EventLogError(`cannot open event log ${path}: directory ${dir} ${why}`, { cause: dirStat });
    }
    if (!dirStat.isDirectory()) throw new EventLogError(`cannot open event log ${path}: ${dir} is not a directory`);
    try {
      const rotations = (await exists(path)) ? 1 : 0;
      if (rotations) await rotateFiles(path, files);
      const handle = await createLogFile(path, headerFile);
      return new EventLogWriter(path, headerFile, maxBytes, files, flushIntervalMs, onError, handle, rotations);
    } catch (err) {
      throw new EventLogError(`cannot open event log ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Queues one record. Throws TypeError only if it cannot be encoded; never for I/O. */
  append(record: unknown): void {
    if (this.closing || this.failure) {
      this.counts.dropped++;
      return;
    }
    const frame = encodeFrame(record);
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (this.pendingBytes > EAGER_FLUSH_BYTES) this.kick();
    else if (!this.draining) this.schedule();
  }

  /** Resolves once everything appended so far is written (or dropped by a failure). Never rejects. */
  async flush(): Promise<void> {
    while (this.pending.length > 0 && !this.failure && this.handle) {
      this.kick();
      await this.draining;
    }
    await this.draining;
  }

  /** Flushes, fsyncs and closes. Later appends are dropped. Idempotent; never rejects. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  /**
   * Writes everything pending synchronously, for process exit handlers. It ignores maxBytes (no rotation on
   * this path), and a write already in flight may land after these records.
   */
  flushSync(): void {
    this.clearTimer();
    const handle = this.handle;
    if (this.pending.length === 0 || this.failure || !handle) return;
    const frames = this.takeAll();
    const data = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
    this.fileBytes += data.length;
    try {
      for (let off = 0; off < data.length; ) off += writeSync(handle.fd, data, off, data.length - off, null);
      this.wrote(frames.length, data.length);
    } catch (err) {
      this.fail(err, frames.length);
    }
  }

  stats(): EventLogWriterStats {
    return { ...this.counts };
  }

  /** Bytes appended and not yet handed to a write: how far the disk is behind (the admin endpoint's metrics). */
  backlogBytes(): number {
    return this.pendingBytes;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.kick();
  };

  private schedule(): void {
    this.timer ??= setTimeout(this.onTimer, this.flushIntervalMs).unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Starts the drain loop unless it is running (it picks up whatever is appended meanwhile). */
  private kick(): void {
    this.clearTimer();
    if (this.draining || this.failure || !this.handle) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Appends that ran after the loop's last check (but before this callback) saw it still draining.
      if (this.pending.length > 0 && !this.failure && this.handle) this.schedule();
    });
  }

  private async drain(): Promise<void> {
    let inFlight = 0;
    try {
      while (this.pending.length > 0 && !this.failure && this.handle) {
        const frames = this.takeBatch();
        if (frames === undefined) {
          await this.rotate();
          continue;
        }
        inFlight = frames.length;
        const handle = this.handle;
        const data = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
        await writeAll(handle, data);
        inFlight = 0;
        this.wrote(frames.length, data.length);
      }
    } catch (err) {
      this.fail(err, inFlight);
    }
  }

  /**
   * The next frames to write: as many as fit under maxBytes (and MAX_WRITE_BYTES), at least one if the file
   * holds only its header (an oversized record gets a file of its own); undefined means rotate first.
   */
  private takeBatch(): Buffer[] | undefined {
    const room = this.maxBytes === undefined ? Infinity : this.maxBytes - this.fileBytes;
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length) {
      const size = this.pending[n]!.length;
      if (bytes + size > room || (n > 0 && bytes + size > MAX_WRITE_BYTES)) break;
      bytes += size;
      n++;
    }
    if (n === 0) {
      if (this.fileBytes > this.headerFile.length) return undefined;
      n = 1;
      bytes = this.pending[0]!.length;
    }
    const frames = this.pending.splice(0, n);
    this.pendingBytes -= bytes;
    this.fileBytes += bytes;
    return frames;
  }

  private takeAll(): Buffer[] {
    const frames = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return frames;
  }

  /** Closes the full file and starts a new one. The old handle stays usable until the swap (for flushSync). */
  private async rotate(): Promise<void> {
    const old = this.handle!;
    await old.sync();
    await rotateFiles(this.path, this.files);
    this.handle = await createLogFile(this.path, this.headerFile);
    this.fileBytes = this.headerFile.length;
    this.counts.files++;
    this.counts.bytes += this.headerFile.length;
    await old.close();
  }

  private async shutdown(): Promise<void> {
    await this.flush();
    this.clearTimer();
    const handle = this.handle;
    this.handle = undefined; // before the awaits, so flushSync cannot write to a closing fd
    if (!handle) return;
    try {
      if (!this.failure) await handle.sync();
    } catch (err) {
      this.report(err);
    }
    try {
      await handle.close();
    } catch (err) {
      this.report(err);
    }
  }

  private wrote(records: number, bytes: number): void {
    this.counts.records += records;
    this.counts.bytes += bytes;
  }

  /** Stops writing for good: the failed write's records and everything pending are dropped. */
  private fail(err: unknown, lost: number): void {
    this.counts.dropped += lost + this.takeAll().length;
    this.clearTimer();
    if (!this.failure) this.failure = toError(err);
    this.report(err);
  }

  private report(err: unknown): void {
    const error = toError(err);
    const key = `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    try {
      this.onError(error);
    } catch (cbErr) {
      // A throwing callback must not turn into an unhandled rejection inside the drain loop.
      const message = (cbErr as Error)?.message ?? String(cbErr);
      process.emitWarning(`event log onError callback threw: ${message}`, 'EventLogWarning');
    }
  }
}

/** Creates `path` (failing if it exists) and writes magic + header in one write, so no reader sees half a header. */
async function createLogFile(path: string, headerFile: Buffer): Promise<FileHandle> {
  const handle = await open(path, 'ax', FILE_MODE);
  try {
    await writeAll(handle, headerFile);
    return handle;
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/** Writes all of `data` at the end of the file (O_APPEND), looping over short writes. */
async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; ) off += (await handle.write(data, off, data.length - off, null)).bytesWritten;
}

const toError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
