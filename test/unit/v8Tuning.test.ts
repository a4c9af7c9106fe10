/**
 * The V8 sweep setting: made by start and forward, left alone when the operator chose on the node command line.
 * Its effect on full collections under bulk forwarding is measured by benchmarks (docs/performance.md).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sweepArrayBuffersInline } from '../../src/process/v8Tuning.js';

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/process/v8Tuning.js');

describe('sweepArrayBuffersInline', () => {
  test('leaves an operator-given setting alone, either way', () => {
    assert.equal(sweepArrayBuffersInline(['--concurrent-array-buffer-sweeping']), 'skipped:operator');
    assert.equal(sweepArrayBuffersInline(['--max-old-space-size=512', '--no-concurrent_array_buffer_sweeping']), 'skipped:operator');
  });

  test('sets it otherwise (a flag this V8 knows), in a process that then runs and collects as usual', () => {
    const script = `import { sweepArrayBuffersInline } from ${JSON.stringify(MODULE)};
      const r = sweepArrayBuffersInline([]);
      let kept = 0; for (let i = 0; i < 2000; i++) kept += Buffer.alloc(64 * 1024, 1)[0];
      globalThis.gc(); console.log(r, kept);`;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'set 2000');
    // V8 names a flag it does not know on stderr: a Node whose V8 dropped this one fails here.
    assert.equal(r.stderr, '');
  });
});
