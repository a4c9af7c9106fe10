/**
 * The shipped configurations and the documentation that describes them: every file in config/examples/ and
 * config/mxproxy.config reads without problems, the examples say in a comment header what they are and how
 * their certificates are made (and those `mxproxy certs` commands really produce the files the examples
 * name), the scenarios wire up (identities allowed, ports of the reference), docs/config.md documents every
 * key as the code defines it, and README links to every document and example.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Authorizer } from '../../src/auth/rules.js';
import type { Identity } from '../../src/shared/identity.js';
import {
  CLIENT_KEYS,
  CLIENT_SECTION,
  hasSection,
  parseConfigText,
  PROXY_KEYS,
  PROXY_SECTION,
  readClientConfig,
  readProxyConfig,
  type ClientConfig,
  type KeyDoc,
  type ProxyConfig,
} from '../../src/config/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const EXAMPLES_DIR = path.join(ROOT, 'config/examples');
const DEFAULT_CONFIG = path.join(ROOT, 'config/mxproxy.config');
const SCENARIOS = ['single-host', 'remote-proxy', 'redundant', 'distributed', 'client-host'] as const;

const read = (file: string): string => fs.readFileSync(file, 'utf8');
const exampleFiles = (): string[] =>
  fs
    .readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.config'))
    .sort()
    .map((f) => path.join(EXAMPLES_DIR, f));
const example = (name: (typeof SCENARIOS)[number]): string => path.join(EXAMPLES_DIR, `${name}.config`);

interface Sides {
  proxy?: ProxyConfig;
  client?: ClientConfig;
}

/** What check-config does: each side present is read; throws the ConfigError listing every problem. */
function readSides(text: string, file: string, checkFiles = false): Sides {
  const parsed = parseConfigText(text, file);
  const sides: Sides = {};
  if (hasSection(parsed, PROXY_SECTION)) sides.proxy = readProxyConfig(text, file, { requireTls: true, checkFiles });
  if (hasSection(parsed, CLIENT_SECTION)) {
    sides.client = readClientConfig(text, file, { checkFiles, requireForwards: true });
  }
  return sides;
}

const readFile = (file: string, checkFiles = false): Sides => readSides(read(file), file, checkFiles);

/** The comment lines before the first line that is not a comment or blank. */
function header(text: string): string[] {
  const lines: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('#')) lines.push(line.replace(/^#\s?/, ''));
    else if (line.trim() !== '') break;
  }
  return lines;
}

/** `mxproxy certs issue …` commands written in a text, as argument lists. */
function certsCommands(text: string): string[][] {
  const out: string[][] = [];
  for (const m of text.matchAll(/mxproxy certs (issue (?:server|client)(?: --[a-z]+ [^\s()→]+)+)/g)) {
    out.push((m[1] ?? '').split(/\s+/));
  }
  return out;
}

/** The identity of a client certificate made by `mxproxy certs issue client --name <id>`: its file name. */
const identityOf = (c: ClientConfig): string => path.basename(c.tls?.certFile ?? '', '.pem');
/** The certificate's CN as the authorizer sees it. */
const cn = (value: string): Identity => ({ kind: 'cn', value });

function runCli(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, ...args], { cwd, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`mxproxy ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('config/examples: every file reads without problems', () => {
  it('has one file per scenario of the reference', () => {
    const names = exampleFiles().map((f) => path.basename(f, '.config'));
    for (const s of SCENARIOS) assert.ok(names.includes(s), `config/examples/${s}.config exists`);
  });

  for (const file of [...(fs.existsSync(EXAMPLES_DIR) ? exampleFiles() : []), DEFAULT_CONFIG]) {
    const rel = path.relative(ROOT, file);
    it(`${rel} parses: each of [proxy] and [client] present is valid`, () => {
      const sides = readFile(file);
      assert.ok(sides.proxy ?? sides.client, `${rel} has a [proxy] or a [client] section`);
      if (sides.proxy) {
        assert.ok(sides.proxy.servers.size > 0, 'the proxy has servers');
        assert.ok(sides.proxy.allow.length > 0, 'the proxy lets someone in');
        for (const rule of sides.proxy.allow) {
          for (const t of rule.targets) {
            const re = new RegExp(`^${t.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
            assert.ok([...sides.proxy.servers.keys()].some((s) => re.test(s)), `allow target ${t} matches a server`);
          }
        }
      }
      if (sides.client) assert.ok(sides.client.forwards.length > 0, 'the forwarder has forwards');
    });

    it(`${rel} starts with a comment header`, () => {
      const lines = header(read(file));
      assert.ok(lines.length >= 3, `${rel}: a comment header of at least three lines before the first section`);
    });
  }
});

