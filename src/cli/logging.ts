/**
 * The logger of a long-running command (`start`, `forward`): its section's log keys with the command line's
 * `--log-file` / `--syslog` in their place, and `--dbg work` output that keeps `--log-format json` pure.
 */
import { configRecord, resolveLogTargets, type KeyDoc, type LogConfig, type RunAs } from '../config/index.js';
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

/**
 * `--dbg work`: the effective configuration. As text, the config-file block on stdout; in JSON mode one log
 * record, `{"level":"info","message":"effective configuration","file":…,"config":{…}}`, so that every stdout
 * line stays a JSON object (and the file and syslog get it too).
 */
export function logEffectiveConfig(
  logger: Logger,
  format: LogFormat,
  described: { text: string; file: string; section: string; keys: readonly KeyDoc<string>[] },
): void {
  if (format === 'json') {
    logger.info('effective configuration', { file: described.file, config: configRecord(described.text, described.section, described.keys) });
  } else {
    process.stdout.write(`# effective configuration\n${described.text}\n`);
  }
}
