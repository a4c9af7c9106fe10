/**
 * `mxproxy forward`: local ports for unmodified TCP clients, each connection forwarded through the proxy. SIGHUP
 * re-reads the -c file's [client] section; SIGTERM/SIGINT drain, as for `mxproxy start`.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import {
  buildClientConfig,
  CLIENT_KEYS,
  CLIENT_SECTION,
  describeClientConfig,
  loadClientConfig,
  type ClientConfig,
  type ConfigEntry,
} from '../config/index.js';
import { ConfigError } from '../errors.js';
import { startForwarder, type Forwarder } from '../forward/forwarder.js';
import { closeLogger, type LogFormat, type Logger } from '../log.js';
import { raiseMallocTrimThreshold } from '../process/mallocTrim.js';
import { sweepArrayBuffersInline } from '../process/v8Tuning.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';
import { logEffectiveConfig, openLogger } from './logging.js';
import { handleSignals } from './stopSignals.js';

interface ForwardOptions {
  config?: string;
  proxy?: string;
  listen?: string;
  target?: string;
  direct: string[];
  cert?: string;
  key?: string;
  ca?: string;
  connectTimeout?: string;
  dbg?: 'work';
  logFormat: LogFormat;
  logLevel: string;
  logFile?: string;
  syslog?: string;
}

const COMMAND_LINE = '<command line>';

/** The flags as config entries, so they pass the very same validation as a [client] section. */
function configFromFlags(o: ForwardOptions): ClientConfig {
  const entries: ConfigEntry[] = [];
  const add = (key: string, flag: string, value: string | number) =>
    entries.push({
      section: 'client',
      key,
      value: typeof value === 'number' ? { kind: 'number', value, raw: String(value) } : { kind: 'string', value },
      line: 0,
      text: `${flag} ${value}`,
    });
  const missing = (['proxy', 'listen', 'target'] as const).filter((k) => o[k] === undefined);
  if (missing.length > 0) {
    throw new ConfigError([
      {
        file: COMMAND_LINE,
        line: 0,
        entry: '',
        message: `give -c <file>, or all of --proxy, --listen and --target (missing: ${missing.map((m) => `--${m}`).join(', ')})`,
      },
    ]);
  }
  add('mxProxy', '--proxy', o.proxy!);
  add('forward', '--listen/--target/--direct', [o.listen!, o.target!, ...o.direct].join(' '));
  const tlsFlags = [o.cert, o.key, o.ca];
  if (tlsFlags.some((f) => f !== undefined) && !tlsFlags.every((f) => f !== undefined)) {
    throw new ConfigError([{ file: COMMAND_LINE, line: 0, entry: '', message: 'give --cert, --key and --ca together' }]);
  }
  if (o.cert !== undefined) {
    add('sslCertificate', '--cert/--key/--ca', [o.cert ?? '', o.key ?? '', o.ca ?? ''].join(' '));
  }
  if (o.connectTimeout !== undefined) {
    const n = Number(o.connectTimeout);
    add('connectTimeout', '--connect-timeout', Number.isFinite(n) ? n : o.connectTimeout);
  }
  const { config, issues } = buildClientConfig([], entries, COMMAND_LINE, `${process.cwd()}/.`, { requireForwards: true });
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}

