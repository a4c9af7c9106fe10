/** The client side of a config file: [client] and [general] mxProxy, as the forwarder reads them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CLIENT_KEYS,
  describeClientConfig,
  readClientConfig,
  type ClientConfig,
  type ReadClientConfigOptions,
} from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const FILE = '/etc/mxproxy/client.config';
const read = (text: string, opts: ReadClientConfigOptions = {}): ClientConfig =>
  readClientConfig(text, FILE, { checkFiles: false, ...opts });

function problems(text: string, opts: ReadClientConfigOptions = {}): string[] {
  try {
    read(text, opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

const CERTS = 'sslCertificate = "certs/hmi.pem certs/hmi.key certs/ca.pem"';

describe('[client] section', () => {
  it('reads mxProxy, forwards with direct addresses, certificates relative to the file, defaults', () => {
    const c = read(['[client]', 'mxProxy = "gw.plant.local:5678"', 'forward = "127.0.0.1:14897 data 10.0.0.5:4897"', 'forward = "[::1]:15432 historian"', CERTS].join('\n'));
    assert.deepEqual(c.proxy, { host: 'gw.plant.local', port: 5678 });
    assert.deepEqual(
      c.forwards.map((f) => [f.listen, f.target, f.direct, f.source.line]),
      [
        [{ host: '127.0.0.1', port: 14897 }, 'data', [{ host: '10.0.0.5', port: 4897 }], 3],
        [{ host: '::1', port: 15432 }, 'historian', [], 4],
      ],
    );
    assert.deepEqual(c.tls, { certFile: '/etc/mxproxy/certs/hmi.pem', keyFile: '/etc/mxproxy/certs/hmi.key', caFile: '/etc/mxproxy/certs/ca.pem' });
    assert.equal(c.connectTimeout, 10_000);
    assert.deepEqual(c.proxySource, { file: FILE, line: 2 });
  });

  it('mxProxy = "none" in [client] switches the proxy off; no certificate needed', () => {
    const c = read('[client]\nmxProxy = "none"\nforward = "127.0.0.1:14897 data 10.0.0.5:4897"');
    assert.equal(c.proxy, undefined);
    assert.equal(c.tls, undefined);
  });

  it('[general] mxProxy = "none" wins over a [client] proxy (the reference\'s off switch)', () => {
    const c = read(['[general]', 'mxProxy = "none"', '[client]', 'mxProxy = "10.0.0.1:5678"', 'forward = "127.0.0.1:1 data 10.0.0.5:4897"', CERTS].join('\n'));
    assert.equal(c.proxy, undefined);
    assert.deepEqual(c.proxySource, { file: FILE, line: 2 });
  });

  it('[general] mxProxy names the proxy when [client] does not; [client] wins otherwise', () => {
    const g = read(['[general]', 'mxProxy = "10.0.0.1:5678"', '[client]', 'forward = "127.0.0.1:1 data"', CERTS].join('\n'));
    assert.deepEqual(g.proxy, { host: '10.0.0.1', port: 5678 });
    const both = read(['[general]', 'mxProxy = "10.0.0.1:5678"', '[client]', 'mxProxy = "10.0.0.2:5678"', 'forward = "127.0.0.1:1 data"', CERTS].join('\n'));
    assert.deepEqual(both.proxy, { host: '10.0.0.2', port: 5678 });
  });

  it('other [general] keys belong to other programs and are ignored', () => {
    const c = read(['[general]', 'pvss_path = "/opt/WinCC_OA"', 'event = "host1:4998"', '[client]', 'mxProxy = "none"', 'forward = "127.0.0.1:1 data 10.0.0.5:1"'].join('\n'));
    assert.equal(c.forwards.length, 1);
  });

  it('with the proxy off, a forward without direct addresses takes them from a [proxy] server entry of the file', () => {
    const c = read(['[proxy]', 'server = "data 127.0.0.1:4897 127.0.0.2:4897"', '[client]', 'mxProxy = "none"', 'forward = "127.0.0.1:14897 data"'].join('\n'));
    assert.deepEqual(c.forwards[0]?.direct, [
      { host: '127.0.0.1', port: 4897 },
      { host: '127.0.0.2', port: 4897 },
    ]);
  });

  it('with the proxy off and no address for a target: an error with file:line and the fix', () => {
    const p = problems('[client]\nmxProxy = "none"\nforward = "127.0.0.1:14897 data"');
    assert.equal(p.length, 1);
    assert.match(p[0]!, /^\/etc\/mxproxy\/client\.config:3: mxProxy is "none" and forward "data" has no direct address: write forward = "127\.0\.0\.1:14897 data <host>:<port>"/);
  });

  it('port 0 in a forward takes any free port, and may be repeated', () => {
    const c = read('[client]\nmxProxy = "none"\nforward = "127.0.0.1:0 a 10.0.0.5:1"\nforward = "127.0.0.1:0 b 10.0.0.5:2"');
    assert.deepEqual(c.forwards.map((f) => f.listen.port), [0, 0]);
  });

  it('reports every problem at once, each with file:line and the entry', () => {
    const p = problems(
      [
        '[client]',
        'mxProxy = "gw:99999"', // 2
        'forward = "127.0.0.1:14897"', // 3
        'forward = "127.0.0.1:14897 data"', // 4
        'forward = "127.0.0.1:14897 event"', // 5 duplicate listen
        'forward = "localhost:1 bad/name"', // 6
        'forward = "127.0.0.1:2 data 10.0.0.5"', // 7 bad direct
        'conectTimeout = 5', // 8
        'connectTimeout = "5"', // 9
        'sslCertificate = "only-two files"', // 10
      ].join('\n'),
    );
    const at = (line: number) => p.filter((m) => m.startsWith(`${FILE}:${line}: `));
    assert.match(at(2)[0] ?? '', /mxProxy: bad address "gw:99999": port must be between 1 and 65535, or "none"/);
    assert.match(at(3)[0] ?? '', /expected "<listen host>:<port> <target>/);
    assert.match(at(5)[0] ?? '', /duplicate forward listen address 127\.0\.0\.1:14897 \(already given at line 4\)/);
    assert.match(at(6)[0] ?? '', /bad target name "bad\/name"/);
    assert.match(at(7)[0] ?? '', /direct address: bad address "10\.0\.0\.5": port missing/);
    assert.match(at(8)[0] ?? '', /unknown key "conectTimeout" in \[client\]; did you mean connectTimeout\?/);
    assert.match(at(9)[0] ?? '', /number expected/);
    assert.match(at(10)[0] ?? '', /expected three paths/);
    assert.equal(p.filter((m) => /mxProxy is missing/.test(m)).length, 0, 'a bad mxProxy is not also reported missing');
  });

  it('mxProxy missing, sslCertificate missing, no forward: said at the [client] header', () => {
    assert.match(problems('# x\n[client]\nforward = "127.0.0.1:1 data"').join('\n'), /client\.config:2: mxProxy is missing: name the proxy/);
    assert.match(problems('[client]\nmxProxy = "10.0.0.1:5678"\nforward = "127.0.0.1:1 data"').join('\n'), /:1: sslCertificate is missing/);
    assert.match(problems(`[client]\nmxProxy = "10.0.0.1:5678"\n${CERTS}`, { requireForwards: true }).join('\n'), /no forward entries/);
    assert.doesNotThrow(() => read(`[client]\nmxProxy = "10.0.0.1:5678"\n${CERTS}`));
  });

  it('a file without [client] is an error, with the case hint', () => {
    assert.match(problems('[proxy]\nserver = "a 1.2.3.4:5"').join('\n'), /no \[client\] section/);
    assert.match(problems('[Client]\nmxProxy = "none"').join('\n'), /write \[client\], not \[Client\]/);
  });

  it('certificate files are checked when asked', () => {
    const p = problems(`[client]\nmxProxy = "10.0.0.1:5678"\n${CERTS}`, { checkFiles: true });
    assert.equal(p.length, 3);
    assert.match(p[0]!, /certificate file not found: \/etc\/mxproxy\/certs\/hmi\.pem/);
  });

  it('describeClientConfig reads back as the same configuration', () => {
    const text = ['[client]', 'mxProxy = "[::1]:5678"', 'forward = "127.0.0.1:14897 data 10.0.0.5:4897 10.0.0.6:4897"', CERTS, 'connectTimeout = 2500'].join('\n');
    const c = read(text);
    const again = readClientConfig(describeClientConfig(c), FILE, { checkFiles: false });
    assert.deepEqual({ ...again, forwards: again.forwards.map((f) => ({ ...f, source: undefined })), proxySource: undefined }, {
      ...c,
      forwards: c.forwards.map((f) => ({ ...f, source: undefined })),
      proxySource: undefined,
    });
    assert.match(describeClientConfig(read('[client]\nmxProxy = "none"')), /mxProxy = "none"  # proxy switched off/);
  });

  it('eventLog: relative to the file, [proxy]\'s defaults; level and numbers checked; the directory must exist', () => {
    const base = '[client]\nmxProxy = "none"\nforward = "127.0.0.1:1 data 10.0.0.5:1"\n';
    assert.equal(read(base).eventLog, undefined);
    assert.deepEqual(read(`${base}eventLog = "logs/forward.mxlog"`).eventLog, {
      path: '/etc/mxproxy/logs/forward.mxlog',
      level: 'lifecycle',
      maxBytes: 64 * 1024 * 1024,
      files: 5,
    });
    const set = read(`${base}eventLog = "/var/log/f.mxlog"\neventLogLevel = "traffic"\neventLogMaxBytes = 1048576\neventLogFiles = 3`);
    assert.deepEqual(set.eventLog, { path: '/var/log/f.mxlog', level: 'traffic', maxBytes: 1048576, files: 3 });
    const again = readClientConfig(describeClientConfig(set), FILE, { checkFiles: false });
    assert.deepEqual(again.eventLog, set.eventLog, 'describeClientConfig prints it back');
    assert.match(problems(`${base}eventLogLevel = "all"`)[0]!, /eventLogLevel must be one of "lifecycle", "traffic", "payload"/);
    assert.match(problems(`${base}eventLogFiles = 0`)[0]!, /eventLogFiles must be between 1 and 1000/);
    assert.match(problems(`${base}eventLog = ""`)[0]!, /eventLog needs a file name/);
    assert.match(problems(`${base}eventLog = "/nonexistent-dir-mxproxy/f.mxlog"`, { checkFiles: true })[0]!, /eventLog directory \/nonexistent-dir-mxproxy does not exist/);
  });

  it('every key is documented with syntax, description and an example that parses', () => {
    for (const k of CLIENT_KEYS) {
      assert.ok(k.syntax.startsWith(k.name) && k.description.length > 40 && k.example.startsWith(`${k.name} =`), k.name);
      const others = k.name === 'mxProxy' ? `${CERTS}\n` : k.name === 'adminToken' ? 'mxProxy = "none"\nadminListen = "10.0.9.5:9679"\n' : 'mxProxy = "none"\n';
      assert.doesNotThrow(() => read(`[client]\n${others}${k.example}`), k.name);
    }
  });
});

describe('[client] adminListen and adminToken', () => {
  const BASE = '[client]\nmxProxy = "none"\nforward = "127.0.0.1:1 data 10.0.0.5:1"\n';
  const TOKEN = 'b'.repeat(16);

  it('unset: no admin endpoint; on loopback no token is needed', () => {
    assert.equal(read(BASE).admin, undefined);
    const c = read(`${BASE}adminListen = "127.0.0.1:9679"`);
    assert.deepEqual(c.admin, { listen: { host: '127.0.0.1', port: 9679 }, token: undefined, source: { file: FILE, line: 4 } });
  });

  it("a non-loopback address without a token is refused at its line, as [proxy]'s", () => {
    const p = problems(`${BASE}adminListen = "0.0.0.0:9679"`);
    assert.deepEqual(p, [`${FILE}:4: adminListen 0.0.0.0:9679 is not a loopback address: set adminToken too (anyone who reaches it would see every connection), or listen on 127.0.0.1 (in: adminListen = "0.0.0.0:9679")`]);
    assert.equal(read(`${BASE}adminListen = "0.0.0.0:9679"\nadminToken = "${TOKEN}"`).admin?.token, TOKEN);
  });

  it('token errors: too short, without adminListen', () => {
    assert.match(problems(`${BASE}adminListen = "127.0.0.1:9679"\nadminToken = "short"`)[0]!, /:5: adminToken must be 16 to 1024 visible ASCII/);
    assert.match(problems(`${BASE}adminToken = "${TOKEN}"`)[0]!, /:4: adminToken is given without adminListen/);
  });

  it('describeClientConfig prints the address and the token as ***', () => {
    const text = describeClientConfig(read(`${BASE}adminListen = "0.0.0.0:9679"\nadminToken = "${TOKEN}"`));
    assert.match(text, /^adminListen = "0\.0\.0\.0:9679"$/m);
    assert.match(text, /^adminToken = "\*\*\*"$/m);
    assert.ok(!text.includes(TOKEN));
    assert.match(describeClientConfig(read(BASE)), /^# adminListen: not set \(no admin endpoint\)$/m);
  });
});
