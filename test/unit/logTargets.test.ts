/**
 * Where log lines go besides stdout: the log keys of [proxy] and [client], the command line over them, the
 * rotated file, and RFC 5424 to a real UDP socket.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  configRecord,
  describeClientConfig,
  describeConfig,
  PROXY_KEYS,
  PROXY_SECTION,
  readClientConfig,
  readProxyConfig,
  resolveLogTargets,
  type ConfigIssue,
} from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { closeLogger, createLogger } from '../../src/log.js';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-logtargets-'));
  fs.mkdirSync(path.join(dir, 'logs'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const proxy = (...extra: string[]) =>
  readProxyConfig(['[proxy]', 'server = "data 127.0.0.1:4897"', ...extra].join('\n') + '\n', path.join(dir, 'mx.config'));

function issues(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

const silent = new Writable({ write: (_c, _e, cb) => cb() });

describe('log keys', () => {
  it('[proxy]: a file relative to the config, rotation sizes, syslog with its facility', () => {
    const c = proxy('logFile = "logs/mxproxy.log"', 'logFileMaxBytes = 65536', 'logFiles = 3', 'syslog = "udp://127.0.0.1:5514"', 'syslogFacility = "local3"');
    assert.deepEqual(c.log.file, { path: path.join(dir, 'logs', 'mxproxy.log'), maxBytes: 65536, files: 3, source: { file: path.join(dir, 'mx.config'), line: 3 } });
    assert.equal(c.log.syslog?.protocol, 'udp');
    assert.equal(c.log.syslog?.host, '127.0.0.1');
    assert.equal(c.log.syslog?.port, 5514);
    assert.equal(c.log.syslog?.facility, 'local3');
  });

  it('defaults: no file, no syslog; 10 MiB, 5 files, daemon; shown by describeConfig, which reads back', () => {
    const c = proxy();
    assert.equal(c.log.file, undefined);
    assert.equal(c.log.syslog, undefined);
    const text = describeConfig(c);
    assert.match(text, /^# logFile: not set/m);
    assert.match(text, /^logFileMaxBytes = 10485760 {2}# default$/m);
    assert.match(text, /^logFiles = 5 {2}# default$/m);
    assert.match(text, /^syslogFacility = "daemon" {2}# default$/m);
    const set = proxy('logFile = "logs/a.log"', 'syslog = "tcp://[::1]"');
    const again = readProxyConfig(describeConfig(set), path.join(dir, 'again.config'));
    assert.deepEqual(again.log.file?.path, set.log.file?.path);
    assert.equal(again.log.syslog?.url, 'tcp://[::1]');
    assert.equal(again.log.syslog?.port, 514, 'the syslog port defaults to 514');
  });

  it('errors at file:line: a missing directory, a bad URL, a facility, a range', () => {
    const found = issues(() =>
      proxy('logFile = "nowhere/mxproxy.log"', 'syslog = "http://127.0.0.1:514"', 'syslogFacility = "kern"', 'logFiles = 1', 'logFileMaxBytes = "big"'),
    );
    const at = (line: number) => found.find((i) => i.line === line)?.message ?? '';
    assert.match(at(3), /the log file directory .*nowhere does not exist/);
    assert.match(at(4), /syslog must be "udp:\/\/<host>:<port>" or "tcp:\/\/<host>:<port>"/);
    assert.match(at(5), /syslogFacility must be one of "user", "daemon"/);
    assert.match(at(6), /logFiles must be between 2 and 1000/);
    assert.match(at(7), /number expected/);
  });

  it('[client]: the same keys for the forwarder, printed by describeClientConfig', () => {
    const c = readClientConfig(
      ['[client]', 'mxProxy = "none"', 'forward = "127.0.0.1:0 data 127.0.0.1:4897"', 'logFile = "logs/forward.log"', 'syslog = "udp://127.0.0.1"'].join('\n'),
      path.join(dir, 'client.config'),
    );
    assert.equal(c.log.file?.path, path.join(dir, 'logs', 'forward.log'));
    assert.equal(c.log.syslog?.port, 514);
    const text = describeClientConfig(c);
    assert.match(text, /^logFile = ".*forward\.log"$/m);
    assert.match(text, /^syslog = "udp:\/\/127\.0\.0\.1"$/m);
    assert.match(text, /^logFiles = 5 {2}# default$/m);
  });

  it('--log-file and --syslog replace the entries; sizes and facility still come from the section', () => {
    const section = proxy('logFile = "logs/a.log"', 'logFiles = 7', 'syslogFacility = "local1"').log;
    const t = resolveLogTargets(section, { logFile: path.join(dir, 'logs', 'b.log'), syslog: 'udp://127.0.0.1:1514' });
    assert.equal(t.file?.path, path.join(dir, 'logs', 'b.log'));
    assert.equal(t.file?.files, 7);
    assert.equal(t.syslog?.port, 1514);
    assert.equal(t.syslog?.facility, 'local1');
    const bad = issues(() => resolveLogTargets(section, { logFile: path.join(dir, 'none', 'b.log'), syslog: 'udp://' }));
    assert.ok(bad.every((i) => i.file === '<command line>'));
    assert.ok(bad.some((i) => /--log-file .*none\/b\.log/.test(i.entry) && /does not exist/.test(i.message)));
    assert.ok(bad.some((i) => i.entry === '--syslog udp://'));
  });

  it('configRecord: the effective configuration as one object, lists for repeatable keys, null when unset', () => {
    const c = proxy('listen = "127.0.0.1:5678"', 'logFile = "logs/a.log"');
    const r = configRecord(describeConfig(c), PROXY_SECTION, PROXY_KEYS);
    assert.deepEqual(r.listen, ['127.0.0.1:5678']);
    assert.deepEqual(r.server, ['data 127.0.0.1:4897']);
    assert.equal(r.handshakeTimeout, 5000);
    assert.equal(r.logFile, path.join(dir, 'logs', 'a.log'));
    assert.equal(r.syslog, null);
    assert.deepEqual(Object.keys(r), PROXY_KEYS.map((k) => k.name));
  });
});

describe('log file', () => {
  it('gets the stdout lines, rotates by size, keeps logFiles files, tail-able name', async () => {
    const file = path.join(dir, 'logs', 'rot.log');
    const targets = { file: { path: file, maxBytes: 65_536, files: 3, source: { file: 'x', line: 1 } }, syslog: undefined };
    const logger = createLogger({ format: 'text', level: 'info', stream: silent, targets });
    assert.equal(fs.statSync(file).mode & 0o777, 0o640, 'created before winston opens it, not world-readable');
    // Bursts spread over turns of the event loop, as a running proxy writes.
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 50; j++) logger.info(`line ${i * 50 + j} ${'x'.repeat(100)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    logger.info('the last line');
    await closeLogger(logger);
    const files = fs.readdirSync(path.join(dir, 'logs')).filter((f) => f.startsWith('rot')).sort();
    assert.deepEqual(files, ['rot.log', 'rot1.log', 'rot2.log']);
    for (const f of files) assert.ok(fs.statSync(path.join(dir, 'logs', f)).size <= 65_536, `${f} is at most logFileMaxBytes`);
    // oldest to newest, nothing lost at a rotation: the lines kept are the last ones, in order
    const kept = ['rot2.log', 'rot1.log', 'rot.log'].flatMap((f) => fs.readFileSync(path.join(dir, 'logs', f), 'utf8').split('\n').filter(Boolean));
    assert.match(kept.at(-1)!, / info  the last line$/);
    const numbers = kept.slice(0, -1).map((l) => Number(/ line (\d+) /.exec(l)?.[1]));
    assert.ok(numbers[0]! > 0, 'the oldest file was dropped');
    assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => numbers[0]! + i));
    assert.equal(numbers.at(-1), 1999);
  });

  it('a file that cannot be opened stops the start with its path', () => {
    const targets = { file: { path: path.join(dir, 'logs'), maxBytes: 65_536, files: 2, source: { file: 'x', line: 1 } }, syslog: undefined };
    assert.throws(() => createLogger({ targets, stream: silent }), /cannot open the log file .*logs: EISDIR/);
  });
});

describe('syslog (RFC 5424 over UDP)', () => {
  it('one datagram per line: <PRI>1 TIMESTAMP HOST mxproxy PID - - msg; severities from the levels; hostile text escaped', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const got: string[] = [];
    sock.on('message', (m) => got.push(m.toString('utf8')));
    const { port } = sock.address();
    const syslog = { url: `udp://127.0.0.1:${port}`, protocol: 'udp' as const, host: '127.0.0.1', port, facility: 'local3' as const, source: { file: 'x', line: 1 } };
    const logger = createLogger({ format: 'text', level: 'debug', stream: silent, targets: { file: undefined, syslog } });
    logger.error('e');
    logger.warn('decline ERR_UNKNOWN_TARGET', { target: 'evil\n\x1b[2Jline' });
    logger.info('i');
    logger.debug('d');
    await closeLogger(logger);
    const deadline = Date.now() + 2000;
    while (got.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    sock.close();
    assert.equal(got.length, 4);
    const header = new RegExp(`^<(\\d+)>1 (\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z) ${os.hostname().replace(/[^\x21-\x7e]/g, '_')} mxproxy ${process.pid} - - (.*)$`, 's');
    const parsed = got.map((g) => header.exec(g));
    assert.ok(parsed.every((m) => m !== null), got.join('\n'));
    // local3 = 19: 19 * 8 + err 3 / warning 4 / info 6 / debug 7
    assert.deepEqual(parsed.map((m) => Number(m![1])), [155, 156, 158, 159]);
    assert.ok(Math.abs(Date.parse(parsed[0]![2]!) - Date.now()) < 5000, 'the time is UTC, with its Z');
    assert.equal(parsed[1]![3], 'decline ERR_UNKNOWN_TARGET target=evil\\x0a\\x1b[2Jline');
    assert.doesNotMatch(got.join(''), /[\x00-\x1f\x7f]/);
  });
});
