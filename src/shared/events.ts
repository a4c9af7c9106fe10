/**
 * The events, inputs and outputs of a connection pair: the words the machines, the runtime that feeds them, the
 * event log and replay all use. Below `machines/`, which imports nothing else from `src/`.
 */
import type { ReplyCode } from './codes.js';

/** `halfClose` runs from the first FIN of a linked pair; `idle` is the sockets' own inactivity timer. */
export type TimerName = 'handshake' | 'connect' | 'teardown' | 'halfClose' | 'idle';

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

export interface WithId {
  /** Connection id; the root supervisor routes on it. */
  id: string;
}

export type ConnectionEvent = WithId &
  (
    | { type: 'TLS_OK'; identity: string; identities: string[]; protocol: string; alpn: string | null; resumed: boolean }
    | { type: 'TLS_FAILED'; code: string; message: string }
    | { type: 'REQUEST'; target: string; earlyBytes: number }
    | { type: 'REQUEST_INVALID'; code: ReplyCode; message: string }
    | {
        type: 'AUTHORIZED';
        addresses: string[];
        /** The certificate name that matched (`dns:hmi.plant.local`) and the rule, `file:line`; absent in older logs. */
        matched?: string;
        rule?: string;
      }
    | { type: 'DECLINED'; code: ReplyCode; message: string }
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
    | { type: 'SHUTDOWN' }
  );

export type ConnectionEventType = ConnectionEvent['type'];


/** How the sockets are closed on the way out. */
export type CloseMode =
  /** flush what is queued, send FIN, let the peer close (destroyed at the teardown deadline at the latest) */
  | 'graceful'
  /** destroy at once: errors, resets, deadlines */
  | 'abort';

