/** The part of winston-syslog (plain JavaScript, no types of its own) that src/log/syslog.ts uses. */
declare module 'winston-syslog' {
  import type dgram from 'node:dgram';
  import type net from 'node:net';
  import TransportStream from 'winston-transport';

  export interface ProduceOptions {
    /** winston's level, `warn` already turned into `warning`. */
    severity: string;
    host: string;
    appName: string;
    date: Date;
    message: string;
  }

  export interface SyslogTransportOptions extends TransportStream.TransportStreamOptions {
    host?: string;
    port?: number;
    protocol?: 'udp4' | 'udp6' | 'tcp4' | 'tcp6';
    /** The HOSTNAME field. */
    localhost?: string;
    appName?: string;
    pid?: number;
    facility?: string;
    type?: 'BSD' | '5424';
    /** Appended to each message (TCP framing). */
    eol?: string;
    customProducer?: new (opts: { type: string; appName: string; pid: number; facility: string }) => {
      produce(o: ProduceOptions): string;
    };
  }

  export class Syslog extends TransportStream {
    constructor(options?: SyslogTransportOptions);
    socket: net.Socket | dgram.Socket | null;
    queue: string[];
    connected: boolean;
    retries: number;
    inFlight: number;
    host: string;
    port: number;
    override log(info: object, callback: () => void): void;
    override close(): void;
    connectDgram(callback: (err: unknown) => void): void;
    chunkMessage(buffer: Buffer, callback?: (err?: Error | null) => void): void;
    setupEvents(): void;
  }
}