describe('config/examples: headers say the scenario, the host and how the certificates are made', () => {
  for (const name of SCENARIOS) {
    it(`${name}.config: Scenario, Runs on, how to start it, and the certificate files it names`, () => {
      const file = example(name);
      const text = read(file);
      const head = header(text).join('\n');
      assert.match(head, /^Scenario: \S/m, 'says the scenario');
      assert.match(head, /^Runs on: .*\(10\.\d+\.\d+\.\d+\)/m, 'says which host runs it, with its address');
      const sides = readFile(file);
      if (sides.proxy) assert.match(head, /mxproxy start -c \S+\.config/, 'says how to start the proxy');
      if (sides.client) assert.match(head, /mxproxy forward -c \S+\.config/, 'says how to start the forwarder');
      assert.match(head, /docs\/certificates\.md/, 'points to the certificate guide');

      const commands = certsCommands(head);
      for (const tls of [sides.proxy?.tls, sides.client?.tls]) {
        if (!tls) continue;
        // Relative to the config file, in certs/ next to it.
        assert.equal(path.dirname(tls.certFile), path.join(EXAMPLES_DIR, 'certs'));
        assert.equal(path.basename(tls.caFile), 'ca.pem', 'the CA file of `mxproxy certs init`');
        const base = path.basename(tls.certFile, '.pem');
        assert.equal(path.basename(tls.keyFile), `${base}.key`, 'key next to the certificate, as mxproxy certs writes it');
        const kind = tls === sides.proxy?.tls ? 'server' : 'client';
        assert.ok(
          commands.some((c) => c[1] === kind && (c.join(' ').includes(`--name ${base}`) || c.join(' ').includes(`--out ${base}`))),
          `${name}: the header shows the \`mxproxy certs issue ${kind}\` command that makes ${base}.pem`,
        );
      }
    });
  }
});

describe('config/examples: the certs commands of the headers make the files the examples name', { concurrency: true }, () => {
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-examples-'));
    await runCli(['certs', 'init', '--dir', 'certs', '--name', 'examples test CA'], dir);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const name of SCENARIOS) {
    it(`${name}.config: after its commands every sslCertificate file exists; the proxy's certificate names its host`, async () => {
      const text = read(example(name));
      const head = header(text).join('\n');
      const commands = certsCommands(head);
      assert.ok(commands.length > 0, 'the header has mxproxy certs commands');
      // A host of its own: the project CA's files copied in, as from the machine that keeps the CA.
      const host = path.join(dir, name);
      fs.mkdirSync(path.join(host, 'certs'), { recursive: true });
      for (const f of ['ca.pem', 'ca.key']) fs.copyFileSync(path.join(dir, 'certs', f), path.join(host, 'certs', f));
      for (const c of commands) await runCli(['certs', ...c], host);
      const copy = path.join(host, `${name}.config`);
      fs.writeFileSync(copy, text);
      const sides = readFile(copy, true); // now with the certificate files checked
      if (sides.proxy?.tls) {
        const cert = new X509Certificate(read(sides.proxy.tls.certFile));
        const ip = /^Runs on: .*\((10\.\d+\.\d+\.\d+)\)/m.exec(head)?.[1] ?? '';
        assert.equal(cert.checkIP(ip), ip, `the proxy's certificate has an IP SAN for ${ip}, the address clients use`);
        for (const l of sides.proxy.listen) {
          if (l.host !== '0.0.0.0') assert.equal(cert.checkIP(l.host), l.host, `IP SAN for the listen address ${l.host}`);
        }
      }
      if (sides.client?.tls) {
        const cert = new X509Certificate(read(sides.client.tls.certFile));
        assert.match(cert.subject, new RegExp(`CN=${identityOf(sides.client)}$`, 'm'), 'the CN is the file name: the identity');
      }
    });
  }
});

