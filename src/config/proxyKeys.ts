/**
 * The `[proxy]` keys as documented: name, syntax, default, range, description and example of each. One table
 * serves the builder (which keys exist, repeatable or not, string or number), docs/config.md and describeConfig.
 */
import { formatHostPort } from '../shared/address.js';
import { DEFAULTS } from './types.js';

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
  | 'eventLog'
  | 'eventLogLevel'
  | 'eventLogMaxBytes'
  | 'eventLogFiles'
  | 'user'
  | 'group'
  | 'adminListen'
  | 'adminToken';

/** Documentation of one config key. */
export interface KeyDoc<N extends string = ProxyKeyName> {
  name: N;
  /** How the value is written: a double-quoted string or a bare number. */
  type: 'string' | 'number';
  /** The entry's shape, e.g. `listen = "<host>:<port>"`. */
  syntax: string;
  /** The default as it would be written in the file (e.g. `"0.0.0.0:5678"`, `5000`); undefined: none. */
  default: string | undefined;
  repeatable: boolean;
  /** For number keys: the allowed range (inclusive). */
  min?: number;
  max?: number;
  /** A secret value is never printed (describeConfig shows "***"). */
  secret?: boolean;
  description: string;
  /** A complete example line. */
  example: string;
}

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
  eventLogMaxBytes: { min: 65_536, max: 1_099_511_627_776 },
  eventLogFiles: { min: 1, max: 1000 },
} as const;

export type NumberKey = keyof typeof NUMBER_BOUNDS;

export const PROXY_KEYS: readonly KeyDoc[] = [
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
      'certificate listed in them is refused (tls-failed:CERT_REVOKED). Read at start: a new CRL needs a ' +
      'restart. Relative to the config file. Unset: no revocation check.',
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
    name: 'adminListen',
    type: 'string',
    syntax: 'adminListen = "<host>:<port>"',
    default: undefined,
    repeatable: false,
    description:
      'The admin endpoint (plain HTTP): the inspector page, /metrics (Prometheus), /status (JSON) and the live ' +
      'event stream. Unset: off. On a loopback address (127.0.0.1, [::1], localhost) it is open to local users ' +
      'unless adminToken is set; any other address requires adminToken, or the proxy does not start.',
    example: 'adminListen = "127.0.0.1:9678"',
  },
  {
    name: 'adminToken',
    type: 'string',
    syntax: 'adminToken = "<token>"',
    default: undefined,
    repeatable: false,
    secret: true,
    description:
      'The bearer token every admin request must carry (Authorization: Bearer <token>; a browser may send it as ' +
      'the password of HTTP Basic authentication). At least 16 visible ASCII characters, no spaces; generate one ' +
      'with `openssl rand -hex 32`. Needs adminListen.',
    example: 'adminToken = "replace-with-openssl-rand-hex-32"',
  },
];

export const PROXY_KEY_BY_NAME = new Map<string, KeyDoc>(PROXY_KEYS.map((k) => [k.name, k]));
