import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DEFAULTS,
  describeConfig,
  loadProxyConfig,
  parseConfigText,
  PROXY_KEYS,
  readProxyConfig,
  sectionEntries,
  type ConfigIssue,
  type ProxyConfig,
} from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

let dir: string;
let certs: { cert: string; key: string; ca: string };

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-config-'));
  fs.mkdirSync(path.join(dir, 'certs'));
  certs = {
    cert: path.join(dir, 'certs', 'proxy.pem'),
    key: path.join(dir, 'certs', 'proxy-key.pem'),
    ca: path.join(dir, 'certs', 'ca.pem'),
  };
  for (const p of Object.values(certs)) fs.writeFileSync(p, '-----BEGIN TEST-----\n');
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Config text from lines, so line numbers in assertions are easy to count. */
const lines = (...ls: string[]): string => ls.join('\n') + '\n';

/** Runs fn, expects a ConfigError, returns its issues. */
function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_CONFIG');
    return e.issues;
  }
  assert.fail('expected a ConfigError');
}

/** Expects exactly one issue, at `line`, whose message matches `re`. */
function oneIssue(text: string, line: number, re: RegExp, opts?: { requireTls?: boolean }): ConfigIssue {
  const issues = issuesOf(() => readProxyConfig(text, path.join(dir, 'test.config'), opts));
  assert.equal(issues.length, 1, `expected one issue, got:\n${issues.map((i) => i.message).join('\n')}`);
  const [i] = issues;
  assert.ok(i);
  assert.equal(i.line, line, `line of: ${i.message}`);
  assert.match(i.message, re);
  return i;
}

const read = (text: string, opts?: { requireTls?: boolean; checkFiles?: boolean }): ProxyConfig =>
  readProxyConfig(text, path.join(dir, 'test.config'), opts);

describe('parseConfigText', () => {
  test('sections, entries, line numbers, both comment kinds, repeats', () => {
    const p = parseConfigText(
      lines(
        '# whole-line hash comment',
        '// whole-line slash comment',
        '',
        '[general]',
        'pmonPort = 4999   # trailing hash',
        'proj = "a#b//c"   // trailing slashes, the # and // inside quotes stay',
        '[proxy]',
        'listen = "1.2.3.4:1"',
        'listen = "1.2.3.4:2"//no space before comment',
        '   timeout=5000#x',
        '[client]',
        'name = "c1"',
      ),
      'f.config',
    );
    assert.deepEqual(p.issues, []);
    assert.deepEqual(
      p.sections.map((s) => [s.name, s.line, s.entries.length]),
      [
        ['general', 4, 2],
        ['proxy', 7, 3],
        ['client', 11, 1],
      ],
    );
    const general = sectionEntries(p, 'general');
    assert.deepEqual(general[0]?.value, { kind: 'number', value: 4999, raw: '4999' });
    assert.equal(general[0]?.line, 5);
    assert.deepEqual(general[1]?.value, { kind: 'string', value: 'a#b//c' });
    const proxy = sectionEntries(p, 'proxy');
    assert.deepEqual(
      proxy.map((e) => [e.key, e.value.value, e.line]),
      [
        ['listen', '1.2.3.4:1', 8],
        ['listen', '1.2.3.4:2', 9],
        ['timeout', 5000, 10],
      ],
    );
    assert.equal(proxy[2]?.text, 'timeout=5000#x');
  });

  test('quoting and escapes', () => {
    const p = parseConfigText(
      lines('[s]', 'a = "say \\"hi\\""', 'b = "back\\\\slash"', 'c = "C:\\certs\\x.pem"', 'd = ""', 'e = "  spaced  "'),
      'f',
    );
    assert.deepEqual(p.issues, []);
    assert.deepEqual(
      sectionEntries(p, 's').map((e) => e.value.value),
      ['say "hi"', 'back\\slash', 'C:\\certs\\x.pem', '', '  spaced  '],
    );
  });

  test('repeated sections are kept apart and read together', () => {
    const p = parseConfigText(lines('[proxy]', 'a = 1', '[general]', 'b = 2', '[proxy]', 'a = 3'), 'f');
    assert.equal(p.sections.length, 3);
    assert.deepEqual(
      sectionEntries(p, 'proxy').map((e) => e.value.value),
      [1, 3],
    );
  });

  test('CRLF line endings and a BOM', () => {
    const p = parseConfigText('\uFEFF[proxy]\r\nlisten = "1.2.3.4:5"\r\n', 'f');
    assert.deepEqual(p.issues, []);
    assert.equal(sectionEntries(p, 'proxy')[0]?.line, 2);
  });

  test('syntax errors, all collected with their lines', () => {
    const p = parseConfigText(
      lines(
        'early = 1',
        '[proxy]',
        'a = "unterminated',
        'b = bare',
        'c = "x" "y"',
        'no equals here',
        'd =',
        '[bad header',
        'e = 1',
        '[ok]',
        'f = 1.5',
      ),
      'f.config',
    );
    assert.deepEqual(
      p.issues.map((i) => [i.line, i.file]),
      [1, 3, 4, 5, 6, 7, 8].map((l) => [l, 'f.config']),
    );
    const msg = (line: number): string => p.issues.find((i) => i.line === line)?.message ?? '';
    assert.match(msg(1), /entry outside any section/);
    assert.match(msg(3), /unterminated string/);
    assert.match(msg(4), /double quotes/);
    assert.match(msg(5), /unexpected text after the value/);
    assert.match(msg(6), /key = value/);
    assert.match(msg(7), /missing value/);
    assert.match(msg(8), /bad section header/);
    assert.equal(p.issues[1]?.entry, 'a = "unterminated');
    // Decimal numbers parse (other managers' sections use them); f = 1.5 is fine.
    assert.deepEqual(sectionEntries(p, 'ok')[0]?.value.value, 1.5);
  });
});

