/**
 * /events: the page's live feed as Server-Sent Events. At most every BATCH_MS, and only while a page listens,
 * the counts and the table are rebuilt and what changed since the last batch is sent to every listener: a
 * busy proxy costs one batch per BATCH_MS, not one message per event. A new listener gets the whole picture
 * first (`snapshot`), then the changes (`update`).
 */
import type { ServerResponse } from 'node:http';
import type { ConnectionRow, LiveTotals } from './live.js';
import { safeJson, startStream } from './page.js';

export const BATCH_MS = 250;
export const MAX_LISTENERS = 16;
/** Rows in the table: the newest live pairs, then the newest ended ones. */
export const TABLE_LIVE = 500;
export const TABLE_GONE = 100;
/** A listener this far behind (bytes not yet taken by its socket) is dropped. */
const MAX_BACKLOG = 1024 * 1024;
/** A comment line after this long without news keeps proxies and browsers from timing the stream out. */
const KEEPALIVE_MS = 15_000;

export interface Picture {
  /** ms since the epoch, the proxy's clock (the page computes ages from it). */
  t: number;
  counts: Record<string, number>;
  totals: LiveTotals;
  rows: ConnectionRow[];
}

export class EventStream {
  private readonly listeners = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private lastRows = new Map<string, string>();
  private lastCounts = '';
  private lastTotals = '';
  private lastT = 0;
  private quietSince = 0;

  constructor(private readonly picture: () => Picture) {}

  get size(): number {
    return this.listeners.size;
  }

  /** Adds a listener; false when there are MAX_LISTENERS already. */
  add(res: ServerResponse): boolean {
    if (this.listeners.size >= MAX_LISTENERS) return false;
    // Bring the others up to date first, so that the snapshot and the updates after it agree for everyone.
    this.batch();
    startStream(res);
    const rows = [...this.lastRows.values()].map((r) => JSON.parse(r) as ConnectionRow);
    const snapshot = { t: this.lastT, counts: JSON.parse(this.lastCounts || '{}'), totals: JSON.parse(this.lastTotals || '{}'), rows };
    res.write(`retry: 2000\nevent: snapshot\ndata: ${safeJson(snapshot)}\n\n`);
    this.listeners.add(res);
    res.once('close', () => {
      this.listeners.delete(res);
      if (this.listeners.size === 0) this.stopTimer();
    });
    this.timer ??= setInterval(() => this.batch(), BATCH_MS).unref();
    return true;
  }

  close(): void {
    this.stopTimer();
    for (const res of this.listeners) res.end();
    this.listeners.clear();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** What changed since the last batch, sent to every listener. */
  private batch(): void {
    const p = this.picture();
    const counts = safeJson(p.counts);
    const totals = safeJson(p.totals);
    const rows = new Map<string, string>();
    for (const r of p.rows) rows.set(r.id, safeJson(r));
    const upsert: string[] = [];
    for (const [id, json] of rows) if (this.lastRows.get(id) !== json) upsert.push(json);
    const remove = [...this.lastRows.keys()].filter((id) => !rows.has(id));
    const changed = upsert.length > 0 || remove.length > 0 || counts !== this.lastCounts || totals !== this.lastTotals;
    this.lastRows = rows;
    this.lastCounts = counts;
    this.lastTotals = totals;
    this.lastT = p.t;
    if (this.listeners.size === 0) return;
    let message: string;
    if (changed) {
      // The pieces are safeJson output already: joined by hand rather than parsed and serialised again.
      message = `event: update\ndata: {"t":${p.t},"counts":${counts},"totals":${totals},"upsert":[${upsert.join(',')}],"remove":${safeJson(remove)}}\n\n`;
      this.quietSince = p.t;
    } else if (p.t - this.quietSince >= KEEPALIVE_MS) {
      message = ': keepalive\n\n';
      this.quietSince = p.t;
    } else {
      return;
    }
    for (const res of this.listeners) {
      if (res.writableLength > MAX_BACKLOG) {
        res.destroy();
        continue;
      }
      res.write(message);
    }
  }
}
