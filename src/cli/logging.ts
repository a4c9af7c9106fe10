/**
 * The logger of a long-running command (`start`, `forward`): its section's log keys with the command line's
 * `--log-file` / `--syslog` in their place.
 */
import { resolveLogTargets, type LogConfig, type RunAs } from '../config/index.js';
import { createLogger, loggerReady, type LogFormat, type Logger } from '../log.js';

export interface LogFlags {
  logFormat: LogFormat;
  logLevel: string;
  logFile?: string;
  syslog?: string;
}

/**
 * The targets in force and a logger writing to them, its log file open. Rejects with a ConfigError (the
 * file's directory is missing, a bad --syslog) or an Error with a code (the log file cannot be opened).
 */
export async function openLogger(flags: LogFlags, section: LogConfig, runAs?: RunAs): Promise<{ logger: Logger; targets: LogConfig }> {
  const targets = resolveLogTargets(section, flags);
  // As root about to drop to runAs: the file is made the account's now, before it is opened (src/log.ts).
  const fileOwner = runAs && process.getuid?.() === 0 ? { uid: runAs.uid, gid: runAs.gid } : undefined;
  const logger = createLogger({ format: flags.logFormat, level: flags.logLevel, targets, fileOwner });
  await loggerReady(logger);
  return { logger, targets };
}