describe('readProxyConfig: values', () => {
  test('an empty [proxy] section gives the defaults', () => {
    const c = read(lines('[proxy]'));
    assert.deepEqual(c.listen, DEFAULTS.listen);
    assert.equal(c.tls, undefined);
    assert.equal(c.servers.size, 0);
    assert.deepEqual(c.allow, []);
    assert.equal(c.handshakeTimeout, DEFAULTS.handshakeTimeout);
    assert.equal(c.connectTimeout, DEFAULTS.connectTimeout);
    assert.equal(c.teardownTimeout, DEFAULTS.teardownTimeout);
    assert.equal(c.maxRequestBytes, DEFAULTS.maxRequestBytes);
    assert.deepEqual([c.halfCloseTimeout, c.idleTimeout, c.tcpKeepAlive], [60_000, 0, 60_000]);
    assert.equal(c.file, path.join(dir, 'test.config'));
  });

  test('other sections are ignored', () => {
    const c = read(lines('[general]', 'whatever = "x"', 'pmonPort = 4999', '[proxy]', '[ui]', 'foo = 1'));
    assert.deepEqual(c.listen, DEFAULTS.listen);
  });

  test('IPv4, IPv6 and host name listen addresses, repeated', () => {
    const c = read(
      lines(
        '[proxy]',
        'listen = "0.0.0.0:5678"',
        'listen = "[::]:5678"',
        'listen = "[::1]:6000"',
        'listen = "localhost:7000"',
        'listen = "proxy-1.example.org:7001"',
      ),
    );
    assert.deepEqual(c.listen, [
      { host: '0.0.0.0', port: 5678 },
      { host: '::', port: 5678 },
      { host: '::1', port: 6000 },
      { host: 'localhost', port: 7000 },
      { host: 'proxy-1.example.org', port: 7001 },
    ]);
  });

  test('numbers, servers with redundant addresses, allow rules', () => {
    const c = read(
      lines(
        '[proxy]',
        'handshakeTimeout = 100',
        'connectTimeout = 600000',
        'teardownTimeout = 1',
        'maxRequestBytes = 16',
        'allow = "hmi-* scada1 hist-?"', // before the server it names: fine
        'server = "scada1 10.0.0.1:4897 [fd00::1]:4897 scada1b.local:4897"',
        'server = "hist-1 10.0.0.9:5000"',
      ),
    );
    assert.equal(c.handshakeTimeout, 100);
    assert.equal(c.connectTimeout, 600000);
    assert.equal(c.teardownTimeout, 1);
    assert.equal(c.maxRequestBytes, 16);
    assert.deepEqual(c.servers.get('scada1')?.addresses, [
      { host: '10.0.0.1', port: 4897 },
      { host: 'fd00::1', port: 4897 },
      { host: 'scada1b.local', port: 4897 },
    ]);
    assert.equal(c.servers.get('scada1')?.source.line, 7);
    assert.deepEqual(c.allow, [
      {
        identity: 'hmi-*',
        field: 'any',
        glob: 'hmi-*',
        targets: ['scada1', 'hist-?'],
        source: { file: path.join(dir, 'test.config'), line: 6 },
      },
    ]);
  });

  test('the timeouts of linked pairs: 0 turns each off; keepalive in whole seconds', () => {
    const c = read(lines('[proxy]', 'halfCloseTimeout = 300', 'idleTimeout = 86400000', 'tcpKeepAlive = 1000'));
    assert.deepEqual([c.halfCloseTimeout, c.idleTimeout, c.tcpKeepAlive], [300, 86_400_000, 1000]);
    const off = read(lines('[proxy]', 'halfCloseTimeout = 0', 'idleTimeout = 0', 'tcpKeepAlive = 0'));
    assert.deepEqual([off.halfCloseTimeout, off.idleTimeout, off.tcpKeepAlive], [0, 0, 0]);
    oneIssue(lines('[proxy]', 'tcpKeepAlive = 1500'), 2, /tcpKeepAlive counts whole seconds: write 0 \(off\) or a multiple of 1000/);
    oneIssue(lines('[proxy]', 'tcpKeepAlive = 500'), 2, /whole seconds/);
    oneIssue(lines('[proxy]', 'tcpKeepAlive = 32768000'), 2, /tcpKeepAlive must be between 0 and 32767000/);
    oneIssue(lines('[proxy]', 'idleTimeout = -1'), 2, /idleTimeout must be between 0 and 86400000/);
    oneIssue(lines('[proxy]', 'halfCloseTimeout = 1.5'), 2, /halfCloseTimeout must be a whole number/);
  });

  test('relative certificate paths resolve against the config file directory', () => {
    const c = read(lines('[proxy]', 'sslCertificate = "certs/proxy.pem  certs/proxy-key.pem\tcerts/ca.pem"'));
    assert.deepEqual(c.tls, { certFile: certs.cert, keyFile: certs.key, caFile: certs.ca });
  });

  test('absolute certificate paths are kept', () => {
    const c = read(lines('[proxy]', `sslCertificate = "${certs.cert} ${certs.key} ${certs.ca}"`));
    assert.deepEqual(c.tls, { certFile: certs.cert, keyFile: certs.key, caFile: certs.ca });
  });

  test('checkFiles: false skips the existence check', () => {
    const c = read(lines('[proxy]', 'sslCertificate = "no/a.pem no/b.pem no/c.pem"'), { checkFiles: false });
    assert.equal(c.tls?.keyFile, path.join(dir, 'no', 'b.pem'));
  });

  test('requireTls accepts a present sslCertificate', () => {
    const c = read(lines('[proxy]', 'sslCertificate = "certs/proxy.pem certs/proxy-key.pem certs/ca.pem"'), {
      requireTls: true,
    });
    assert.ok(c.tls);
  });
});

