#!/usr/bin/env node
/** `mxproxy <command>`: the command-line entry point. */
import { Command, Option } from 'commander';
import { createRequire } from 'node:module';
import type { StartOptions } from './start.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

const program = new Command()
  .name('mxproxy')
  .description('Multiplexing mutual-TLS proxy: one port in front of many internal TCP servers.')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError();

/**
 * Each command's module is imported only when that command runs (or for the full help): a running proxy does not
 * carry the X.509 library of `certs`, the replay tooling or the Graphviz of `diagram`, which is start-up time and, measured, about 20 MB of
 * resident memory per process. Commands are listed here in the order the help shows them.
 */
const COMMANDS: Record<string, (program: Command) => Promise<void>> = {
  start: async (p) => registerStart(p),
  reload: async (p) => (await import('./reload.js')).registerReloadCommand(p),
  forward: async (p) => (await import('./forward.js')).registerForwardCommand(p),
  certs: async (p) => (await import('./certs.js')).registerCertsCommand(p),
  replay: async (p) => (await import('./replay.js')).registerReplayCommand(p),
  diagram: async (p) => (await import('./diagram.js')).registerDiagramCommand(p),
  'check-config': async (p) => registerCheckConfig(p),
  audit: async (p) => (await import('./audit.js')).registerAuditCommand(p),
};

function registerStart(program: Command): void {
  program
    .command('start')
    .description('run the proxy')
    .requiredOption('-c, --config <file>', 'config file with a [proxy] section')
    .addOption(new Option('--dbg <topic>', 'debug output: "work" prints the effective configuration at start').choices(['work']))
    .addOption(new Option('--report <topic>', '"dispatch" logs each accept/decline and link/unlink with byte counts').choices(['dispatch']))
    .addOption(new Option('--log-format <format>', 'log line format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--log-level <level>', 'lowest level logged').choices(['error', 'warn', 'info', 'debug']).default('info'))
    .option('--log-file <file>', 'also log to this file, rotated by size (instead of [proxy] logFile)')
    .option('--syslog <url>', 'also log to syslog, udp://host:port or tcp://host:port (instead of [proxy] syslog)')
    .addHelpText(
      'after',
      '\nExamples:\n  mxproxy start -c config/mxproxy.config\n  mxproxy start -c /etc/mxproxy.config --dbg work --report dispatch --log-format json\n' +
        '  mxproxy start -c /etc/mxproxy.config --log-file /var/log/mxproxy/mxproxy.log --syslog udp://127.0.0.1:514',
    )
    .action(async (opts: StartOptions) => (await import('./start.js')).startCommand(opts));
}

function registerCheckConfig(program: Command): void {
  program
    .command('check-config')
    .description('validate a config file; print the effective configuration or the errors with file:line')
    .requiredOption('-c, --config <file>', 'config file to check')
    .option('--no-files', 'do not check that certificate files exist')
    .addHelpText('after', '\nExample:\n  mxproxy check-config -c config/mxproxy.config')
    .action(async (opts: { config: string; files: boolean }) => (await import('./checkConfig.js')).checkConfigCommand(opts));
}

// `mxproxy <command> …` registers that command alone; anything else (help, a typo, no command) gets them all.
const named = process.argv[2];
for (const name of named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS)) {
  await COMMANDS[name]!(program);
}

await program.parseAsync(process.argv);
