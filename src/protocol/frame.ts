/**
 * mxproxy/1 framing: a 4-byte big-endian length N, then N bytes of a msgpack map. One request frame from the
 * client, one reply frame from the proxy; after an ok reply the connection carries raw bytes.
 */
import { Packr, Unpackr } from 'msgpackr';
import { ProtocolError } from '../errors.js';
import { isReplyCode, type ReplyCode } from '../shared/codes.js';

export const PROTOCOL_VERSION = 1;
export const ALPN_PROTOCOL = 'mxproxy/1';
export const FRAME_HEADER_BYTES = 4;
/** Longest target name accepted in a request (names come from the config; this only bounds garbage). */
export const MAX_TARGET_LENGTH = 255;

export interface Request {
  v: 1;
  target: string;
}

export type Reply = { v: 1; ok: true } | { v: 1; ok: false; code: ReplyCode; message: string };

// Plain maps, no records/structures extension: any msgpack implementation can read and write these frames.
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeFrame(body: Record<string, unknown>): Buffer {
  const payload = packr.pack(body);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export const encodeRequest = (target: string): Buffer => encodeFrame({ v: PROTOCOL_VERSION, target });
export const encodeReply = (reply: Reply): Buffer => encodeFrame(reply as unknown as Record<string, unknown>);
/** The ok reply never changes: encode it once. */
export const OK_REPLY: Buffer = encodeReply({ v: 1, ok: true });

/** Decodes a frame body (without its length header) into a msgpack value; throws ProtocolError on bad bytes. */
export function decodeBody(body: Uint8Array): unknown {
  try {
    return unpackr.unpack(body);
  } catch (err) {
    throw new ProtocolError('ERR_BAD_REQUEST', `frame body is not valid msgpack (${(err as Error).message})`, { cause: err });
  }
}

/** Validates a decoded request body (else ProtocolError ERR_BAD_REQUEST). Unknown extra keys are ignored (forward
 * compatibility). */
export function parseRequest(value: unknown): Request {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError('ERR_BAD_REQUEST', 'request frame must hold a msgpack map');
  }
  const map = value as Record<string, unknown>;
  if (map.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'ERR_BAD_REQUEST',
      `unsupported protocol version ${JSON.stringify(map.v)} (this proxy speaks v${PROTOCOL_VERSION})`,
    );
  }
  const target = map.target;
  if (typeof target !== 'string' || target.length === 0) {
    throw new ProtocolError('ERR_BAD_REQUEST', 'request frame has no "target" string');
  }
  if (target.length > MAX_TARGET_LENGTH) {
    throw new ProtocolError('ERR_BAD_REQUEST', `target name longer than ${MAX_TARGET_LENGTH} characters`);
  }
  return { v: PROTOCOL_VERSION, target };
}

/** Validates a decoded reply body (else ProtocolError ERR_BAD_REPLY). */
export function parseReply(value: unknown): Reply {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('ERR_BAD_REPLY', 'reply frame must hold a msgpack map');
  }
  const map = value as Record<string, unknown>;
  if (map.v !== PROTOCOL_VERSION) throw new ProtocolError('ERR_BAD_REPLY', `unsupported reply version ${JSON.stringify(map.v)}`);
  if (map.ok === true) return { v: 1, ok: true };
  if (map.ok === false && typeof map.code === 'string') {
    // A code this client does not know (a newer proxy) is reported as such, not passed off as a ReplyCode.
    if (!isReplyCode(map.code)) throw new ProtocolError('ERR_BAD_REPLY', `unknown reply code ${JSON.stringify(map.code.slice(0, 64))}`);
    return { v: 1, ok: false, code: map.code, message: typeof map.message === 'string' ? map.message : '' };
  }
  throw new ProtocolError('ERR_BAD_REPLY', 'reply frame has neither ok:true nor ok:false with a code');
}

export type FrameResult =
  | { kind: 'incomplete' }
  | { kind: 'frame'; body: Buffer; rest: Buffer }
  | { kind: 'error'; message: string };

/**
 * Incremental reader for exactly one frame. Feed chunks; it answers as soon as the frame is complete or is
 * known to be bad (a length header of 0 or above the limit is refused before the body arrives).
 */
export class FrameReader {
  private buffered: Buffer | null = null;
  constructor(private readonly maxBodyBytes: number) {}

  push(chunk: Buffer): FrameResult {
    const buf = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    if (buf.length < FRAME_HEADER_BYTES) {
      this.buffered = buf;
      return { kind: 'incomplete' };
    }
    const n = buf.readUInt32BE(0);
    if (n === 0) return { kind: 'error', message: 'request frame length is 0' };
    if (n > this.maxBodyBytes) {
      return { kind: 'error', message: `request frame of ${n} bytes exceeds maxRequestBytes (${this.maxBodyBytes})` };
    }
    if (buf.length < FRAME_HEADER_BYTES + n) {
      this.buffered = buf;
      return { kind: 'incomplete' };
    }
    this.buffered = null;
    return {
      kind: 'frame',
      body: buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + n),
      rest: buf.subarray(FRAME_HEADER_BYTES + n),
    };
  }
}