describe('readProxyConfig: errors', () => {
  test('unknown key, with and without a suggestion', () => {
    const i = oneIssue(lines('[proxy]', '', 'handshakeTimout = 5000'), 3, /unknown key "handshakeTimout".*did you mean handshakeTimeout\?/);
    assert.equal(i.entry, 'handshakeTimout = 5000');
    oneIssue(lines('[proxy]', 'Listen = "1.2.3.4:5"'), 2, /did you mean listen\?/);
    const j = oneIssue(lines('[proxy]', 'colour = "red"'), 2, /unknown key "colour"/);
    assert.doesNotMatch(j.message, /did you mean/);
  });

  test('bad numbers', () => {
    oneIssue(lines('[proxy]', 'connectTimeout = 0'), 2, /connectTimeout must be between 1 and 600000/);
    oneIssue(lines('[proxy]', 'teardownTimeout = 600001'), 2, /between 1 and 600000/);
    oneIssue(lines('[proxy]', 'maxRequestBytes = 15'), 2, /maxRequestBytes must be between 16 and 1048576/);
    oneIssue(lines('[proxy]', 'handshakeTimeout = 2.5'), 2, /whole number/);
    oneIssue(lines('[proxy]', 'handshakeTimeout = -1'), 2, /between/);
    oneIssue(lines('[proxy]', 'handshakeTimeout = 5s'), 2, /double quotes/);
  });

  test('no raw zod output in messages', () => {
    const issues = issuesOf(() =>
      read(lines('[proxy]', 'connectTimeout = 0', 'listen = "1.2.3.4:99999"', 'maxRequestBytes = 1.5')),
    );
    for (const i of issues) assert.doesNotMatch(i.message, /[{}[\]]|expected number|too_small|invalid_type/);
  });

  test('string for number and number for string', () => {
    oneIssue(lines('[proxy]', 'handshakeTimeout = "5000"'), 2, /number expected/);
    oneIssue(lines('[proxy]', 'listen = 5678'), 2, /quoted string expected/);
  });

  test('once-only keys', () => {
    oneIssue(lines('[proxy]', 'connectTimeout = 1', '# x', 'connectTimeout = 2'), 4, /only once \(first given at line 2\)/);
  });

  test('bad host:port', () => {
    const cases: [string, RegExp][] = [
      ['1.2.3.4', /port missing/],
      ['1.2.3.4:', /port "" is not a number/],
      ['1.2.3.4:http', /not a number/],
      ['1.2.3.4:0', /between 1 and 65535/],
      ['1.2.3.4:65536', /between 1 and 65535/],
      [':5678', /host missing/],
      ['::1:5678', /IPv6 address must be in brackets/],
      ['[::g]:5678', /not an IPv6 address/],
      ['[::1]5678', /expected "\[<IPv6>\]:<port>"/],
      ['1.2.3.400:5678', /not a valid IPv4 address/],
      ['bad_host!:5678', /not a valid host name/],
    ];
    for (const [addr, re] of cases) {
      const i = oneIssue(lines('[proxy]', `listen = "${addr}"`), 2, re);
      assert.ok(i.message.includes(addr), i.message);
    }
    oneIssue(lines('[proxy]', 'server = "a 10.0.0.1:1 10.0.0.2"'), 2, /server "a": bad address "10.0.0.2": port missing/);
  });

  test('duplicate listen addresses (also in other spellings)', () => {
    oneIssue(lines('[proxy]', 'listen = "0.0.0.0:1"', 'listen = "0.0.0.0:1"'), 3, /duplicate listen address 0.0.0.0:1 \(already given at line 2\)/);
    oneIssue(lines('[proxy]', 'listen = "[::1]:1"', 'listen = "[0:0::1]:1"'), 3, /duplicate listen/);
    oneIssue(lines('[proxy]', 'listen = "Host.local:1"', 'listen = "host.local:1"'), 3, /duplicate listen/);
  });

  test('sslCertificate: wrong count, missing files (each reported), given twice', () => {
    oneIssue(lines('[proxy]', 'sslCertificate = "a.pem b.pem"'), 2, /expected three paths.*got 2/);
    const issues = issuesOf(() =>
      read(lines('[proxy]', 'sslCertificate = "certs/proxy.pem certs/nokey.pem certs/noca.pem"')),
    );
    assert.deepEqual(
      issues.map((i) => [i.line, i.message]),
      [
        [2, `private key file not found: ${path.join(dir, 'certs', 'nokey.pem')}`],
        [2, `CA certificate file not found: ${path.join(dir, 'certs', 'noca.pem')}`],
      ],
    );
    oneIssue(lines('[proxy]', 'sslCertificate = "certs certs/proxy-key.pem certs/ca.pem"'), 2, /certificate file .*certs is not a regular file/);
    oneIssue(
      lines(
        '[proxy]',
        'sslCertificate = "certs/proxy.pem certs/proxy-key.pem certs/ca.pem"',
        'sslCertificate = "certs/proxy.pem certs/proxy-key.pem certs/ca.pem"',
      ),
      3,
      /only once/,
    );
  });

  test('requireTls reports a missing sslCertificate', () => {
    const i = oneIssue(lines('# x', '[proxy]', 'listen = "1.2.3.4:5"'), 2, /sslCertificate is missing/, { requireTls: true });
    assert.equal(i.entry, '[proxy]');
  });

  test('server errors', () => {
    oneIssue(lines('[proxy]', 'server = "a 1.1.1.1:1"', 'server = "b 1.1.1.1:2"', 'server = "a 1.1.1.1:3"'), 4, /duplicate server "a" \(first defined at line 2\)/);
    oneIssue(lines('[proxy]', 'server = "a"'), 2, /server "a" has no address/);
    oneIssue(lines('[proxy]', 'server = ""'), 2, /empty value/);
    oneIssue(lines('[proxy]', 'server = "a/b 1.1.1.1:1"'), 2, /bad server name "a\/b"/);
    oneIssue(lines('[proxy]', 'server = "a 1.1.1.1:1 1.1.1.1:1"'), 2, /listed twice/);
  });

  test('allow errors', () => {
    oneIssue(
      lines('[proxy]', 'server = "scada1 1.1.1.1:1"', 'allow = "* scada1 scada2"'),
      3,
      /unknown server "scada2"; did you mean scada1\?/,
    );
    oneIssue(lines('[proxy]', 'allow = "* nothing"'), 2, /unknown server "nothing"; no server entry defines it/);
    oneIssue(lines('[proxy]', 'allow = "hmi-*"'), 2, /names no target/);
    oneIssue(lines('[proxy]', 'allow = "* a,b"'), 2, /bad target "a,b"/);
    // Globs are not checked against servers.
    assert.equal(read(lines('[proxy]', 'allow = "* plc-* x?"')).allow.length, 1);
    // A server with a bad address does not also make the allow naming it fail.
    oneIssue(lines('[proxy]', 'server = "s 1.1.1.1:0"', 'allow = "* s"'), 2, /between 1 and 65535/);
  });

  test('entry outside any section', () => {
    oneIssue(lines('listen = "1.2.3.4:5"', '[proxy]'), 1, /entry outside any section/);
  });

  test('unterminated string', () => {
    oneIssue(lines('[proxy]', 'listen = "1.2.3.4:5'), 2, /unterminated string/);
  });

  test('missing [proxy] section', () => {
    const i = oneIssue(lines('[general]', 'a = 1'), 0, /^no \[proxy\] section$/);
    assert.equal(i.entry, '');
    oneIssue(lines('[Proxy]'), 1, /case-sensitive: write \[proxy\], not \[Proxy\]/);
    oneIssue('', 0, /no \[proxy\] section/);
  });

  test('all issues are collected into one error, sorted by line', () => {
    const file = path.join(dir, 'many.config');
    const issues = issuesOf(() =>
      readProxyConfig(
        lines(
          '[proxy]',
          'listen = "1.2.3.4"', // 2
          'allow = "* ghost"', // 3 (found after the loop, sorted into place)
          'connectTimeout = "10"', // 4
          'frobnicate = 1', // 5
          'handshakeTimeout = 0', // 6
          'x = "oops', // 7 (syntax)
        ),
        file,
      ),
    );
    assert.deepEqual(
      issues.map((i) => i.line),
      [2, 3, 4, 5, 6, 7],
    );
    assert.ok(issues.every((i) => i.file === file));
    let err: unknown;
    try {
      readProxyConfig(lines('[proxy]', 'frobnicate = 1', 'connectTimeout = 0'), 'rel/x.config');
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    assert.equal(
      err.message,
      [
        'rel/x.config:2: unknown key "frobnicate" in [proxy] (in: frobnicate = 1)',
        'rel/x.config:3: connectTimeout must be between 1 and 600000 (in: connectTimeout = 0)',
      ].join('\n'),
    );
  });
});

describe('loadProxyConfig', () => {
  test('reads a file; relative certificate paths resolve against its directory', () => {
    const file = path.join(dir, 'mxproxy.config');
    fs.writeFileSync(
      file,
      lines('[proxy]', 'sslCertificate = "certs/proxy.pem certs/proxy-key.pem certs/ca.pem"', 'server = "s 1.1.1.1:1"', 'allow = "* s"'),
    );
    const cwd = process.cwd();
    try {
      process.chdir(os.tmpdir());
      const c = loadProxyConfig(file, { requireTls: true });
      assert.equal(c.tls?.caFile, certs.ca);
      assert.equal(c.file, file);
    } finally {
      process.chdir(cwd);
    }
  });

  test('a missing file is one issue at line 0', () => {
    const file = path.join(dir, 'nope.config');
    const issues = issuesOf(() => loadProxyConfig(file));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.line, 0);
    assert.equal(issues[0]?.file, file);
    assert.match(issues[0]?.message ?? '', /^cannot read config file: ENOENT/);
  });

  test('a directory is not a config file', () => {
    assert.match(issuesOf(() => loadProxyConfig(dir))[0]?.message ?? '', /cannot read config file: EISDIR/);
  });
});

