/**
 * Work the admin endpoint does off the proxy's thread, in a worker of its own that ends with its job: drawing
 * the diagram (Graphviz in WebAssembly) and replaying event logs. Both allocate a lot at once; in the proxy's
 * own isolate that left V8 with a tight old-generation limit and a mark-compact every few hundred
 * milliseconds under bulk forwarding (measured: half again as much CPU per GB). Here their heap is gone when
 * the worker ends, and a long replay does not hold up forwarding either.
 */
import { parentPort, workerData } from 'node:worker_threads';

export type WorkerJob =
  | { kind: 'diagram'; machine: 'connection' | 'forward' }
  | { kind: 'replay-upload'; body: Uint8Array; source: string }
  | { kind: 'replay-file'; eventLog: string | string[] | undefined; name: string };

export type WorkerAnswer = { ok: true; value: unknown } | { ok: false; message: string };

async function run(job: WorkerJob): Promise<unknown> {
  switch (job.kind) {
    case 'diagram':
      return (await import('../diagram/render.js')).renderDiagram(job.machine === 'forward' ? 'forward' : 'connection', 'svg');
    case 'replay-upload': {
      const { replayBuffer } = await import('./replay.js');
      return replayBuffer(Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength), job.source);
    }
    case 'replay-file':
      return (await import('./replay.js')).replayLogFile(job.eventLog, job.name);
  }
}

if (parentPort) {
  const port = parentPort;
  run(workerData as WorkerJob).then(
    (value) => port.postMessage({ ok: true, value } satisfies WorkerAnswer),
    (err: unknown) => port.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) } satisfies WorkerAnswer),
  );
}
