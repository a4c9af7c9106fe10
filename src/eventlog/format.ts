/**
 * Event log file format, version 1.
 *
 *   file   := magic header-record record*
 *   magic  := "MXPLOG" 0x00 0x01                 (8 bytes: name, NUL, format version)
 *   record := u32be L | L bytes msgpack body | u32be CRC-32 (zlib.crc32) of the body
 *
 * - 1 <= L <= MAX_RECORD_BYTES (16 MiB); any other L means the file is corrupt at that record.
 * - Bodies are standard msgpack (maps, not msgpackr "records"): each decodes without the ones before it, and
 *   other languages' msgpack libraries can read them. Records come back as plain data: Date, undefined and
 *   64-bit bigint survive; Map → object, Set → array, any typed array → Buffer of its bytes,
 *   Error → [name, message, stack], -0 → 0. Larger bigints, cycles and symbols cannot be written.
 * - The first record is the writer's header (repeated at the top of every rotated file).
 * - A file that ends before its header record is complete (including an empty or magic-only file) is
 *   'truncated': the writer puts magic and header down in one write, so that only happens on a cut write.
 */
import { crc32 } from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';

export const FORMAT_VERSION = 1;
export const MAGIC: Buffer = Buffer.from([...Buffer.from('MXPLOG', 'latin1'), 0x00, FORMAT_VERSION]);
export const MAGIC_BYTES = MAGIC.length;
/** Length prefix + CRC suffix around every body. */
export const FRAME_OVERHEAD = 8;
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

// useRecords: false so no body depends on structures defined by an earlier one.
const packr = new Packr({ useRecords: false });
// copyBuffers: decoded binary must not pin (or alias) the reader's 1 MiB chunk buffers.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

/**
 * Encodes one value as a complete frame (length, body, CRC) in a buffer of its own. Throws TypeError when the
 * value cannot be encoded (cycle, bigint beyond 64 bits, symbol) or its body exceeds MAX_RECORD_BYTES.
 */
export function encodeFrame(value: unknown): Buffer {
  let body: Buffer;
  try {
    // pack() returns a view into the packr's shared buffer: it is copied into the frame below before any other pack.
    body = packr.pack(value);
  } catch (err) {
    throw new TypeError(`event log record cannot be encoded as msgpack: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
  if (body.length > MAX_RECORD_BYTES) {
    throw new TypeError(`event log record encodes to ${body.length} bytes, above the ${MAX_RECORD_BYTES}-byte limit`);
  }
  const frame = Buffer.allocUnsafe(body.length + FRAME_OVERHEAD);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  frame.writeUInt32BE(crc32(body), 4 + body.length);
  return frame;
}

/** What the magic at the start of `buf` says: ok, too short to tell (a prefix of the magic), or not a log. */
export type MagicCheck = { kind: 'ok' } | { kind: 'incomplete' } | { kind: 'not-a-log'; message: string };

export function checkMagic(buf: Uint8Array): MagicCheck {
  const n = Math.min(buf.length, MAGIC_BYTES);
  for (let i = 0; i < n; i++) {
    if (buf[i] === MAGIC[i]) continue;
    if (i === MAGIC_BYTES - 1) {
      const message = `unsupported event log format version ${buf[i]} (this reader knows ${FORMAT_VERSION})`;
      return { kind: 'not-a-log', message };
    }
    return { kind: 'not-a-log', message: 'not an mxproxy event log (bad magic; expected "MXPLOG\\0" + version)' };
  }
  return n < MAGIC_BYTES ? { kind: 'incomplete' } : { kind: 'ok' };
}

/** One attempt to read the frame starting at `pos` of `buf`. */
export type FrameRead =
  | { kind: 'record'; value: unknown; end: number }
  /** `needed` is exact once the length field is in, else the minimum (a 1-byte body). */
  | { kind: 'incomplete'; needed: number; lengthKnown: boolean }
  | { kind: 'corrupt'; message: string };

export function readFrame(buf: Buffer, pos: number): FrameRead {
  const available = buf.length - pos;
  if (available < 4) return { kind: 'incomplete', needed: FRAME_OVERHEAD + 1 - available, lengthKnown: false };
  const length = buf.readUInt32BE(pos);
  // Checked before waiting for the body: a garbage length must not make a reader buffer up to 4 GiB.
  if (length === 0 || length > MAX_RECORD_BYTES) {
    return { kind: 'corrupt', message: `bad record length ${length} (must be 1..${MAX_RECORD_BYTES})` };
  }
  const end = pos + FRAME_OVERHEAD + length;
  if (end > buf.length) return { kind: 'incomplete', needed: end - buf.length, lengthKnown: true };
  const body = buf.subarray(pos + 4, pos + 4 + length);
  const stored = buf.readUInt32BE(pos + 4 + length);
  const computed = crc32(body);
  if (stored !== computed) {
    return { kind: 'corrupt', message: `CRC mismatch (stored ${hex(stored)}, computed ${hex(computed)})` };
  }
  try {
    return { kind: 'record', value: unpackr.unpack(body), end };
  } catch (err) {
    return { kind: 'corrupt', message: `msgpack body does not decode (${(err as Error)?.message ?? String(err)})` };
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
