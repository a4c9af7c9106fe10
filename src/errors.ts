/**
 * Every error mxproxy throws on purpose, in the style of undici's lib/core/errors.js: one base class, one
 * subclass per failure family, each error with a stable `code` string. The same code appears in messages
 * (`cannot start: ERR_CA_PUBLIC: …`), in logs, on the wire (reply codes) and in docs/errors.md; codes are never
 * renamed, only added. A test checks that every code here is documented and that no other `ERR_…` literal
 * appears in src.
 */
import { formatIssue, type ConfigIssue } from './config/types.js';
import { ALL_REPLY_CODES, ReplyCode } from './shared/codes.js';

/** The codes of each family. */
export const ERROR_CODES = {
  config: ['ERR_CONFIG'],
  tlsMaterial: [
    'ERR_TLS_SETUP',
    'ERR_CA_PUBLIC',
    'ERR_CA_NOT_CA',
    'ERR_CA_INVALID',
    'ERR_CA_NOT_FOUND',
    'ERR_CERTS',
    'ERR_CRL_INVALID',
    'ERR_CRL_MISSING',
    'ERR_CRL_EXPIRED',
  ],
  /** DER the proxy reads itself (pathLen, CRL fields) is malformed; callers report it under their own code. */
  der: ['ERR_DER'],
  privileges: ['ERR_PRIVILEGES'],
  /** `[proxy] pidFile` at start, and `mxproxy reload` finding the running proxy through it. */
  pidFile: ['ERR_PID_FILE'],
  /** A bad request frame is the reply code ERR_BAD_REQUEST itself; a bad reply frame is only ever seen by a client. */
  protocol: [ReplyCode.BAD_REQUEST, 'ERR_BAD_REPLY'],
  /** The proxy's decline: one of the reply codes. */
  declined: ALL_REPLY_CODES,
  dial: ['ERR_DIAL', 'ERR_PROXY_CONNECT'],
  listen: ['ERR_LISTEN'],
  eventLog: ['ERR_EVENT_LOG_OPEN'],
  usage: ['ERR_USAGE'],
  internal: ['ERR_INTERNAL_STATE'],
  /** Never thrown: the proxy's own verdicts when it refuses a verified certificate (`tls-failed:<verdict>`), the
   * ERR_RESUMED_ ones on a resumed session for what OpenSSL does not check again (net/resumption.ts). */
  tlsRefusal: [
    'ERR_MULTIPLE_CN',
    'ERR_CLIENT_IS_CA',
    'ERR_CLIENT_VIA_SUB_CA',
    'ERR_RESUMED_CERT_EXPIRED',
    'ERR_RESUMED_CERT_NOT_YET_VALID',
    'ERR_RESUMED_CERT_REVOKED',
    'ERR_RESUMED_CRL_EXPIRED',
  ],
} as const;

type CodesOf<F extends keyof typeof ERROR_CODES> = (typeof ERROR_CODES)[F][number];
export type ConfigCode = CodesOf<'config'>;
export type TlsMaterialCode = CodesOf<'tlsMaterial'>;
export type CrlErrorCode = Extract<TlsMaterialCode, `ERR_CRL_${string}`>;
export type ProtocolCode = CodesOf<'protocol'>;
export type DialCode = CodesOf<'dial'>;
export type ErrorCode = CodesOf<keyof typeof ERROR_CODES>;

/** Every code, once. */
export const ALL_ERROR_CODES: readonly ErrorCode[] = [...new Set(Object.values(ERROR_CODES).flat())];

