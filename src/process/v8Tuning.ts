/**
 * Has V8 free forwarded chunks' memory on the main thread after each scavenge instead of on a helper thread.
 *
 * Forwarded bytes are Buffers whose memory V8 counts as external. After a scavenge the dead ones are released
 * by an ArrayBuffer sweeper that runs concurrently by default; until it has finished, their bytes still count.
 * When the proxy has one core to itself and keeps it busy (bulk forwarding, pinned with taskset, or a host
 * under load) the helper thread falls behind, the count reaches V8's external-memory limit and every ~60 ms a
 * full mark-compact runs to settle it. Measured (one stream into a sink, 4 s, proxy pinned to one CPU): about
 * 70 mark-compacts and a third less throughput in most runs of a proxy with the admin endpoint, in some runs of
 * one without, and in the plain-Node floor given a 12 MiB heap; with the sweep on the main thread 0–3
 * mark-compacts and no slow runs. See docs/performance.md.
 *
 * The flag is read whenever a sweep starts, so setting it at run time works. Process-wide, so the commands
 * that own the process call it (start, forward), not the library. An operator's own choice on the node
 * command line is left alone.
 */
import v8 from 'node:v8';

export const SWEEP_FLAG = '--no-concurrent-array-buffer-sweeping';

export type SweepTuning = 'set' | 'skipped:operator';

export function sweepArrayBuffersInline(execArgv: readonly string[] = process.execArgv): SweepTuning {
  if (execArgv.some((a) => /^--(no-)?concurrent[-_]array[-_]buffer[-_]sweeping$/.test(a))) return 'skipped:operator';
  v8.setFlagsFromString(SWEEP_FLAG);
  return 'set';
}
