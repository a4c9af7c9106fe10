/**
 * `mxproxy start`: run the proxy until SIGTERM/SIGINT (draining linked pairs), reloading on SIGHUP. With
 * `[proxy] workers` > 1: the primary, or a worker.
 */
import { fileURLToPath } from 'node:url';
import { resolveWorkers, runPrimary } from '../cluster/primary.js';
import { reportToPrimary, workerIndex, workerLogger, workerSetup } from '../cluster/worker.js';
import { describeConfig, loadProxyConfig, PROXY_KEYS, PROXY_SECTION, resolveLogTargets, type ProxyConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { closeLogger, type LogFormat, type Logger } from '../log.js';
import { raiseMallocTrimThreshold } from '../process/mallocTrim.js';
import { opensslConfigInForce, ticketsNote, withOpensslConfig } from '../process/opensslConfig.js';
import { sweepArrayBuffersInline } from '../process/v8Tuning.js';
import { startProxy, type ProxyHandle } from '../proxy/runtime.js';
import { ensureDevCertificates } from './devCerts.js';
import { logEffectiveConfig, openLogger } from './logging.js';
import { removePidFile, writePidFile } from '../process/pidFile.js';
import { handleSignals } from './stopSignals.js';

export interface StartOptions {
  config: string;
  dbg?: 'work';
  report?: 'dispatch';
  logFormat: LogFormat;
  logLevel: string;
  logFile?: string;
  syslog?: string;
}

function cannotStart(err: unknown): never {
  const code = (err as { code?: unknown }).code;
  process.stderr.write(`mxproxy: cannot start: ${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}\n`);
  process.exit(1);
}

/** The CLI's entry point, which the primary's workers run (with the same arguments). */
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** `workers` > 1: this process is the primary; it serves nothing itself and exits when its workers have. */
async function startPrimary(config: ProxyConfig, logger: Logger, workers: number): Promise<never> {
  let code: number;
  // The pid file names the primary: `mxproxy reload` signals it, and it passes SIGHUP on to every worker.
  const pidFile = config.pidFile;
  try {
    if (pidFile) writePidFile(pidFile, config.runAs);
    // adminListen: served here, from what the workers answer (loaded only then, as in a single process).
    const admin = config.admin;
    code = await runPrimary({
      config,
      logger,
      workers,
      exec: MAIN,
      args: process.argv.slice(2),
      ...(admin
        ? {
            admin: async (pool) =>
              (await import('../inspect/cluster.js')).startClusterAdmin({ admin, logger, pool, configFile: config.file, eventLog: config.eventLog?.path }),
          }
        : {}),
    });
  } catch (err) {
    if (pidFile) removePidFile(pidFile);
    await closeLogger(logger);
    cannotStart(err);
  }
  if (pidFile) {
    const problem = removePidFile(pidFile);
    if (problem) logger.warn(problem);
  }
  await closeLogger(logger);
  process.exit(code);
}

export async function startCommand(opts: StartOptions): Promise<void> {
  // Worker N of the primary's (src/cluster/worker.ts), or undefined: a single process, or the primary.
  const worker = workerIndex();
  let config: ProxyConfig;
  let logger: Logger;
  try {
    // Certificate files are checked after the development set had its chance to be created.
    const unchecked = loadProxyConfig(opts.config, { requireTls: true, checkFiles: false });
    // The log file is opened as the account started with: before a privilege drop ([proxy] user).
    let opened: Awaited<ReturnType<typeof openLogger>>;
    try {
      // A worker's records are written by the primary, which has the log file and syslog open.
      opened =
        worker !== undefined
          ? { logger: workerLogger(opts.logLevel), targets: resolveLogTargets(unchecked.log, opts) }
          : await openLogger(opts, unchecked.log, unchecked.runAs);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      cannotStart(err);
    }
    logger = opened.logger;
    if (unchecked.tls && worker === undefined) await ensureDevCertificates(unchecked.tls, logger);
    // The targets in force (--log-file, --syslog included): what the runtime checks after a drop, and --dbg shows.
    // A worker does not read the certificate files (the primary did), so it does not check them either.
    config = { ...loadProxyConfig(opts.config, { requireTls: true, checkFiles: worker === undefined }), log: opened.targets };
    // The primary holds the pid file; a worker writing its own would find the primary's and refuse to start.
    if (worker !== undefined) config = { ...config, pidFile: undefined };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mxproxy: ${err.issues.length} problem(s) in the configuration:\n${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (opts.dbg === 'work' && worker === undefined) {
    logEffectiveConfig(logger, opts.logFormat, { text: describeConfig(config), file: config.file, section: PROXY_SECTION, keys: PROXY_KEYS });
  }
  if (process.getuid?.() === 0 && !config.runAs && worker === undefined) {
    logger.warn('running as root: set user (and group) in [proxy] to drop root once the proxy has started (docs/security.md)');
  }

  const workers = worker === undefined ? resolveWorkers(config.workers) : 1;
  // The workers are started with the shipped OpenSSL settings unless the operator gave their own.
  if (worker === undefined) logger.info(`TLS: ${ticketsNote(opensslConfigInForce(workers > 1 ? withOpensslConfig(process.execArgv) : process.execArgv))}`);
  if (workers > 1) await startPrimary(config, logger, workers);

  // Forwarded bytes churn Buffers; see the modules for why.
  void raiseMallocTrimThreshold();
  sweepArrayBuffersInline();
  const setup = worker !== undefined ? await workerSetup() : undefined;
  const started = handleSignals<ProxyHandle>(
    logger,
    {
      stop: (proxy, drain) => void proxy.stop({ drain }),
      // The proxy logs the outcome: the configuration in force, or every problem and `reload rejected`.
      reload: (proxy) => void proxy.reload(),
    },
    setup ? ['SIGTERM'] : undefined,
  );
  let proxy: ProxyHandle;
  try {
    proxy = await startProxy({
      config,
      logger,
      reportDispatch: opts.report === 'dispatch',
      // A worker: the primary's certificates and ticket key, its own event log series.
      ...(setup ? { worker, tls: setup.tls, ticketKeys: setup.ticketKey, externalTicketRotation: true } : {}),
    });
  } catch (err) {
    await closeLogger(logger);
    cannotStart(err);
  }
  started(proxy);
  const stopReporting = setup ? reportToPrimary(proxy, setup.ticketKey) : undefined;
  await proxy.stopped;
  stopReporting?.();
  await closeLogger(logger);
  process.exit(0);
}
