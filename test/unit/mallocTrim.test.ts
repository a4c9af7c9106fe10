/**
 * The allocator nudge: runs once per process on Linux, and stays out of the way of an operator's own glibc
 * tunables and of other platforms. Its effect on page faults is measured by `npm run bench` (faults per GB).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { raiseMallocTrimThreshold } from '../../src/process/mallocTrim.js';

describe('raiseMallocTrimThreshold', () => {
  test('leaves an operator-set trim or mmap threshold alone', async () => {
    assert.equal(await raiseMallocTrimThreshold({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1048576' }, 'linux'), 'skipped:tunables');
    assert.equal(await raiseMallocTrimThreshold({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' }, 'linux'), 'skipped:tunables');
  });

  test('does nothing off Linux', async () => {
    assert.equal(await raiseMallocTrimThreshold({}, 'darwin'), 'skipped:platform');
  });

  test('runs the nudge once per process, other tunables notwithstanding', async () => {
    const first = raiseMallocTrimThreshold({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'linux');
    const second = raiseMallocTrimThreshold({}, 'linux');
    assert.equal(first, second, 'the same promise: one scrypt per process');
    assert.equal(await first, 'raised');
  });
});
