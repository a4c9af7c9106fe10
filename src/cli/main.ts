#!/usr/bin/env node
/** `mxproxy <command>`: the command-line entry point. */
import { Command, Option } from 'commander';
import { createRequire } from 'node:module';
import { startCommand } from './start.js';
import { checkConfigCommand } from './checkConfig.js';
import { registerCertsCommand } from './certs.js';
import { registerForwardCommand } from './forward.js';
import { registerReplayCommand } from './replay.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

const program = new Command()
  .name('mxproxy')
  .description('Multiplexing mutual-TLS proxy: one port in front of many internal TCP servers.')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError();

program
  .command('start')
  .description('run the proxy')
  .requiredOption('-c, --config <file>', 'config file with a [proxy] section')
  .addOption(new Option('--dbg <topic>', 'debug output: "work" prints the effective configuration at start').choices(['work']))
  .addOption(new Option('--report <topic>', '"dispatch" logs each accept/decline and link/unlink with byte counts').choices(['dispatch']))
  .addOption(new Option('--log-format <format>', 'log line format').choices(['text', 'json']).default('text'))
  .addOption(new Option('--log-level <level>', 'lowest level logged').choices(['error', 'warn', 'info', 'debug']).default('info'))
  .addHelpText('after', '\nExamples:\n  mxproxy start -c config/mxproxy.config\n  mxproxy start -c /etc/mxproxy.config --dbg work --report dispatch --log-format json')
  .action(startCommand);

registerForwardCommand(program);
registerCertsCommand(program);
registerReplayCommand(program);

program
  .command('check-config')
  .description('validate a config file; print the effective configuration or the errors with file:line')
  .requiredOption('-c, --config <file>', 'config file to check')
  .option('--no-files', 'do not check that certificate files exist')
  .addHelpText('after', '\nExample:\n  mxproxy check-config -c config/mxproxy.config')
  .action(checkConfigCommand);

await program.parseAsync(process.argv);
