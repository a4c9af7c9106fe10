/** Event log storage: framed msgpack records in size-rotated files (format: ./format.ts). */
export { EventLogWriter, type EventLogWriterOptions, type EventLogWriterStats } from './writer.js';
export {
  decodeEventLog,
  readEventLogFile,
  iterateEventLogFile,
  type EventLogContents,
  type EventLogEnd,
  type EventLogStop,
  type EventLogStopReason,
  type IterateOptions,
} from './reader.js';
export { listLogFiles, rotatedPath } from './files.js';
export { MAGIC, FORMAT_VERSION, MAX_RECORD_BYTES, FRAME_OVERHEAD, encodeFrame } from './format.js';