describe('config/examples: the scenarios', () => {
  const REFERENCE_PORTS: [RegExp, number][] = [
    [/data/, 4897],
    [/event/, 4998],
    [/dist/, 4777],
  ];

  it('every proxy listens on the reference port 5678 and names servers by the reference ports', () => {
    for (const file of exampleFiles()) {
      const { proxy, client } = readFile(file);
      if (proxy) {
        assert.ok(proxy.listen.every((l) => l.port === 5678), `${path.basename(file)} listens on 5678`);
        for (const s of proxy.servers.values()) {
          const port = REFERENCE_PORTS.find(([re]) => re.test(s.name))?.[1];
          assert.ok(port, `${path.basename(file)}: server ${s.name} is one of data/event/dist`);
          assert.ok(s.addresses.every((a) => a.port === port), `${path.basename(file)}: ${s.name} on port ${port}`);
        }
      }
      if (client?.proxy) assert.equal(client.proxy.port, 5678, `${path.basename(file)}: mxProxy on 5678`);
    }
  });

  it('addresses are documentation-style: 10.x, loopback or the wildcard', () => {
    for (const file of exampleFiles()) {
      const text = read(file);
      for (const m of text.matchAll(/\b(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g)) {
        assert.ok(['10', '127', '0'].includes(m[1] ?? ''), `${path.basename(file)}: ${m[0]}`);
      }
    }
  });

  it('single-host: the servers are on loopback; the operator station of client-host.config may reach them', () => {
    const { proxy } = readFile(example('single-host'));
    assert.ok(proxy);
    for (const s of proxy.servers.values()) assert.ok(s.addresses.every((a) => a.host === '127.0.0.1'), `${s.name} on loopback`);
    const { client } = readFile(example('client-host'));
    assert.ok(client);
    const auth = new Authorizer(proxy);
    for (const f of client.forwards) {
      assert.equal(auth.decide([cn(identityOf(client))], f.target).ok, true, `${identityOf(client)} may reach ${f.target}`);
    }
    assert.equal(auth.decide([cn('guest')], 'data').ok, false, 'an identity without a rule is declined');
  });

  it('client-host: only [client] through the plant proxy; uncommenting [general] mxProxy = "none" switches it off', () => {
    const text = read(example('client-host'));
    const { proxy, client } = readSides(text, example('client-host'));
    assert.equal(proxy, undefined);
    assert.ok(client?.proxy, 'a proxy is named');
    assert.ok(client.forwards.every((f) => f.listen.host === '127.0.0.1'), 'forward ports listen on loopback');
    assert.match(text, /^#\s*\[general\]\s*$/m);
    assert.match(text, /^#\s*mxProxy = "none"\s*$/m);
    const off = text.replace(/^#\s*(\[general\]|mxProxy = "none")\s*$/gm, '$1');
    const c = readSides(off, example('client-host')).client;
    assert.ok(c);
    assert.equal(c.proxy, undefined, 'switched off');
    assert.ok(c.forwards.every((f) => f.direct.length > 0), 'every forward has a direct address to use');
  });

  it('remote-proxy: servers of two projects on other hosts, each project\'s clients reach only their own', () => {
    const { proxy } = readFile(example('remote-proxy'));
    assert.ok(proxy);
    const hosts = new Set([...proxy.servers.values()].flatMap((s) => s.addresses.map((a) => a.host)));
    assert.ok(hosts.size >= 2, 'servers on at least two hosts');
    assert.ok(![...hosts].some((h) => h.startsWith('127.')), 'none on the proxy host itself');
    const auth = new Authorizer(proxy);
    assert.equal(auth.decide([cn('projA-hmi-1')], 'projA-data').ok, true);
    assert.equal(auth.decide([cn('projA-hmi-1')], 'projA-event').ok, true);
    assert.equal(auth.decide([cn('projA-hmi-1')], 'projB-data').ok, false, 'project A may not reach project B');
    assert.equal(auth.decide([cn('projB-hmi-1')], 'projB-data').ok, true);
    assert.equal(auth.decide([cn('projB-hmi-1')], 'projA-event').ok, false, 'project B may not reach project A');
  });

  it('redundant: data and event are active/standby pairs, tried in order; each server also on its own', () => {
    const { proxy } = readFile(example('redundant'));
    assert.ok(proxy);
    for (const name of ['data', 'event']) {
      const s = proxy.servers.get(name);
      assert.ok(s, name);
      assert.equal(s.addresses.length, 2, `${name} has two addresses`);
      assert.notEqual(s.addresses[0]?.host, s.addresses[1]?.host, 'on two hosts');
    }
    const pair = proxy.servers.get('data')?.addresses.map((a) => a.host) ?? [];
    assert.deepEqual(proxy.servers.get('data-a')?.addresses.map((a) => a.host), [pair[0]]);
    assert.deepEqual(proxy.servers.get('data-b')?.addresses.map((a) => a.host), [pair[1]]);
    assert.ok(proxy.connectTimeout < 5000, 'a short connectTimeout: failover to the standby is quick');
  });

  it('distributed: system 1 and its counterpart on system 2 reach each other\'s distribution managers', () => {
    const text = read(example('distributed'));
    const sys1 = readSides(text, example('distributed'));
    assert.ok(sys1.proxy && sys1.client, 'both [proxy] and [client] in one file');
    assert.notEqual(sys1.proxy.tls?.certFile, sys1.client.tls?.certFile, 'a server and a client certificate');
    const dist1 = [...sys1.proxy.servers.values()].find((s) => /dist/.test(s.name));
    assert.deepEqual(dist1?.addresses, [{ host: '127.0.0.1', port: 4777 }], 'system 1 dist manager on loopback');

    // The counterpart file, written in the comments: lines "#   <entry>" after "counterpart file".
    const counterpart = text
      .slice(text.indexOf('counterpart file'))
      .split('\n')
      .filter((l) => /^#   \S/.test(l))
      .map((l) => l.slice(4))
      .join('\n');
    const sys2 = readSides(counterpart, path.join(EXAMPLES_DIR, 'sys2.config'));
    assert.ok(sys2.proxy && sys2.client, 'the counterpart has both sections too');

    const sys1Id = identityOf(sys1.client);
    const sys2Id = identityOf(sys2.client);
    for (const f of sys1.client.forwards) {
      assert.ok(sys2.proxy.servers.has(f.target), `system 2's proxy has ${f.target}`);
      assert.equal(new Authorizer(sys2.proxy).decide([cn(sys1Id)], f.target).ok, true, `${sys1Id} may reach ${f.target}`);
    }
    for (const f of sys2.client.forwards) {
      assert.ok(sys1.proxy.servers.has(f.target), `system 1's proxy has ${f.target}`);
      assert.equal(new Authorizer(sys1.proxy).decide([cn(sys2Id)], f.target).ok, true, `${sys2Id} may reach ${f.target}`);
    }
    // Each forwarder names the other system's proxy: the IP in the other file's "Runs on" / header.
    assert.match(text, new RegExp(`counterpart file on system 2 \\([^)]*${sys1.client.proxy?.host.replace(/\./g, '\\.')}\\)`));
    assert.match(header(text).join('\n'), new RegExp(`^Runs on: .*\\(${sys2.client.proxy?.host.replace(/\./g, '\\.')}\\)`, 'm'));
  });
});

// ---------------------------------------------------------------------------------------------------------

/** The text of `### \`key\`` up to the next heading, inside the part of the document under `## <part>`. */
function keyBlock(md: string, part: RegExp, key: string): string {
  const parts = md.split(/^(?=## )/m);
  const section = parts.find((p) => part.test(p.split('\n')[0] ?? ''));
  assert.ok(section, `docs/config.md has a section ${part}`);
  const blocks = section.split(/^(?=### )/m);
  const block = blocks.find((b) => (b.split('\n')[0] ?? '').trim() === `### \`${key}\``);
  assert.ok(block, `docs/config.md documents ${key} under ${part}`);
  return block;
}

/** In a Markdown table cell a `|` is written `\|`. */
const cell = (s: string): string => s.replace(/\|/g, '\\|');

function assertKeyDocumented(md: string, part: RegExp, doc: KeyDoc<string>): void {
  const block = keyBlock(md, part, doc.name);
  assert.ok(block.includes(`| Syntax | \`${cell(doc.syntax)}\` |`), `${doc.name}: the syntax line \`${doc.syntax}\``);
  const def = /^\| Default \| (.*) \|$/m.exec(block)?.[1];
  assert.ok(def !== undefined, `${doc.name}: a Default row`);
  if (doc.default !== undefined) assert.ok(def.includes(`\`${cell(doc.default)}\``), `${doc.name}: default ${doc.default}`);
  else assert.match(def, /^none/, `${doc.name}: no default`);
  const rep = /^\| Repeatable \| (.*) \|$/m.exec(block)?.[1] ?? '';
  assert.match(rep, doc.repeatable ? /^yes/ : /^no/, `${doc.name}: repeatable ${doc.repeatable}`);
  if (doc.min !== undefined) assert.ok(block.includes(`| Range | ${doc.min}..${doc.max} |`), `${doc.name}: range`);
  assert.ok(block.includes(`\`${doc.example}\``), `${doc.name}: the example ${doc.example}`);
  const prose = block.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('|') && !l.startsWith('#'));
  assert.ok(prose.join(' ').length > 40, `${doc.name}: a description`);
}

describe('docs/config.md documents every key as the code defines it', () => {
  const md = (): string => read(path.join(ROOT, 'docs/config.md'));

  for (const doc of PROXY_KEYS) {
    it(`[proxy] ${doc.name}: syntax, default, repeatable, example`, () => assertKeyDocumented(md(), /^## `\[proxy\]` entries/, doc));
  }
  for (const doc of CLIENT_KEYS) {
    it(`[client] ${doc.name}: syntax, default, repeatable, example`, () => assertKeyDocumented(md(), /^## `\[client\]` entries/, doc));
  }

  it('[general] mxProxy and the precedence of the two mxProxy entries', () => {
    const mx = CLIENT_KEYS.find((k) => k.name === 'mxProxy');
    assert.ok(mx);
    assertKeyDocumented(md(), /^## `\[general\]`/, mx);
    const general = md().split(/^(?=## )/m).find((p) => p.startsWith('## `[general]`')) ?? '';
    assert.match(general, /[Pp]recedence/);
    assert.ok(general.includes('mxProxy = "none"'));
  });

  it('[client]: forward port 0, and relative paths of the command-line form', () => {
    const block = keyBlock(md(), /^## `\[client\]` entries/, 'forward');
    assert.match(block, /[Pp]ort 0 \(`"127\.0\.0\.1:0 /, 'forward port 0, with an example');
    const client = md().split(/^(?=## )/m).find((p) => p.startsWith('## `[client]` entries')) ?? '';
    assert.match(client, /relative to the current directory/);
  });
});

// ---------------------------------------------------------------------------------------------------------

/** Relative link targets of a Markdown text (without #anchors), web links left out. */
function relativeLinks(md: string): string[] {
  return [...md.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1] ?? '')
    .filter((l) => !/^[a-z]+:/i.test(l) && !l.startsWith('#'))
    .map((l) => l.replace(/#.*$/, ''));
}

describe('README and docs link to what exists', () => {
  const readme = (): string => read(path.join(ROOT, 'README.md'));

  it('README links to every docs/*.md', () => {
    const links = relativeLinks(readme());
    for (const f of fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))) {
      assert.ok(links.includes(`docs/${f}`), `README links to docs/${f}`);
    }
  });

  it('README links to config/examples/ and to each example', () => {
    const links = relativeLinks(readme());
    assert.ok(links.some((l) => l.replace(/\/$/, '') === 'config/examples'), 'README links to config/examples/');
    for (const f of exampleFiles()) assert.ok(links.includes(`config/examples/${path.basename(f)}`), `README links to ${path.basename(f)}`);
  });

  it('every relative link in README and docs/*.md points to a file or folder that exists', () => {
    const docs = fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md'));
    for (const [from, text] of [
      ['README.md', readme()],
      ...docs.map((f) => [`docs/${f}`, read(path.join(ROOT, 'docs', f))]),
    ] as [string, string][]) {
      for (const l of relativeLinks(text)) {
        assert.ok(fs.existsSync(path.resolve(ROOT, path.dirname(from), l)), `${from} → ${l} exists`);
      }
    }
  });

  it('README keeps the two Quick start commands as they are', () => {
    assert.match(readme(), /^npm install && npm start\b/m);
    assert.match(readme(), /^npm test\b/m);
  });
});
