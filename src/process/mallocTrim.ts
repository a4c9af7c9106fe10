/**
 * Keeps glibc's malloc from handing freed forwarding buffers back to the kernel after every garbage collection.
 *
 * Forwarded chunks are Node Buffers (16 KiB TLS records, 64 KiB socket reads) whose memory V8 frees in batches,
 * at each scavenge. With glibc's default trim threshold (128 KiB) every batch shrinks the heap and the next
 * chunks fault it back in page by page: measured in `npm run bench` (bulk), about one minor page fault per
 * 4 KiB forwarded, a third to half of the throughput, and a proxy that ran fast or slow depending on whether
 * something in it had happened to free a large block early.
 *
 * glibc raises the trim threshold on its own (to twice the block's size) the first time a block it had mapped
 * with mmap is freed (mallopt(3), "dynamic mmap threshold"). Node has no mallopt, so this makes that happen
 * once: scrypt allocates its working memory with malloc in one block and frees it when done. It runs on the
 * libuv thread pool (about 80 ms there; the event loop does not wait) and needs no native code. Where it has no
 * effect (musl, another allocator) it costs that one scrypt. An operator's own GLIBC_TUNABLES malloc settings
 * are left alone.
 */
import { scrypt } from 'node:crypto';

/** 16 MiB (128 · r · N bytes): the trim threshold becomes 32 MiB, which the benchmark needs to stop faulting. */
const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 << 20 };

let started: Promise<TrimTuning> | undefined;

/** What was done: the nudge ran (once per process), or why not. */
export type TrimTuning = 'raised' | 'skipped:platform' | 'skipped:tunables';

/**
 * Process-wide tuning, so the commands that own the process call it (start, forward), not the library.
 * Never rejects: a failure (memory limits) must not keep the proxy from starting.
 */
export function raiseMallocTrimThreshold(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): Promise<TrimTuning> {
  if (platform !== 'linux') return Promise.resolve('skipped:platform');
  if (/malloc\.(trim|mmap)_threshold/.test(env['GLIBC_TUNABLES'] ?? '')) return Promise.resolve('skipped:tunables');
  started ??= new Promise((resolve) => scrypt('mxproxy', 'malloc-trim', 16, SCRYPT, () => resolve('raised')));
  return started;
}
