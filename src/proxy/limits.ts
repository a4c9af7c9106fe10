/**
 * Connection limits (docs/security.md). Two stages:
 *
 *   accept ──► AcceptGate: maxConnections, maxPendingHandshakes, maxPendingPerSource, connectRate
 *              (before any TLS work, before an actor exists: a refused socket costs an accept and a reset)
 *   authorize ──► PairLimits: maxConnectionsPerIdentity, maxConnectionsPerServer (declined with ERR_OVERLOADED)
 *
 * Both read the limits through an accessor on every decision, never a copy taken at start, so a new
 * configuration applies by swapping one object (ProxyLimits) in the runtime.
 */
import type { Clock } from '../clock.js';
import type { ProxyConfig } from '../config/types.js';
import { derivedMaxConnections } from '../process/openFiles.js';
import { ReplyCode } from '../shared/codes.js';
import { TokenBucket, type Rate } from '../shared/tokenBucket.js';

/** Why a connection was refused (stats, logs). Stable strings: a metrics exporter will use them as labels. */
export const REFUSAL_REASONS = [
  'max-connections',
  'max-pending',
  'max-pending-per-source',
  'connect-rate',
  'max-sources',
  'max-connections-per-identity',
  'max-connections-per-server',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];
export type AcceptRefusal = Exclude<RefusalReason, 'max-connections-per-identity' | 'max-connections-per-server'>;

/** The limits in force, resolved from a ProxyConfig (the derived default of maxConnections filled in). */
export interface ProxyLimits {
  maxConnections: number;
  maxPendingHandshakes: number;
  maxPendingPerSource: number;
  connectRate: Rate | null;
  maxConnectionsPerIdentity: number | undefined;
  maxConnectionsPerServer: number | undefined;
}

export function resolveLimits(config: ProxyConfig, derived: () => number = derivedMaxConnections): ProxyLimits {
  return {
    maxConnections: config.maxConnections ?? derived(),
    maxPendingHandshakes: config.maxPendingHandshakes,
    maxPendingPerSource: config.maxPendingPerSource,
    connectRate: config.connectRate,
    maxConnectionsPerIdentity: config.maxConnectionsPerIdentity,
    maxConnectionsPerServer: config.maxConnectionsPerServer,
  };
}

/**
 * Sources remembered at most. A source holds an entry while it has pending handshakes or its rate bucket is
 * not full again; at the cap the least recently seen entry without pending handshakes is forgotten (which
 * hands that source a full bucket). ~100 bytes an entry: 16,384 entries are under 2 MiB.
 */
export const SOURCE_TABLE_CAP = 16_384;

interface SourceEntry {
  /** Accepted sockets of this source not yet past TLS and their request frame. */
  pending: number;
  /** Created on first use while connectRate is on. */
  bucket: TokenBucket | null;
}

/** An accepted socket's hold on the counters. Both methods are idempotent. */
export interface Admission {
  readonly source: string;
  /** Past TLS and the request frame: no longer pending. */
  passed(): void;
  /** The socket is gone: no longer pending nor open. */
  release(): void;
}

export interface AcceptGateStats {
  /** Client sockets open (accepted and not yet released). */
  open: number;
  /** Of those, not yet past TLS and the request frame. */
  pending: number;
  /** Entries in the per-source table. */
  sources: number;
}

export class AcceptGate {
  private open = 0;
  private pending = 0;
  /** In least-recently-seen order (a Map iterates in insertion order; a touch re-inserts). */
  private readonly sources = new Map<string, SourceEntry>();

  constructor(
    private readonly limits: () => ProxyLimits,
    private readonly clock: Clock,
    private readonly tableCap = SOURCE_TABLE_CAP,
  ) {}