/** The base class: `code` is stable, `message` is for people, `cause` (when given) is the underlying error. */
export class MxError extends Error {
  override name = 'MxError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** The configuration has problems; `issues` lists each one, the message has one line per issue. */
export class ConfigError extends MxError {
  override name = 'ConfigError';
  declare readonly code: ConfigCode;
  constructor(readonly issues: ConfigIssue[]) {
    super('ERR_CONFIG', issues.map(formatIssue).join('\n'));
  }
}

/**
 * Certificates, keys and the CA: unreadable or invalid TLS material (ERR_TLS_SETUP), a refused trust anchor
 * (ERR_CA_PUBLIC, ERR_CA_NOT_CA, ERR_CA_INVALID), and `mxproxy certs` problems (ERR_CA_NOT_FOUND, ERR_CERTS).
 */
export class TlsMaterialError extends MxError {
  override name = 'TlsMaterialError';
  declare readonly code: TlsMaterialCode;
  constructor(code: TlsMaterialCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** A malformed mxproxy/1 frame. */
export class ProtocolError extends MxError {
  override name = 'ProtocolError';
  declare readonly code: ProtocolCode;
  constructor(code: ProtocolCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** The proxy answered with a decline; `code` is its reply code (ERR_NOT_ALLOWED, …). */
export class ProxyDeclinedError extends MxError {
  override name = 'ProxyDeclinedError';
  declare readonly code: ReplyCode;
  constructor(code: ReplyCode, message: string) {
    super(code, `${code}: ${message}`);
  }
}

/**
 * A connection could not be made. `causeCode` is the underlying failure's own code when there is one: an OS
 * errno (ECONNREFUSED), a TLS verdict (ERR_TLS_CERT_ALTNAME_INVALID), ETIMEDOUT for mxproxy's own timer.
 */
export class DialError extends MxError {
  override name = 'DialError';
  declare readonly code: DialCode;
  readonly causeCode: string | undefined;
  constructor(code: DialCode, message: string, options?: ErrorOptions & { causeCode?: string }) {
    super(code, message, options);
    this.causeCode = options?.causeCode;
  }
}

/** The connection to the proxy failed before a reply (TLS refused, closed, timed out, not mxproxy). */
export class ProxyConnectError extends DialError {
  override name = 'ProxyConnectError';
  declare readonly causeCode: string;
  constructor(causeCode: string, message: string, options?: ErrorOptions) {
    super('ERR_PROXY_CONNECT', message, { ...options, causeCode });
  }
}

/** A listen address cannot be bound; `causeCode` is the errno (EADDRINUSE, EACCES, …). */
export class ListenError extends MxError {
  override name = 'ListenError';
  declare readonly code: CodesOf<'listen'>;
  constructor(
    message: string,
    readonly causeCode: string | undefined,
    options?: ErrorOptions,
  ) {
    super('ERR_LISTEN', message, options);
  }
}

/** The event log cannot be opened. */
export class EventLogError extends MxError {
  override name = 'EventLogError';
  declare readonly code: CodesOf<'eventLog'>;
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_EVENT_LOG_OPEN', message, options);
  }
}

/** A problem with the command line or the files it names: the CLI prints the message, no stack, exit 2. */
export class UsageError extends MxError {
  override name = 'UsageError';
  declare readonly code: CodesOf<'usage'>;
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_USAGE', message, options);
  }
}

/** An invariant of mxproxy itself does not hold: a bug. */
export class InternalError extends MxError {
  override name = 'InternalError';
  declare readonly code: CodesOf<'internal'>;
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_INTERNAL_STATE', message, options);
  }
}

/** Malformed DER in a certificate or CRL the proxy reads itself (src/net/der.ts). */
export class DerError extends MxError {
  override name = 'DerError';
  declare readonly code: CodesOf<'der'>;
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DER', message, options);
  }
}

/** The process could not drop to `user`/`group`. */
export class PrivilegeError extends MxError {
  override name = 'PrivilegeError';
  declare readonly code: CodesOf<'privileges'>;
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_PRIVILEGES', message, options);
  }
}

/** The pid file cannot be written (another proxy runs with it), or `mxproxy reload` finds no running proxy through it. */
export class PidFileError extends MxError {
  override name = 'PidFileError';
  declare readonly code: CodesOf<'pidFile'>;
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_PID_FILE', message, options);
  }
}
