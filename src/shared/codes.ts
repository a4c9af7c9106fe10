/**
 * Stable reply codes of mxproxy/1. The same strings appear on the wire, in logs, in the event log and in
 * docs/errors.md; never rename one, only add.
 */
export const ReplyCode = {
  /** The request frame was malformed: bad length, not msgpack, not a map, wrong version, no target, too large. */
  BAD_REQUEST: 'ERR_BAD_REQUEST',
  /** The request named a target that no `server` entry defines. */
  UNKNOWN_TARGET: 'ERR_UNKNOWN_TARGET',
  /** No `allow` rule lets this client identity reach this target. */
  NOT_ALLOWED: 'ERR_NOT_ALLOWED',
  /** Every address of the target refused, failed or did not answer within connectTimeout. */
  TARGET_UNREACHABLE: 'ERR_TARGET_UNREACHABLE',
  /** No complete request frame arrived within handshakeTimeout of the TCP accept. */
  HANDSHAKE_TIMEOUT: 'ERR_HANDSHAKE_TIMEOUT',
  /** The proxy is stopping and takes no new pairs. */
  SHUTTING_DOWN: 'ERR_SHUTTING_DOWN',
  /** A limit on pairs was reached: maxConnectionsPerIdentity for this identity, or maxConnectionsPerServer for
   * this target. Transient: the client may retry once one of the pairs has closed. */
  OVERLOADED: 'ERR_OVERLOADED',
  /** An unexpected fault inside the proxy; the log has the details. */
  INTERNAL: 'ERR_INTERNAL',
} as const;

export type ReplyCode = (typeof ReplyCode)[keyof typeof ReplyCode];

export const ALL_REPLY_CODES: readonly ReplyCode[] = Object.values(ReplyCode);

export function isReplyCode(value: unknown): value is ReplyCode {
  return typeof value === 'string' && (ALL_REPLY_CODES as readonly string[]).includes(value);
}