async function forwardCommand(o: ForwardOptions): Promise<void> {
  let config: ClientConfig;
  let logger: Logger;
  try {
    const flags = ['proxy', 'listen', 'target', 'cert', 'key', 'ca'] as const;
    if (o.config !== undefined && (flags.some((f) => o[f] !== undefined) || o.direct.length > 0)) {
      throw new ConfigError([
        { file: COMMAND_LINE, line: 0, entry: '', message: '-c <file> and --proxy/--listen/--target/... exclude each other' },
      ]);
    }
    config = o.config !== undefined ? loadClientConfig(o.config, { requireForwards: true }) : configFromFlags(o);
    const opened = await openLogger(o, config.log);
    logger = opened.logger;
    config = { ...config, log: opened.targets };
  } catch (err) {
    if (err instanceof ConfigError) {
      const devCerts = err.issues.some((i) => i.message.includes('not found') && i.message.includes('dev-certs'));
      process.stderr.write(`mxproxy forward: ${err.issues.length} problem(s):\n${err.message}\n`);
      if (devCerts) process.stderr.write('hint: `npm start` (mxproxy start) creates the development certificates on its first run\n');
      process.exit(2);
    }
    const code = (err as { code?: unknown }).code;
    process.stderr.write(`mxproxy forward: cannot start: ${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}\n`);
    process.exit(1);
  }
  if (o.dbg === 'work') {
    logEffectiveConfig(logger, o.logFormat, { text: describeClientConfig(config), file: config.file, section: CLIENT_SECTION, keys: CLIENT_KEYS });
  }

  // Forwarded bytes churn Buffers; see the modules for why.
  void raiseMallocTrimThreshold();
  sweepArrayBuffersInline();
  let exiting = false;
  const started = handleSignals<Forwarder>(logger, {
    stop: (forwarder, drain) => {
      const stopped = forwarder.stop({ drain });
      if (exiting) return;
      exiting = true;
      void stopped.then(() => exit(logger));
    },
    // With flags alone there is no file to read again: SIGHUP is then logged and ignored.
    ...(o.config !== undefined ? { reload: (forwarder: Forwarder) => void forwarder.reload() } : {}),
  });
  let forwarder: Forwarder;
  try {
    const tls = config.proxy && config.tls ? loadTlsMaterial(config.tls) : undefined;
    forwarder = await startForwarder({ config, tls, logger });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    process.stderr.write(`mxproxy forward: cannot start: ${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}\n`);
    process.exit(1);
  }
  started(forwarder);
}

async function exit(logger: Logger): Promise<void> {
  await closeLogger(logger);
  process.exit(0);
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerForwardCommand(program: Command): void {
  program
    .command('forward')
    .description('listen on local ports and forward each connection through the proxy to a named target')
    .option('-c, --config <file>', 'config file with a [client] section (mxProxy, forward, sslCertificate)')
    .option('--proxy <host:port|none>', 'the proxy; "none" connects straight to --direct')
    .option('--listen <host:port>', 'local address to listen on, e.g. 127.0.0.1:15432')
    .option('--target <name>', 'server name to ask the proxy for')
    .option('--direct <host:port>', "the target's own address, used with --proxy none (repeatable)", collect, [])
    .option('--cert <file>', 'client certificate (PEM)')
    .option('--key <file>', 'its private key (PEM)')
    .option('--ca <file>', 'the project CA (PEM)')
    .option('--connect-timeout <ms>', 'ms for TLS and the reply, per connection (default 10000)')
    .addOption(new Option('--dbg <topic>', '"work" prints the effective configuration at start').choices(['work']))
    .addOption(new Option('--log-format <format>', 'log line format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--log-level <level>', 'lowest level logged').choices(['error', 'warn', 'info', 'debug']).default('info'))
    .option('--log-file <file>', 'also log to this file, rotated by size (instead of [client] logFile)')
    .option('--syslog <url>', 'also log to syslog, udp://host:port or tcp://host:port (instead of [client] syslog)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  mxproxy forward -c config/mxproxy.config\n' +
        '  mxproxy forward --proxy gw.plant.local:5678 --listen 127.0.0.1:15432 --target historian \\\n' +
        '      --cert certs/hmi-1.pem --key certs/hmi-1.key --ca certs/ca.pem\n' +
        '  mxproxy forward --proxy none --listen 127.0.0.1:15432 --target historian --direct 10.0.0.5:5432\n' +
        '\nThen point the unmodified client at the local port, e.g. psql -h 127.0.0.1 -p 15432.',
    )
    .action(forwardCommand);
}
