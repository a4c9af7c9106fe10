/** How much the event log records per pair: lifecycle events only, chunk sizes too, or the bytes themselves. */
export type EventLogLevel = 'lifecycle' | 'traffic' | 'payload';
export const EVENT_LOG_LEVELS: readonly EventLogLevel[] = ['lifecycle', 'traffic', 'payload'];
