/**
 * The events, inputs and outputs of a connection pair: the words the machines, the runtime that feeds them, the
 * event log and replay all use. Below `machines/`, which imports nothing else from `src/`.
 */
import type { ReplyCode } from './codes.js';

/**
 * `halfClose` runs from the first FIN of a linked pair; `idle` is the sockets' own inactivity timer; `drain`
 * from the SHUTDOWN that lets a linked pair finish (drainTimeout).
 */
export type TimerName = 'handshake' | 'connect' | 'teardown' | 'halfClose' | 'idle' | 'drain';

/** Which side of the pair an event is about. */
export type Side = 'client' | 'server';

export interface ConnectionInput {
  id: string;
  /** "address:port" of the client as accepted. */
  peer: string;
  /** "address:port" of the listener that accepted it. */
  local: string;
}

export interface ByteCounts {
  /** Bytes read from the socket (after TLS decryption for the client). */
  read: number;
  written: number;
}

export interface ConnectionContext extends ConnectionInput {
  identity: string | null;
  identities: string[];
  target: string | null;
  /** Backend addresses ("host:port") to try in order; redundancy means more than one. */
  addresses: string[];
  /** Index into addresses of the current dial attempt. */
  attempt: number;
  /** The address that accepted, once connected. */
  backend: string | null;
  /** Set once the client socket exists and until it reported closed. */
  clientOpen: boolean;
  serverOpen: boolean;
  /** The side whose FIN came first while forwarding: its arrival started the half-close timer. */
  halfClosedBy: Side | null;
  /** Set by the first SHUTDOWN while forwarding: the drain timer runs, a second drain SHUTDOWN changes nothing. */
  draining: boolean;
  /** Why the pair ended: `client-closed`, `server-error:ECONNRESET`, `declined:ERR_NOT_ALLOWED`, … */
  reason: string | null;
  code: ReplyCode | null;
  message: string | null;
  client: ByteCounts;
  server: ByteCounts;
}

export type ConnectionOutput = Pick<
  ConnectionContext,
  'id' | 'peer' | 'identity' | 'target' | 'backend' | 'reason' | 'code' | 'message' | 'client' | 'server'
>;

/**
 * The actor id of every child; the pair's own id is its systemId. XState names a child's end event after its
 * actor id (`xstate.done.actor.<id>`) and memoizes the transitions it selects per event type on the root's
 * state nodes, for as long as the machine exists: an id per pair grew the root by ~390 bytes for every
 * connection ever accepted (measured: 80 MiB of heap after 200,000 pairs, 8 MiB after 10,000).
 */
export const CHILD_ACTOR_ID = 'pair';

export interface WithId {
  /** Connection id; the root supervisor routes on it. */
  id: string;
}

export type ConnectionEvent = WithId &
  (
    | {
        type: 'TLS_OK';
        identity: string;
        identities: string[];
        protocol: string;
        alpn: string | null;
        resumed: boolean;
        /** The client certificate, for the event log; absent in older logs. */
        cert?: CertSummary;
      }
    | { type: 'TLS_FAILED'; code: string; message: string }
    | { type: 'REQUEST'; target: string; earlyBytes: number }
    | { type: 'REQUEST_INVALID'; code: ReplyCode; message: string }
    | {
        type: 'AUTHORIZED';
        addresses: string[];
        /** The certificate name that matched (`dns:hmi.plant.local`) and the rule, `file:line`; absent in older logs. */
        matched?: string;
        rule?: string;
        /** The rule's text as written (`dns:*.plant.local data event`); absent in older logs. */
        ruleText?: string;
      }
    | {
        type: 'DECLINED';
        code: ReplyCode;
        /** What the client is told. */
        message: string;
        /** Why no rule let it through, for the event log only (`no allow rule for cn:x → data (rules checked: 3)`). */
        why?: string;
      }
    | { type: 'BACKEND_CONNECTED'; attempt: number; address: string }
    | { type: 'BACKEND_FAILED'; attempt: number; address: string; code: string; message: string }
    | { type: 'HANDSHAKE_TIMEOUT' }
    | { type: 'CONNECT_TIMEOUT'; attempt: number }
    | { type: 'TEARDOWN_TIMEOUT' }
    | { type: 'HALF_CLOSE_TIMEOUT' }
    /** Neither socket of a linked pair moved a byte for idleTimeout ms. */
    | { type: 'IDLE_TIMEOUT' }
    | { type: 'CLIENT_END' }
    | { type: 'SERVER_END' }
    | { type: 'CLIENT_ERROR'; code: string; message: string }
    | { type: 'SERVER_ERROR'; code: string; message: string }
    | ({ type: 'CLIENT_CLOSED' } & ByteCounts)
    | ({ type: 'SERVER_CLOSED' } & ByteCounts)
    /**
     * The proxy is stopping: a pair not yet linked is declined (ERR_SHUTTING_DOWN), a linked pair may finish
     * within drainTimeout. `now`: close linked pairs at once too (a second signal, or stop() without drain).
     */
    | ShutdownEvent
    /** The drain deadline of a linked pair (drainTimeout after SHUTDOWN). */
    | { type: 'DRAIN_TIMEOUT' }
    /** After a reload: the new rules no longer let this pair's identity reach its target (`rule`), or its
     * certificate is now revoked or expired (`certificate`). */
    | { type: 'REVOKED'; reason: RevokeReason }
  );

export type ShutdownEvent = { type: 'SHUTDOWN'; now?: boolean };

