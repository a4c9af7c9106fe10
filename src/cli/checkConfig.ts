/** `mxproxy check-config`: validate a config file; exit 0 with the effective configuration, 2 with errors. */
import { ConfigError, describeConfig, loadProxyConfig } from '../config/index.js';

export function checkConfigCommand(opts: { config: string; files: boolean }): void {
  try {
    const config = loadProxyConfig(opts.config, { requireTls: true, checkFiles: opts.files });
    process.stdout.write(`${describeConfig(config)}\n`);
    process.stderr.write(`${opts.config}: OK\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n${opts.config}: ${err.issues.length} problem(s)\n`);
    process.exitCode = 2;
  }
}