describe('describeConfig', () => {
  test('shows every key with its effective value, defaults marked', () => {
    const c = read(
      lines(
        '[proxy]',
        'listen = "[::1]:6000"',
        'sslCertificate = "certs/proxy.pem certs/proxy-key.pem certs/ca.pem"',
        'server = "scada1 10.0.0.1:4897 [fd00::1]:4897"',
        'allow = "hmi-* scada1"',
        'connectTimeout = 250',
      ),
    );
    const text = describeConfig(c);
    const ls = text.split('\n');
    assert.ok(ls.includes('[proxy]'));
    assert.ok(ls.includes('listen = "[::1]:6000"'));
    assert.ok(ls.includes(`sslCertificate = "${certs.cert} ${certs.key} ${certs.ca}"`));
    assert.ok(ls.includes('server = "scada1 10.0.0.1:4897 [fd00::1]:4897"'));
    assert.ok(ls.includes('allow = "hmi-* scada1"'));
    assert.ok(ls.includes('connectTimeout = 250'));
    assert.ok(ls.includes('handshakeTimeout = 5000  # default'));
    assert.ok(ls.includes('teardownTimeout = 1000  # default'));
    assert.ok(ls.includes('maxRequestBytes = 4096  # default'));
    for (const k of PROXY_KEYS) assert.ok(text.includes(k.name), `${k.name} missing from:\n${text}`);

    // The output reads back as the same configuration.
    const again = read(text);
    assert.deepEqual(again.listen, c.listen);
    assert.deepEqual(again.tls, c.tls);
    assert.deepEqual([...again.servers.values()].map((s) => s.addresses), [...c.servers.values()].map((s) => s.addresses));
    assert.deepEqual(again.allow.map((r) => [r.identity, r.targets]), c.allow.map((r) => [r.identity, r.targets]));
    assert.equal(again.connectTimeout, 250);
  });

  test('defaults and unset keys', () => {
    const text = describeConfig(read(lines('[proxy]')));
    assert.match(text, /^listen = "0\.0\.0\.0:5678" {2}# default$/m);
    assert.match(text, /^# sslCertificate: not set/m);
    assert.match(text, /^# server: none defined$/m);
    assert.match(text, /^# allow: none/m);
  });

  test('secret keys are printed as ***', () => {
    const c = read(lines('[proxy]', 'server = "topsecret 1.1.1.1:1"'));
    const doc = PROXY_KEYS.find((k) => k.name === 'server');
    assert.ok(doc);
    doc.secret = true; // the table is readonly at the array level only; restore below
    try {
      const text = describeConfig(c);
      assert.match(text, /^server = "\*\*\*"$/m);
      assert.doesNotMatch(text, /topsecret/);
    } finally {
      delete doc.secret;
    }
  });
});

describe('PROXY_KEYS', () => {
  test('documents every key with syntax, description and an example that parses', () => {
    for (const k of PROXY_KEYS) {
      assert.ok(k.syntax.startsWith(`${k.name} = `), k.name);
      assert.ok(k.description.length > 20, k.name);
      const ex = parseConfigText(`[proxy]\n${k.example}\n`, 'ex');
      assert.deepEqual(ex.issues, [], k.name);
      assert.equal(ex.sections[0]?.entries[0]?.key, k.name);
      assert.equal(ex.sections[0]?.entries[0]?.value.kind, k.type);
    }
  });
});

describe('adminListen and adminToken', () => {
  const TOKEN = 'a'.repeat(16);

  test('unset: no admin endpoint', () => {
    assert.equal(read(lines('[proxy]')).admin, undefined);
  });

  test('a loopback address needs no token', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '[::1]', '[0:0::1]', '[::ffff:127.0.0.1]', 'localhost', 'LOCALHOST.']) {
      const c = read(lines('[proxy]', `adminListen = "${host}:9678"`));
      assert.equal(c.admin?.listen.port, 9678, host);
      assert.equal(c.admin?.token, undefined);
      assert.deepEqual(c.admin?.source, { file: path.join(dir, 'test.config'), line: 2 });
    }
  });

  test('a non-loopback address without a token is refused at its line', () => {
    for (const host of ['0.0.0.0', '10.0.0.5', '[::]', '[fd00::5]', 'admin.plant.local', '[::ffff:10.0.0.1]']) {
      const i = oneIssue(lines('[proxy]', 'connectTimeout = 100', `adminListen = "${host}:9678"`), 3, /is not a loopback address: set adminToken/);
      assert.equal(i.entry, `adminListen = "${host}:9678"`);
    }
  });

  test('a non-loopback address with a token', () => {
    const c = read(lines('[proxy]', 'adminListen = "0.0.0.0:9678"', `adminToken = "${TOKEN}"`));
    assert.equal(c.admin?.token, TOKEN);
    assert.equal(c.admin?.listen.host, '0.0.0.0');
  });

  test('token errors: too short, spaces, without adminListen', () => {
    oneIssue(lines('[proxy]', 'adminListen = "127.0.0.1:9678"', 'adminToken = "short"'), 3, /16 to 1024 visible ASCII/);
    oneIssue(lines('[proxy]', 'adminListen = "127.0.0.1:9678"', `adminToken = "${TOKEN} x"`), 3, /without spaces/);
    oneIssue(lines('[proxy]', `adminToken = "${TOKEN}"`), 2, /adminToken is given without adminListen/);
    oneIssue(lines('[proxy]', 'adminListen = "127.0.0.1"'), 2, /port missing/);
  });

  test('describeConfig prints the token as ***', () => {
    const text = describeConfig(read(lines('[proxy]', 'adminListen = "0.0.0.0:9678"', `adminToken = "${TOKEN}"`)));
    assert.match(text, /^adminListen = "0\.0\.0\.0:9678"$/m);
    assert.match(text, /^adminToken = "\*\*\*"$/m);
    assert.ok(!text.includes(TOKEN));
  });
});
