/**
 * closeLogger: a command that logs and exits loses no line, even with stdout on a pipe (asynchronous in Node).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const logJs = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'log.js');

test('closeLogger resolves after the last line has been written to a pipe', async () => {
  const lines = 20_000;
  const script = `
    import { createLogger, closeLogger } from ${JSON.stringify(logJs)};
    const logger = createLogger();
    for (let i = 0; i < ${lines}; i++) logger.info('line ' + i + ' ' + 'x'.repeat(100));
    logger.info('last line');
    await closeLogger(logger);
    process.exit(0);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  const got = out.trimEnd().split('\n');
  assert.equal(got.length, lines + 1);
  assert.match(got.at(-1) ?? '', /info  last line$/);
});
