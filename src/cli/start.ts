/** `mxproxy start`: run the proxy until SIGTERM/SIGINT (draining linked pairs), reloading on SIGHUP. */
import { describeConfig, loadProxyConfig, PROXY_KEYS, PROXY_SECTION, type ProxyConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { closeLogger, type LogFormat, type Logger } from '../log.js';
import { raiseMallocTrimThreshold } from '../process/mallocTrim.js';
import { startProxy, type ProxyHandle } from '../proxy/runtime.js';
import { ensureDevCertificates } from './devCerts.js';
import { logEffectiveConfig, openLogger } from './logging.js';
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

export async function startCommand(opts: StartOptions): Promise<void> {
  let config: ProxyConfig;
  let logger: Logger;
  try {
    // Certificate files are checked after the development set had its chance to be created.
    const unchecked = loadProxyConfig(opts.config, { requireTls: true, checkFiles: false });
    // The log file is opened as the account started with: before a privilege drop ([proxy] user).
    let opened: Awaited<ReturnType<typeof openLogger>>;
    try {
      opened = await openLogger(opts, unchecked.log, unchecked.runAs);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      cannotStart(err);
    }
    logger = opened.logger;
    if (unchecked.tls) await ensureDevCertificates(unchecked.tls, logger);
    // The targets in force (--log-file, --syslog included): what the runtime checks after a drop, and --dbg shows.
    config = { ...loadProxyConfig(opts.config, { requireTls: true }), log: opened.targets };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mxproxy: ${err.issues.length} problem(s) in the configuration:\n${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (opts.dbg === 'work') {
    logEffectiveConfig(logger, opts.logFormat, { text: describeConfig(config), file: config.file, section: PROXY_SECTION, keys: PROXY_KEYS });
  }
  if (process.getuid?.() === 0 && !config.runAs) {
    logger.warn('running as root: set user (and group) in [proxy] to drop root once the proxy has started (docs/security.md)');
  }

  // Forwarded bytes churn Buffers; in the background, see the module for why.
  void raiseMallocTrimThreshold();
  const started = handleSignals<ProxyHandle>(logger, {
    stop: (proxy, drain) => void proxy.stop({ drain }),
    // The proxy logs the outcome: the configuration in force, or every problem and `reload rejected`.
    reload: (proxy) => void proxy.reload(),
  });
  let proxy: ProxyHandle;
  try {
    proxy = await startProxy({ config, logger, reportDispatch: opts.report === 'dispatch' });
  } catch (err) {
    await closeLogger(logger);
    cannotStart(err);
  }
  started(proxy);
  await proxy.stopped;
  await closeLogger(logger);
  process.exit(0);
}
