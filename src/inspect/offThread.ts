/** Runs one job of ./worker.ts in a fresh worker thread and resolves with its answer (see there for why). */
import { Worker } from 'node:worker_threads';
import type { WorkerAnswer, WorkerJob } from './worker.js';

/** A replay's heap is bounded too: a hostile upload cannot take the proxy's memory. */
const LIMITS = { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 64 };

export function offThread<T>(job: WorkerJob, transfer: ArrayBuffer[] = []): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: job, transferList: transfer, resourceLimits: LIMITS });
    let settled = false;
    worker.once('message', (answer: WorkerAnswer) => {
      settled = true;
      if (answer.ok) resolve(answer.value as T);
      else reject(new Error(answer.message));
      void worker.terminate();
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the admin endpoint's worker exited (code ${code}) without an answer`));
    });
  });
}
