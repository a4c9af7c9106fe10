/**
 * The worker's side of the admin endpoint of `[proxy] workers` > 1. The primary binds adminListen and serves it
 * (src/inspect/cluster.ts); each worker keeps its own figures (its Inspector: pairs by state, the table, the
 * metrics) without binding anything, and answers the primary's questions about them over the IPC channel.
 */
import cluster from 'node:cluster';
import { asPrimaryMessage, WORKER_ENV, type AdminQuestion, type WorkerMessage } from './messages.js';

/** This process is a worker of `mxproxy start` with workers > 1 (the primary serves the admin endpoint). */
export function isClusterWorker(): boolean {
  const n = process.env[WORKER_ENV];
  return cluster.isWorker && n !== undefined && /^[1-9][0-9]*$/.test(n);
}

function reply(message: WorkerMessage): void {
  if (!process.send || !process.connected) return;
  try {
    process.send(message);
  } catch {
    // A value the channel cannot serialize: the primary times the question out.
  }
}

/**
 * Answers the primary's admin questions with `answer` until the returned function is called. An answer that
 * throws is sent as `ok: false`; the primary shows that worker as not answering.
 */
export function answerPrimary(answer: (q: AdminQuestion) => unknown): () => void {
  const onMessage = (raw: unknown): void => {
    const m = asPrimaryMessage(raw);
    if (!m || m.mx !== 'admin') return;
    const { id } = m;
    Promise.resolve()
      .then(() => answer(m))
      .then(
        (value) => reply({ mx: 'admin-reply', id, ok: true, value }),
        () => reply({ mx: 'admin-reply', id, ok: false, value: null }),
      );
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}