  /** Decides on a socket just accepted from `source` (see sourceAddress): an Admission, or why not. */
  admit(source: string): Admission | AcceptRefusal {
    const l = this.limits();
    if (this.open >= l.maxConnections) return 'max-connections';
    if (this.pending >= l.maxPendingHandshakes) return 'max-pending';
    const now = this.clock.now();
    this.forgetOldestIfIdle(l.connectRate, now);
    const entry = this.entry(source);
    if (!entry) return 'max-sources';
    if (entry.pending >= l.maxPendingPerSource) return 'max-pending-per-source';
    // Only a connection that is otherwise accepted takes a token: a source held back by another limit
    // does not also lose its rate.
    if (l.connectRate) {
      entry.bucket ??= new TokenBucket(l.connectRate, now);
      if (!entry.bucket.take(l.connectRate, now)) return 'connect-rate';
    }
    this.open++;
    this.pending++;
    entry.pending++;
    let pending = true;
    let open = true;
    const passed = (): void => {
      if (!pending) return;
      pending = false;
      this.pending--;
      entry.pending--; // the entry cannot have been forgotten while this socket held it pending
    };
    return {
      source,
      passed,
      release: () => {
        passed();
        if (!open) return;
        open = false;
        this.open--;
      },
    };
  }

  stats(): AcceptGateStats {
    return { open: this.open, pending: this.pending, sources: this.sources.size };
  }

  private entry(source: string): SourceEntry | undefined {
    const found = this.sources.get(source);
    if (found) {
      this.sources.delete(source);
      this.sources.set(source, found);
      return found;
    }
    if (this.sources.size >= this.tableCap && !this.evictOne()) return undefined;
    const entry: SourceEntry = { pending: 0, bucket: null };
    this.sources.set(source, entry);
    return entry;
  }

  /**
   * The least recently seen entry without pending handshakes. Entries with pending handshakes are at most
   * maxPendingHandshakes, so this looks at no more than that many before it finds one (unless that limit is
   * set above the table cap: then the new source is refused, `max-sources`).
   */
  private evictOne(): boolean {
    for (const [source, e] of this.sources) {
      if (e.pending === 0) {
        this.sources.delete(source);
        return true;
      }
    }
    return false;
  }

  /** One step of cleanup per accept: an idle, refilled oldest entry holds nothing worth keeping. */
  private forgetOldestIfIdle(rate: Rate | null, now: number): void {
    const oldest = this.sources.entries().next();
    if (oldest.done) return;
    const [source, e] = oldest.value;
    if (e.pending === 0 && (!rate || !e.bucket || e.bucket.isFull(rate, now))) this.sources.delete(source);
  }
}

export interface OverloadDecline {
  reason: Extract<RefusalReason, 'max-connections-per-identity' | 'max-connections-per-server'>;
  code: typeof ReplyCode.OVERLOADED;
  message: string;
}

/** Pairs per identity and per server, from AUTHORIZED until the pair has finished. */
export class PairLimits {
  private readonly byIdentity = new Map<string, number>();
  private readonly byServer = new Map<string, number>();
  private readonly held = new Map<string, { identity: string; server: string }>();

  constructor(private readonly limits: () => ProxyLimits) {}

  /** Counts pair `id` against its identity and server, or says which limit it would exceed. */
  admit(id: string, identity: string, server: string): OverloadDecline | undefined {
    if (this.held.has(id)) return undefined;
    const l = this.limits();
    const perIdentity = this.byIdentity.get(identity) ?? 0;
    if (l.maxConnectionsPerIdentity !== undefined && perIdentity >= l.maxConnectionsPerIdentity) {
      // The identity is the client's own text: it is not repeated back (the client knows it).
      return {
        reason: 'max-connections-per-identity',
        code: ReplyCode.OVERLOADED,
        message: `this identity has ${perIdentity} connections, the most maxConnectionsPerIdentity allows; retry later`,
      };
    }
    const perServer = this.byServer.get(server) ?? 0;
    if (l.maxConnectionsPerServer !== undefined && perServer >= l.maxConnectionsPerServer) {
      return {
        reason: 'max-connections-per-server',
        code: ReplyCode.OVERLOADED,
        message: `server "${server}" has ${perServer} connections, the most maxConnectionsPerServer allows; retry later`,
      };
    }
    this.byIdentity.set(identity, perIdentity + 1);
    this.byServer.set(server, perServer + 1);
    this.held.set(id, { identity, server });
    return undefined;
  }

  /** The pair has finished; idempotent, and a no-op for a pair never admitted. */
  release(id: string): void {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    decrement(this.byIdentity, h.identity);
    decrement(this.byServer, h.server);
  }

  /** Pairs counted, per identity and per server (tests, metrics). */
  stats(): { pairs: number; identities: number; servers: number } {
    return { pairs: this.held.size, identities: this.byIdentity.size, servers: this.byServer.size };
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}
