/**
 * A stand-in for a `mxproxy start` worker (src/cluster/worker.ts), for the primary's tests: it speaks the same IPC
 * messages and serves nothing, so restarts, give-ups and signals take milliseconds instead of a proxy's start-up.
 * FAKE_WORKER_MODE: serve (default) | crash (exits 7 a moment after it listens) | crash-at-start (exits 3 before)
 * | stubborn (stops at the second SIGTERM only).
 */
import { WORKER_ENV, type WorkerMessage } from '../../src/cluster/messages.js';

// `node --test dist/test/` runs every file, this one too: without a primary it does nothing.
const connected = process.send !== undefined;
const mode = process.env.FAKE_WORKER_MODE ?? 'serve';
const send = (m: WorkerMessage, then?: () => void): void => {
  process.send!(m, undefined, {}, () => then?.());
};
const log = (message: string, then?: () => void): void => send({ mx: 'log', info: { level: 'info', message, fake: process.env[WORKER_ENV] } }, then);

if (connected) {
  process.on('message', (m: { mx?: string; ticketKey?: string; key?: string }) => {
    if (m.mx === 'setup') {
      log(`setup with a ticket key of ${Buffer.from(m.ticketKey ?? '', 'base64').length} bytes`);
      if (mode === 'crash-at-start') return log('failing', () => process.exit(3));
      send({ mx: 'listening', addresses: ['127.0.0.1:1'] });
      send({ mx: 'stats', stats: { accepted: 3, active: 2, open: 2, pending: 0, refused: {} } });
      // Later than the messages above: a worker's exit can overtake what is still in the channel.
      if (mode === 'crash') setTimeout(() => process.exit(7), 200);
    } else if (m.mx === 'ticket-key') {
      log(`ticket key ${m.key}`);
    }
  });
  let terms = 0;
  process.on('SIGTERM', () => {
    terms++;
    log(`SIGTERM ${terms}`, () => {
      if (mode !== 'stubborn' || terms >= 2) process.exit(0);
    });
  });
  process.on('SIGHUP', () => log('SIGHUP'));
  process.on('SIGINT', () => {});
  send({ mx: 'ready' });
}
