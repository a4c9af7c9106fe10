/**
 * The config in force as plain data, for the event log (CONFIG_LOADED) and replay: what decides a pair's fate
 * (servers, rules, timeouts, limits), each rule and server with its file:line, and a hash of all of it so two
 * logs, or a log and a config file, can be compared at a glance. Secrets (adminToken) never enter it.
 */
import { createHash } from 'node:crypto';
import { formatHostPort } from '../shared/address.js';
import { canonicalJson } from '../shared/canonical.js';
import type { ConfigSnapshot } from '../shared/events.js';
import { rateLabel } from '../shared/tokenBucket.js';
import type { ProxyConfig, SourceRef } from './types.js';

const where = (s: SourceRef): string => `${s.file}:${s.line}`;


export function configSnapshot(c: ProxyConfig): ConfigSnapshot {
  const body: Omit<ConfigSnapshot, 'hash' | 'file'> = {
    servers: [...c.servers.values()].map((s) => ({ name: s.name, addresses: s.addresses.map(formatHostPort), where: where(s.source) })),
    allow: c.allow.map((r) => ({ identity: r.identity, targets: [...r.targets], where: where(r.source) })),
    timeouts: {
      handshakeTimeout: c.handshakeTimeout,
      connectTimeout: c.connectTimeout,
      teardownTimeout: c.teardownTimeout,
      halfCloseTimeout: c.halfCloseTimeout,
      idleTimeout: c.idleTimeout,
      tcpKeepAlive: c.tcpKeepAlive,
    },
    limits: {
      maxConnections: c.maxConnections ?? null,
      maxPendingHandshakes: c.maxPendingHandshakes,
      maxPendingPerSource: c.maxPendingPerSource,
      connectRate: c.connectRate ? rateLabel(c.connectRate) : null,
      maxConnectionsPerIdentity: c.maxConnectionsPerIdentity ?? null,
      maxConnectionsPerServer: c.maxConnectionsPerServer ?? null,
    },
    maxRequestBytes: c.maxRequestBytes,
  };
  // The file name is not part of the hash: the same rules from another path behave the same. Rule and server
  // positions are (a rule's file:line is how a decision is explained).
  const hash = createHash('sha256').update(canonicalJson(body)).digest('hex');
  return { file: c.file, hash, ...body };
}
