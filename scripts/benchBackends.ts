/**
 * Benchmark backends for `npm run bench`: an echo server and a sink server, in a process of their own.
 *
 *   node dist/scripts/benchBackends.js [--echo PORT] [--sink PORT] [--tls --cert F --key F --ca F]
 *
 * Plain TCP by default (the servers mxproxy forwards to); with --tls both are mutual-TLS servers (the
 * "direct TLS" baseline: the client talks to the backend itself, no proxy in between). Ports default to 0 (any
 * free port); once both listen, one JSON line `{"echo":N,"sink":N}` goes to stdout.
 *
 *   echo: writes back every byte it reads.
 *   sink: discards what it reads and writes back one byte per full MiB received, so the sender knows how much
 *         has arrived without relying on how the proxy handles half-close.
 *
 * The process ends on SIGTERM/SIGINT, and when its stdin closes (the bench that started it is gone).
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

const MiB = 1 << 20;
const ACK = Buffer.alloc(256, 0x41);

function echo(s: net.Socket): void {
  s.on('error', () => {});
  s.pipe(s);
}

function sink(s: net.Socket): void {
  s.on('error', () => {});
  let count = 0;
  s.on('data', (d: Buffer) => {
    const before = Math.floor(count / MiB);
    count += d.length;
    let n = Math.floor(count / MiB) - before;
    while (n > 0) {
      const k = Math.min(n, ACK.length);
      s.write(ACK.subarray(0, k));
      n -= k;
    }
  });
  s.on('end', () => s.end());
}

const { values } = parseArgs({
  options: {
    echo: { type: 'string', default: '0' },
    sink: { type: 'string', default: '0' },
    tls: { type: 'boolean', default: false },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
  },
  strict: true,
});

function port(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    process.stderr.write(`benchBackends: --${flag} needs a port 0..65535, got "${text}"\n`);
    process.exit(64);
  }
  return n;
}

type Handler = (s: net.Socket) => void;
let make: (h: Handler) => net.Server = (h) => net.createServer({ noDelay: true }, h);

if (values.tls) {
  if (!values.cert || !values.key || !values.ca) {
    process.stderr.write('benchBackends: --tls needs --cert, --key and --ca\n');
    process.exit(64);
  }
  const options: tls.TlsOptions = {
    cert: fs.readFileSync(values.cert),
    key: fs.readFileSync(values.key),
    ca: fs.readFileSync(values.ca),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  };
  make = (h) => {
    const server = tls.createServer(options, (s) => {
      s.setNoDelay(true);
      h(s);
    });
    server.on('tlsClientError', () => {});
    return server;
  };
}

function listen(server: net.Server, p: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: p, host: '127.0.0.1', backlog: 4096 }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

try {
  const [echoPort, sinkPort] = await Promise.all([
    listen(make(echo), port(values.echo, 'echo')),
    listen(make(sink), port(values.sink, 'sink')),
  ]);
  process.stdout.write(`${JSON.stringify({ echo: echoPort, sink: sinkPort })}\n`);
} catch (err) {
  process.stderr.write(`benchBackends: cannot listen: ${(err as Error).message}\n`);
  process.exit(1);
}

const quit = () => process.exit(0);
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
// the bench holds our stdin open; when it goes away (even killed), so do we
process.stdin.on('end', quit);
process.stdin.on('close', quit);
process.stdin.on('error', quit);
process.stdin.resume();