/** Why a reload cut an established pair; its reason is then `revoked:<this>`. */
export type RevokeReason = 'rule' | 'certificate';

export type ConnectionEventType = ConnectionEvent['type'];

/** The parts of a client certificate the event log keeps with TLS_OK: cheap to read, enough to find it again. */
export interface CertSummary {
  /** Hex, as Node gives it. */
  serial: string;
  /** SHA-256 of the DER, `AB:CD:…`. */
  fingerprint256: string;
  /** `CN=Plant CA, O=Plant`. */
  issuer: string;
  /** ISO 8601. */
  notAfter: string;
}


/** How the sockets are closed on the way out. */
export type CloseMode =
  /** flush what is queued, send FIN, let the peer close (destroyed at the teardown deadline at the latest) */
  | 'graceful'
  /** destroy at once: errors, resets, deadlines */
  | 'abort';


// ===============================================================================================================
// The forwarder (`mxproxy forward`, machines/forward.ts). A forward pair speaks the connection vocabulary above
// wherever the meaning is the same; only what the proxy never sees is added here.
// ===============================================================================================================

/** The forwarder's timers: one dial attempt (through the proxy: with its reply), the teardown deadline, and the
 * drain of a linked pair after SHUTDOWN. */
export type ForwardTimerName = 'connect' | 'teardown' | 'drain';

export interface ForwardInput {
  id: string;
  /** "address:port" of the local client as accepted. */
  peer: string;
  /** "address:port" of the forward's local listener. */
  local: string;
  /** The server name the forward leads to. */
  target: string;
  /** The proxy, "host:port"; null when it is switched off (mxProxy = "none") and the target is dialled directly. */
  proxy: string | null;
  /** What to dial, in order: the proxy, or the target's own addresses. */
  addresses: string[];
}

export interface ForwardContext extends ForwardInput {
  /** Index into addresses of the current dial attempt. */
  attempt: number;
  /** The address that accepted, once connected. */
  upstream: string | null;
  /** The local client is open from the accept until it reported closed; the upstream from its connect. */
  clientOpen: boolean;
  serverOpen: boolean;
  /** Set by the first SHUTDOWN while forwarding: the drain timer runs. */
  draining: boolean;
  /** Why the pair ended, in the proxy's words (`client-closed`, `declined:ERR_NOT_ALLOWED`, …) or `unreachable`. */
  reason: string | null;
  /** The decline's reply code, or the last dial failure's code (`ECONNREFUSED`, `ETIMEDOUT`, a TLS verdict). */
  code: string | null;
  message: string | null;
  /** The local client's socket and the upstream's. */
  client: ByteCounts;
  server: ByteCounts;
}

export interface ForwardOutput {
  id: string;
  peer: string;
  target: string;
  /** The proxy's address, or "direct". */
  via: string;
  upstream: string | null;
  reason: string | null;
  code: string | null;
  message: string | null;
  /** Bytes from the local client, and to it. */
  up: number;
  down: number;
}

/** New with the forwarder: the proxy's answer to its request. */
export type ProxyReplyEvent = WithId &
  ({ type: 'PROXY_REPLY_OK' } | { type: 'PROXY_DECLINED'; code: ReplyCode; message: string });

/**
 * Everything a forward pair takes. CLIENT_* is the local client, SERVER_* the upstream (the proxy, or the
 * target itself); BACKEND_* and CONNECT_TIMEOUT are per dial attempt, as for the proxy's backends.
 */
export type ForwardEvent =
  | ProxyReplyEvent
  | Extract<
      ConnectionEvent,
      {
        type:
          | 'BACKEND_CONNECTED'
          | 'BACKEND_FAILED'
          | 'CONNECT_TIMEOUT'
          | 'TEARDOWN_TIMEOUT'
          | 'CLIENT_END'
          | 'SERVER_END'
          | 'CLIENT_ERROR'
          | 'SERVER_ERROR'
          | 'CLIENT_CLOSED'
          | 'SERVER_CLOSED'
          | 'SHUTDOWN'
          | 'DRAIN_TIMEOUT';
      }
    >;

export type ForwardEventType = ForwardEvent['type'];

// ===============================================================================================================
// The config in force. At start and at every reload the runtime emits CONFIG_LOADED on the same stream as every
// other event, so the event log holds which servers, rules, timeouts and limits applied to which pairs, and
// replay can decide authorization again from it.
// ===============================================================================================================

/** The parts of the effective config that decide what happens to a pair: plain data, as the event log keeps it. */
export interface ConfigSnapshot {
  /** The config file (absolute path), or '<built-in>'. */
  file: string;
  /** SHA-256 (hex) of the canonical JSON of everything below: equal hashes, equal behaviour. */
  hash: string;
  servers: { name: string; addresses: string[]; where: string }[];
  /** Each allow entry as written (`identity` with its field prefix), and where. */
  allow: { identity: string; targets: string[]; where: string }[];
  /** handshakeTimeout, connectTimeout, teardownTimeout, halfCloseTimeout, idleTimeout, tcpKeepAlive (ms). */
  timeouts: Record<string, number>;
  /** The limits as configured (null: not set / off); connectRate as written (`20/s burst 40`). */
  limits: Record<string, number | string | null>;
  maxRequestBytes: number;
}

/** Emitted by the runtime at start (`start`) and after each accepted reload (`reload`); never names a pair. */
export type ConfigLoadedEvent = { type: 'CONFIG_LOADED'; reason: 'start' | 'reload'; config: ConfigSnapshot };
