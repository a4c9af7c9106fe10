/**
 * The `[proxy]` keys as documented: name, syntax, default, range, description and example of each. One table
 * serves the builder (which keys exist, repeatable or not, string or number), docs/config.md and describeConfig.
 */
import { formatHostPort } from '../shared/address.js';
import { rateLabel } from '../shared/tokenBucket.js';
import { adminKeyDocs, type AdminKeyName } from './adminKeys.js';
import { LOG_KEY_DOCS, type LogKeyName } from './logKeys.js';
import { DEFAULTS, type KeyDoc } from './types.js';

export const PROXY_SECTION = 'proxy';

export type ProxyKeyName =
  | 'listen'
  | 'sslCertificate'
  | 'sslCrl'
  | 'server'
  | 'allow'
  | 'handshakeTimeout'
  | 'connectTimeout'
  | 'teardownTimeout'
  | 'halfCloseTimeout'
  | 'idleTimeout'
  | 'tcpKeepAlive'
  | 'maxRequestBytes'
  | 'sessionTicketRotation'
  | 'eventLog'
  | 'eventLogLevel'
  | 'eventLogMaxBytes'
  | 'eventLogFiles'
  | LogKeyName
  | 'user'
  | 'group'
  | 'maxConnections'
  | 'maxPendingHandshakes'
  | 'maxPendingPerSource'
  | 'connectRate'
  | 'maxConnectionsPerIdentity'
  | 'maxConnectionsPerServer'
  | 'pidFile'
  | 'onRuleChange'
  | 'drainTimeout'
  | 'workers'
  | AdminKeyName;

export type { KeyDoc } from './types.js';

/** The allowed range of each number key (inclusive); the docs table and the value schemas share it. */
export const NUMBER_BOUNDS = {
  handshakeTimeout: { min: 1, max: 600_000 },
  connectTimeout: { min: 1, max: 600_000 },
  teardownTimeout: { min: 1, max: 600_000 },
  halfCloseTimeout: { min: 0, max: 86_400_000 },
  idleTimeout: { min: 0, max: 86_400_000 },
  // Linux takes the first probe's delay in whole seconds, at most 32767 (TCP_KEEPIDLE).
  tcpKeepAlive: { min: 0, max: 32_767_000 },
  maxRequestBytes: { min: 16, max: 1_048_576 },
  sessionTicketRotation: { min: 1000, max: 604_800_000 },
  eventLogMaxBytes: { min: 65_536, max: 1_099_511_627_776 },
  eventLogFiles: { min: 1, max: 1000 },
  maxConnections: { min: 1, max: 1_000_000 },
  maxPendingHandshakes: { min: 1, max: 1_000_000 },
  maxPendingPerSource: { min: 1, max: 1_000_000 },
  maxConnectionsPerIdentity: { min: 1, max: 1_000_000 },
  maxConnectionsPerServer: { min: 1, max: 1_000_000 },
  drainTimeout: { min: 0, max: 3_600_000 },
  workers: { min: 1, max: 256 },
} as const;

export type NumberKey = keyof typeof NUMBER_BOUNDS;

