/**
 * The live side of the event log: every event as it enters the root actor, every state transition (the
 * root's from its snapshots, each pair's from the registry's step observer: ./transitions.ts), and at `traffic`/`payload` level every forwarded chunk. Appends are synchronous and
 * cheap; the writer buffers and flushes at least every 100 ms.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import type { ProxyEvent } from '../../machines/proxy.js';
import type { Clock } from '../clock.js';
import { EventLogWriter, type EventLogWriterStats } from './writer.js';
import type { EventLogLevel } from '../shared/eventLogLevel.js';
import { LOG_FORMAT, LOG_VERSION, type HeaderRecord, type LogRecord } from './records.js';
import { TransitionTracker } from './transitions.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

export interface RecorderOptions {
  path: string;
  level: EventLogLevel;
  /** Rotate at this size (bytes); undefined: never. */
  maxBytes?: number;
  /** Files kept, the current one included. */
  files?: number;
  clock: Clock;
  /** A write failure (disk full, permissions): reported once, the proxy goes on without its log. */
  onError?: (err: Error) => void;
}

export class EventRecorder {
  private seq = 0;
  private readonly tracker: TransitionTracker;

  private constructor(
    private readonly writer: EventLogWriter,
    readonly level: EventLogLevel,
    private readonly clock: Clock,
  ) {
    this.tracker = new TransitionTracker((t) => this.append({ k: 'x', s: 0, t: 0, ...t }));
  }

  static async open(opts: RecorderOptions): Promise<EventRecorder> {
    const header: HeaderRecord = {
      kind: 'header',
      format: LOG_FORMAT,
      version: LOG_VERSION,
      level: opts.level,
      started: opts.clock.now(),
      host: os.hostname(),
      pid: process.pid,
      mxproxy: pkg.version,
    };
    const writer = await EventLogWriter.open({
      path: opts.path,
      header,
      ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
      ...(opts.files !== undefined ? { files: opts.files } : {}),
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
    return new EventRecorder(writer, opts.level, opts.clock);
  }

  get path(): string {
    return this.writer.path;
  }

  /** For the root's `observeChild` input: each child's state after every event it takes. */
  get observeChild(): TransitionTracker['child'] {
    return this.tracker.child;
  }

  /** For the root actor's snapshots (its first one too: subscribe does not replay it). */
  get observeRoot(): TransitionTracker['root'] {
    return this.tracker.root;
  }

  private append(r: LogRecord): void {
    r.s = ++this.seq;
    r.t = this.clock.now();
    this.writer.append(r);
  }

  /** An event, as it is handed to the root actor. */
  event(e: ProxyEvent): void {
    this.tracker.entering(e.type);
    this.append({ k: 'e', s: 0, t: 0, e });
  }

  /** A forwarded chunk (only called at traffic/payload level). */
  chunk(id: string, d: 'up' | 'down', data: Buffer): void {
    if (this.level === 'payload') this.append({ k: 'c', s: 0, t: 0, id, d, n: data.length, b: data });
    else this.append({ k: 'c', s: 0, t: 0, id, d, n: data.length });
  }

  stats(): EventLogWriterStats & { seq: number } {
    return { ...this.writer.stats(), seq: this.seq };
  }

  /** Bytes recorded and not yet handed to a write. */
  backlogBytes(): number {
    return this.writer.backlogBytes();
  }

  flushSync(): void {
    this.writer.flushSync();
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}
