/**
 * The syslog transport: winston-syslog's sockets (UDP, or TCP with reconnect) with an RFC 5424 message built
 * here. glossy, winston-syslog's own producer, writes UTC time fields followed by the *local* offset, which
 * is off by that offset outside UTC, and the milliseconds unpadded; it also hard-codes the host to
 * "localhost". Fixes to winston-syslog's sockets besides: a bound on what is held while the server is
 * unreachable, a capped and unref'd TCP reconnect that stops once the logger is closed, an 'error' listener
 * on the UDP socket (an unheard 'error' event would end the process), and lines sent after the UDP socket
 * was bound counted as sent (see chunkMessage).
 *
 *   <PRI>1 TIMESTAMP HOSTNAME mxproxy PROCID - - MSG        PRI = facility * 8 + severity
 */
import type net from 'node:net';
import { isIPv6 } from 'node:net';
import os from 'node:os';
import type winston from 'winston';
import { Syslog, type ProduceOptions } from 'winston-syslog';
import { SYSLOG_FACILITIES, type SyslogConfig, type SyslogFacility } from '../config/types.js';

export const SYSLOG_APP_NAME = 'mxproxy';

/** winston's levels as RFC 5424 severities (winston-syslog passes warn as "warning"). */
export const SEVERITY: Readonly<Record<string, number>> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  error: 3,
  warning: 4,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** Lines held while the server cannot be reached (TCP down, UDP socket not bound yet); later ones are dropped. */
const MAX_HELD = 1000;
/** Longest wait between two TCP reconnects. */
const MAX_RETRY_MS = 30_000;

/** A header field of RFC 5424: printable US-ASCII without spaces, at most `max` characters, `-` when empty. */
function headerField(s: string, max: number): string {
  return s.replace(/[^\x21-\x7e]/g, '_').slice(0, max) || '-';
}

/** winston-syslog's `customProducer`: the whole RFC 5424 message but its transport framing. */
class Rfc5424Producer {
  private readonly facility: number;
  private readonly prefix: string;

  constructor(opts: { appName: string; pid: number; facility: string }) {
    this.facility = SYSLOG_FACILITIES[opts.facility as SyslogFacility] ?? SYSLOG_FACILITIES.daemon;
    this.prefix = `${headerField(opts.appName, 48)} ${headerField(String(opts.pid), 128)} - -`;
  }

  produce(o: ProduceOptions): string {
    const pri = this.facility * 8 + (SEVERITY[o.severity] ?? SEVERITY.info!);
    return `<${pri}>1 ${o.date.toISOString()} ${headerField(o.host, 255)} ${this.prefix} ${o.message}`;
  }
}

class SyslogTransport extends Syslog {
  private closing = false;
  dropped = 0;

  override log(info: object, callback: () => void): void {
    if (!this.connected && this.queue.length >= MAX_HELD) {
      this.dropped++;
      callback();
      return;
    }
    super.log(info, callback);
  }

  /**
   * Lines held until the UDP socket is bound are sent later without a callback, and winston-syslog then never
   * counts them as sent: close() would wait its full 4 s for them. Counted here.
   */
  override chunkMessage(buffer: Buffer, callback?: (err?: Error | null) => void): void {
    super.chunkMessage(
      buffer,
      callback ??
        ((err) => {
          this.inFlight--;
          if (err) this.emit('error', err);
        }),
    );
  }

  override connectDgram(callback: (err: unknown) => void): void {
    const had = this.socket;
    super.connectDgram(callback);
    const socket = this.socket;
    if (socket && socket !== had) {
      socket.on('error', (err) => this.emit('error', err));
      socket.unref();
    }
  }

  override setupEvents(): void {
    super.setupEvents();
    const socket = this.socket as net.Socket;
    socket.removeAllListeners('close');
    socket.on('close', () => {
      this.connected = false;
      if (this.closing) return;
      const delay = Math.min(1000 * 2 ** this.retries, MAX_RETRY_MS);
      setTimeout(() => {
        this.retries++;
        if (!this.closing) socket.connect(this.port, this.host);
      }, delay).unref();
    });
  }

  override close(): void {
    this.closing = true;
    super.close();
  }
}

/** A winston transport sending each line (as `format` renders it) to the syslog server `c`. */
export function createSyslogTransport(c: SyslogConfig, format: winston.Logform.Format): Syslog {
  const family = isIPv6(c.host) ? 6 : 4;
  return new SyslogTransport({
    host: c.host,
    port: c.port,
    protocol: `${c.protocol}${family}` as const,
    type: '5424',
    localhost: os.hostname(),
    appName: SYSLOG_APP_NAME,
    pid: process.pid,
    facility: c.facility,
    // TCP: octet stream, one message per line (RFC 6587 non-transparent framing); UDP: one per datagram.
    eol: c.protocol === 'tcp' ? '\n' : undefined,
    customProducer: Rfc5424Producer,
    format,
  });
}

export function isSyslogTransport(t: unknown): t is Syslog {
  return t instanceof Syslog;
}