export const PROXY_KEYS: readonly KeyDoc<ProxyKeyName>[] = [
  {
    name: 'listen',
    type: 'string',
    syntax: 'listen = "<host>:<port>"',
    default: `"${DEFAULTS.listen.map(formatHostPort).join('" / "')}"`,
    repeatable: true,
    description:
      'An address the proxy accepts client connections on. Repeat the entry to listen on several addresses. ' +
      'The host is an IPv4 address, an IPv6 address in brackets ("[::]:5678", "[::1]:5678") or a host name; ' +
      'the port is 1..65535. Without any listen entry the proxy listens on port 5678 on all IPv4 addresses.',
    example: 'listen = "0.0.0.0:5678"',
  },
  {
    name: 'sslCertificate',
    type: 'string',
    syntax: 'sslCertificate = "<cert.pem> <key.pem> <ca.pem>"',
    default: undefined,
    repeatable: false,
    description:
      "The proxy's own certificate, its private key, and the CA certificate(s) client and server certificates " +
      "must be signed by (PEM files), separated by whitespace. Relative paths are relative to the config file's " +
      'directory. Paths cannot contain spaces. Required by "mxproxy start".',
    example: 'sslCertificate = "certs/proxy.pem certs/proxy-key.pem certs/ca.pem"',
  },
  {
    name: 'sslCrl',
    type: 'string',
    syntax: 'sslCrl = "<crl.pem>"',
    default: undefined,
    repeatable: false,
    description:
      'Certificate revocation lists (PEM, one or more), one from each CA in the sslCertificate CA file. A client ' +
      'certificate listed in them is refused (tls-failed:CERT_REVOKED). Read at start and at each reload ' +
      '(SIGHUP). Relative to the config file. Unset: no revocation check.',
    example: 'sslCrl = "certs/crl.pem"',
  },
  {
    name: 'server',
    type: 'string',
    syntax: 'server = "<name> <host>:<port> [<host>:<port> ...]"',
    default: undefined,
    repeatable: true,
    description:
      'A named backend clients can ask for. The name is letters, digits, "_", "." and "-". More than one address ' +
      'means redundant servers: they are tried in the order given until one accepts.',
    example: 'server = "scada1 10.0.1.10:4897 10.0.1.11:4897"',
  },
  {
    name: 'allow',
    type: 'string',
    syntax: 'allow = "[cn:|dns:|uri:]<identity-glob> <target> [<target> ...]"',
    default: undefined,
    repeatable: true,
    description:
      'Lets clients whose certificate identity matches <identity-glob> reach the given targets. With cn:, dns: ' +
      'or uri: the glob matches only the subject CN, a SAN DNS or a SAN URI entry; bare, any of them. A target is a ' +
      'server name or a glob over server names; "*" matches any run of characters, "?" one character. A plain ' +
      'name must be defined by a server entry (anywhere in the section).',
    example: 'allow = "hmi-* scada1 historian-?"',
  },
  {
    name: 'handshakeTimeout',
    type: 'number',
    syntax: 'handshakeTimeout = <ms>',
    default: String(DEFAULTS.handshakeTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.handshakeTimeout,
    description:
      'Milliseconds a client has, from the TCP accept, to finish the TLS handshake and send its complete ' +
      'request frame.',
    example: 'handshakeTimeout = 5000',
  },
  {
    name: 'connectTimeout',
    type: 'number',
    syntax: 'connectTimeout = <ms>',
    default: String(DEFAULTS.connectTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.connectTimeout,
    description: 'Milliseconds for one attempt to connect to one backend address.',
    example: 'connectTimeout = 5000',
  },
  {
    name: 'teardownTimeout',
    type: 'number',
    syntax: 'teardownTimeout = <ms>',
    default: String(DEFAULTS.teardownTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.teardownTimeout,
    description:
      'Milliseconds a closing connection pair may take to flush and close before both sockets are destroyed.',
    example: 'teardownTimeout = 1000',
  },
  {
    name: 'halfCloseTimeout',
    type: 'number',
    syntax: 'halfCloseTimeout = <ms>',
    default: String(DEFAULTS.halfCloseTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.halfCloseTimeout,
    description:
      'Milliseconds a linked pair may stay half-closed: from the first FIN of either side until both sides have ' +
      'closed. When it runs out both sockets are destroyed (reason timeout:half-close). 0 turns it off.',
    example: 'halfCloseTimeout = 60000',
  },
  {
    name: 'idleTimeout',
    type: 'number',
    syntax: 'idleTimeout = <ms>',
    default: String(DEFAULTS.idleTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.idleTimeout,
    description:
      'Milliseconds a linked pair may go without a byte in either direction before both sockets are destroyed ' +
      '(reason timeout:idle). 0 (the default) turns it off: plant connections are often quiet for long.',
    example: 'idleTimeout = 3600000',
  },
  {
    name: 'tcpKeepAlive',
    type: 'number',
    syntax: 'tcpKeepAlive = <ms>',
    default: String(DEFAULTS.tcpKeepAlive),
    repeatable: false,
    ...NUMBER_BOUNDS.tcpKeepAlive,
    description:
      'TCP keepalive on both sockets of a linked pair: milliseconds of silence before the first probe, in whole ' +
      'seconds (a multiple of 1000). A peer that vanished without closing is then detected by the kernel and ' +
      'the pair ends with client-error:ETIMEDOUT or server-error:ETIMEDOUT. 0 turns it off.',
    example: 'tcpKeepAlive = 60000',
  },
  {
    name: 'maxRequestBytes',
    type: 'number',
    syntax: 'maxRequestBytes = <bytes>',
    default: String(DEFAULTS.maxRequestBytes),
    repeatable: false,
    ...NUMBER_BOUNDS.maxRequestBytes,
    description: 'The largest request frame body (bytes) a client may send; a larger one is refused.',
    example: 'maxRequestBytes = 4096',
  },
  {
    name: 'sessionTicketRotation',
    type: 'number',
    syntax: 'sessionTicketRotation = <ms>',
    default: String(DEFAULTS.sessionTicketRotation),
    repeatable: false,
    ...NUMBER_BOUNDS.sessionTicketRotation,
    description:
      'Milliseconds between replacements of the key that encrypts TLS session tickets (kept in memory only, ' +
      'random at start). A ticket issued before a replacement no longer resumes: that client does one full ' +
      'handshake. Sessions resume for at most 300 s after their full handshake in any case.',
    example: 'sessionTicketRotation = 3600000',
  },
  {
    name: 'eventLog',
    type: 'string',
    syntax: 'eventLog = "<file>"',
    default: undefined,
    repeatable: false,
    description:
      'Records every event that enters the actors, and every state transition, to this file (msgpack records), ' +
      'for `mxproxy replay`. Relative to the config file; a missing directory is created at start (its parent ' +
      'must exist), owned by user when that is set. An existing file is rotated away at start. Unset: no event log.',
    example: 'eventLog = "/var/log/mxproxy/events.mxlog"',
  },
  {
    name: 'eventLogLevel',
    type: 'string',
    syntax: 'eventLogLevel = "lifecycle" | "traffic" | "payload"',
    default: `"${DEFAULTS.eventLogLevel}"`,
    repeatable: false,
    description:
      '"lifecycle": events and transitions only, no payload bytes (cheap). "traffic": also the size of every ' +
      'forwarded chunk. "payload": also the bytes themselves — plant data in a file, for deep debugging only; ' +
      'the proxy warns at start.',
    example: 'eventLogLevel = "lifecycle"',
  },
  {
    name: 'eventLogMaxBytes',
    type: 'number',
    syntax: 'eventLogMaxBytes = <bytes>',
    default: String(DEFAULTS.eventLogMaxBytes),
    repeatable: false,
    ...NUMBER_BOUNDS.eventLogMaxBytes,
    description: 'The event log is rotated before it grows past this size: <file> becomes <file>.1, and so on.',
    example: 'eventLogMaxBytes = 67108864',
  },
  {
    name: 'eventLogFiles',
    type: 'number',
    syntax: 'eventLogFiles = <count>',
    default: String(DEFAULTS.eventLogFiles),
    repeatable: false,
    ...NUMBER_BOUNDS.eventLogFiles,
    description: 'Event log files kept, the current one included; the oldest is deleted at rotation.',
    example: 'eventLogFiles = 5',
  },
  ...LOG_KEY_DOCS.proxy,
  {
    name: 'user',
    type: 'string',
    syntax: 'user = "<name>" | "<uid>"',
    default: undefined,
    repeatable: false,
    description:
      'The account the proxy runs as once its listeners are bound and its certificate, key, CA and CRL files ' +
      'are read (start as root for ports below 1024 and root-only keys). Must exist on this host. Unset: the ' +
      'proxy keeps the account it was started with, and warns when that is root.',
    example: 'user = "mxproxy"',
  },
  {
    name: 'group',
    type: 'string',
    syntax: 'group = "<name>" | "<gid>"',
    default: undefined,
    repeatable: false,
    description:
      "The group the proxy runs as, with user; its only group (supplementary groups are dropped). Unset: the user's primary group.",
    example: 'group = "mxproxy"',
  },
  {
    name: 'maxConnections',
    type: 'number',
    syntax: 'maxConnections = <count>',
    default: undefined,
    repeatable: false,
    ...NUMBER_BOUNDS.maxConnections,
    description:
      'Client connections open at once, over all listeners and sources; one more is reset at accept, before any ' +
      'TLS work. Unset: derived at start from the open-files limit of the running process, ' +
      'floor((limit - 64) / 2): each pair holds two sockets, and 64 descriptors are kept for listeners, logs ' +
      'and the event log.',
    example: 'maxConnections = 4000',
  },
  {
    name: 'maxPendingHandshakes',
    type: 'number',
    syntax: 'maxPendingHandshakes = <count>',
    default: String(DEFAULTS.maxPendingHandshakes),
    repeatable: false,
    ...NUMBER_BOUNDS.maxPendingHandshakes,
    description:
      'Accepted connections that have not yet finished TLS and sent their request frame, over all sources; one ' +
      'more is reset at accept. Bounds the TLS work anyone who can open TCP can make the proxy do.',
    example: 'maxPendingHandshakes = 512',
  },
  {
    name: 'maxPendingPerSource',
    type: 'number',
    syntax: 'maxPendingPerSource = <count>',
    default: String(DEFAULTS.maxPendingPerSource),
    repeatable: false,
    ...NUMBER_BOUNDS.maxPendingPerSource,
    description:
      'The same as maxPendingHandshakes, per source IP address (IPv4-mapped IPv6 counts as IPv4), so one ' +
      'address cannot take all pending slots.',
    example: 'maxPendingPerSource = 32',
  },
  {
    name: 'connectRate',
    type: 'string',
    syntax: 'connectRate = "<n>/s burst <m>" | "<n>/min burst <m>" | "off"',
    default: `"${rateLabel(DEFAULTS.connectRate)}"`,
    repeatable: false,
    description:
      'New connections accepted per source IP address: a token bucket that holds <m> and refills <n> per second ' +
      '(or minute). A connection over the rate is reset at accept. "off": no limit. Raise it for a forwarder ' +
      'host that opens many connections at once.',
    example: 'connectRate = "20/s burst 40"',
  },
  {
    name: 'maxConnectionsPerIdentity',
    type: 'number',
    syntax: 'maxConnectionsPerIdentity = <count>',
    default: undefined,
    repeatable: false,
    ...NUMBER_BOUNDS.maxConnectionsPerIdentity,
    description:
      "Pairs (connecting or linked) one client identity (its certificate's first identity) may hold; one more " +
      'is declined with ERR_OVERLOADED. Unset: no limit.',
    example: 'maxConnectionsPerIdentity = 100',
  },
  {
    name: 'maxConnectionsPerServer',
    type: 'number',
    syntax: 'maxConnectionsPerServer = <count>',
    default: undefined,
    repeatable: false,
    ...NUMBER_BOUNDS.maxConnectionsPerServer,
    description:
      'Pairs (connecting or linked) to each server entry, all its addresses together; one more is declined with ' +
      'ERR_OVERLOADED. Unset: no limit.',
    example: 'maxConnectionsPerServer = 200',
  },
  {
    name: 'pidFile',
    type: 'string',
    syntax: 'pidFile = "<file>"',
    default: undefined,
    repeatable: false,
    description:
      'The proxy writes its process id here at start and removes the file when it stops; `mxproxy reload -c ' +
      '<config>` reads it to signal the running proxy. Relative to the config file; a missing directory is ' +
      'created at start (its parent must exist), owned by user when that is set. Written before the switch to ' +
      'user, so that account must be able to write the directory for the file to be removed at stop. Changing ' +
      'it needs a restart. Unset: no pid file.',
    example: 'pidFile = "/run/mxproxy/mxproxy.pid"',
  },
  {
    name: 'onRuleChange',
    type: 'string',
    syntax: 'onRuleChange = "close" | "keep"',
    default: `"${DEFAULTS.onRuleChange}"`,
    repeatable: false,
    description:
      'What a reload (SIGHUP) does to established pairs. "close": every pair, connecting or linked, whose ' +
      'identity the new allow rules no longer let reach its target is closed (reason revoked:rule), and so is ' +
      'every pair whose client certificate the new CRL revokes or that has expired (revoked:certificate). ' +
      '"keep": established pairs are left alone; the new rules, certificates and CRL apply to new connections only.',
    example: 'onRuleChange = "close"',
  },
  {
    name: 'drainTimeout',
    type: 'number',
    syntax: 'drainTimeout = <ms>',
    default: String(DEFAULTS.drainTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.drainTimeout,
    description:
      'On SIGTERM the proxy stops accepting, declines pending requests with ERR_SHUTTING_DOWN and lets linked ' +
      'pairs go on for up to this many milliseconds; pairs still open then are closed (reason shutdown). A ' +
      'second SIGTERM or SIGINT closes them at once. 0: close them at once.',
    example: 'drainTimeout = 30000',
  },
  {
    name: 'workers',
    // A count, or the word "auto": the builder takes both (proxySection.ts); documented as the number it mostly is.
    type: 'number',
    syntax: 'workers = <count> | "auto"',
    default: String(DEFAULTS.workers),
    repeatable: false,
    ...NUMBER_BOUNDS.workers,
    description:
      'Processes that serve clients. 1: one process, as without the entry. More: a primary process binds the ' +
      'listeners and starts that many workers on them (node:cluster), each with its own pairs, limits and event ' +
      'log (<eventLog> becomes <name>.w<N>.<ext>); a worker that dies is restarted. "auto": one per CPU ' +
      '(os.availableParallelism()). Read at start.',
    example: 'workers = 2',
  },
  ...adminKeyDocs('proxy'),
];

export const PROXY_KEY_BY_NAME = new Map<string, KeyDoc<ProxyKeyName>>(PROXY_KEYS.map((k) => [k.name, k]));
