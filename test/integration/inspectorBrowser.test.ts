/**
 * The inspector page in headless Chromium (puppeteer-core driving Debian's /usr/bin/chromium): the diagram is
 * drawn, the number on `forwarding` goes 0 → 3 → 0 while three real pairs open and close through the proxy, a
 * click on a connection shows its transitions, hostile text stays text, and the replay view steps through an
 * uploaded log. The same page for `mxproxy forward` (the forward machine, two local clients) and for a cluster
 * primary (stand-in workers: summed counts, a worker column). Screenshots go to test-artifacts/ (git-ignored).
 * Skipped only when Chromium is not installed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { readClientConfig } from '../../src/config/index.js';
import { startForwarder } from '../../src/forward/forwarder.js';
import { ClusterAdmin, type ClusterPool } from '../../src/inspect/cluster.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import { printable } from '../../src/shared/printable.js';
import { startAdminHarness, type AdminHarness } from '../helpers/admin.js';
import { closed, echoHandler, request, startBackend, startHarness, waitFor, type Backend, type ClientSocket } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const CHROMIUM = '/usr/bin/chromium';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const FIXTURE = path.join(ROOT, 'test/fixtures/eventlog/declines.mxlog');

const EVIL_TARGET = 'nosuch\n<img src=x onerror="window.__pwned=1">\x1b[2J\x00\u202eFORGED-TARGET';
const EVIL_CN = 'hmi<b>bold</b><script>window.__pwned=2</script>\x1b[2J\nFORGED-CN';

const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`;

describe('inspector page in headless Chromium', { skip }, () => {
  let pki: TestPki;
  let echo: Backend;
  let h: AdminHarness;
  let browser: Browser;
  let profile: string;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    h = await startAdminHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'] });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-chromium-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      timeout: 60_000,
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1100 });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
    await page.goto(`${h.base}/`, { waitUntil: 'domcontentloaded' });
  });
  after(async () => {
    await browser?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  const countOn = (state: string): Promise<string> =>
    page.$eval(`#diagram [data-state="${state}"] text`, (el) => el.textContent ?? '');
  const countBecomes = (state: string, want: string): Promise<unknown> =>
    page.waitForFunction(`document.querySelector('#diagram [data-state="${state}"] text')?.textContent === ${JSON.stringify(want)}`, {
      timeout: 10_000,
    });

  it('draws the diagram with a count on every state, live over SSE', async () => {
    await page.waitForSelector('#diagram svg [data-state="forwarding"] text', { timeout: 20_000 });
    await page.waitForFunction(`document.getElementById('feed-status')?.textContent === 'live'`, { timeout: 10_000 });
    const states = await page.$$eval('#diagram [data-state]', (els) => els.map((e) => e.getAttribute('data-state')));
    for (const s of ['handshake.tls', 'handshake.awaitingRequest', 'authorization', 'connecting', 'forwarding', 'teardown.closing', 'closed']) {
      assert.ok(states.includes(s), `a count on ${s}: ${states.join(', ')}`);
    }
    assert.equal(await countOn('forwarding'), '0');
  });

  it('forwarding goes 0 → 3 → 0 with three real pairs; a click shows a connection’s transitions', async () => {
    const pairs: ClientSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const { socket, reply } = await request({ port: h.port, pki, target: 'echo' });
      assert.equal(reply.ok, true);
      pairs.push(socket);
    }
    await countBecomes('forwarding', '3');
    const id = [...h.proxy.registry.ids()][1]!;
    await page.waitForSelector(`#connections tbody tr[data-id="${id}"]`, { timeout: 10_000 });
    await page.click(`#connections tbody tr[data-id="${id}"]`);
    await page.waitForFunction(`(document.getElementById('history-list')?.children.length ?? 0) >= 5`, { timeout: 10_000 });
    const history = await page.$$eval('#history-list li', (els) => els.map((e) => e.textContent ?? ''));
    assert.match(history.join('\n'), /handshake\.tls → handshake\.awaitingRequest on TLS_OK/);
    assert.match(history.at(-1) ?? '', /connecting → forwarding on BACKEND_CONNECTED/);
    assert.match((await page.$eval('#history-title', (e) => e.textContent)) ?? '', new RegExp(`Connection ${id}$`));
    const selected = await page.$$eval('#diagram g.node.selected title', (els) => els.map((e) => e.textContent));
    assert.deepEqual(selected, ['connection.forwarding'], 'its state is marked on the diagram');
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'inspector.png'), fullPage: true });

    for (const s of pairs) {
      s.resume();
      s.end();
      await closed(s);
    }
    await countBecomes('forwarding', '0');
    await page.waitForFunction(`/ended: client-closed/.test(document.getElementById('history-facts')?.textContent ?? '')`, { timeout: 10_000 });
  });

  it('a hostile target and CN are shown as text in the table, nothing of them runs', async () => {
    const a = await request({ port: h.port, pki, target: EVIL_TARGET });
    a.socket.resume();
    await closed(a.socket);
    const evil = await pki.issueClient(EVIL_CN);
    const b = await request({ port: h.port, pki, cert: evil, target: 'echo' });
    assert.equal(b.reply.ok === false && b.reply.code, 'ERR_NOT_ALLOWED');
    b.socket.resume();
    await closed(b.socket);
    await waitFor(() => h.proxy.stats().active === 0, 5000, 'both ended');
    await page.waitForFunction(`/FORGED-TARGET[^]*FORGED-CN|FORGED-CN[^]*FORGED-TARGET/.test(document.getElementById('connections')?.textContent ?? '')`, {
      timeout: 10_000,
    });
    const cells = await page.$$eval('#connections tbody td', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.ok(cells.includes(printable(EVIL_TARGET)), `the target as printable() writes it, among: ${cells.filter((c) => c.includes('FORGED')).join(' | ')}`);
    assert.ok(cells.includes(printable(EVIL_CN)), 'the CN as printable() writes it');
    assert.equal(await page.$$eval('#connections img, #connections b, #connections script', (els) => els.length), 0, 'no element from the text');
    assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined', 'nothing ran');
  });

  it('the replay view steps through an uploaded log on the diagram', async () => {
    await page.click('#tab-replay');
    const input = await page.$('#upload');
    assert.ok(input);
    await input.uploadFile(FIXTURE);
    await page.waitForFunction(`/^0 \\/ \\d+ events$/.test(document.getElementById('step-label')?.textContent ?? '')`, { timeout: 15_000 });
    assert.match((await page.$eval('#replay-info', (e) => e.textContent)) ?? '', /every recorded transition matched/);
    assert.equal(await countOn('handshake.tls'), '0');
    await page.click('#step-next'); // CONFIG_LOADED: the config in force comes first in a version-2 log
    assert.match((await page.$eval('#step-detail', (e) => e.textContent)) ?? '', /CONFIG_LOADED/);
    assert.equal(await countOn('handshake.tls'), '0');
    await page.click('#step-next'); // ACCEPTED: one pair, in handshake.tls
    await countBecomes('handshake.tls', '1');
    assert.match((await page.$eval('#step-detail', (e) => e.textContent)) ?? '', /ACCEPTED/);
    await page.click('#step-last');
    const label = (await page.$eval('#step-label', (e) => e.textContent)) ?? '';
    const [at, of] = label.split(' / ');
    assert.equal(at, of?.split(' ')[0], label);
    await page.click('#step-first');
    await countBecomes('handshake.tls', '0');
    await page.screenshot({ path: path.join(ARTIFACTS, 'inspector-replay.png'), fullPage: true });
    await page.click('#tab-live');
    assert.deepEqual(pageErrors, [], 'no error on the page');
  });
});

describe('inspector page with adminToken in headless Chromium', { skip }, () => {
  it('with the token as the Basic password, the page, its diagram and its live feed work', async () => {
    const pki = await createTestPki();
    const TOKEN = 'browser-token-0123456789';
    const h = await startAdminHarness(pki, { servers: {}, allow: [], token: TOKEN });
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-chromium-'));
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      timeout: 60_000,
    });
    try {
      // Without it every path answers 401 (inspector.test.ts); a browser then asks for user name and password.
      const page = await browser.newPage();
      // What a person does in the browser's login prompt: any user name, the token as the password.
      await page.authenticate({ username: 'operator', password: TOKEN });
      const ok = await page.goto(`${h.base}/`, { waitUntil: 'domcontentloaded' });
      assert.equal(ok?.status(), 200);
      await page.waitForSelector('#diagram svg [data-state="forwarding"] text', { timeout: 20_000 });
      await page.waitForFunction(`document.getElementById('feed-status')?.textContent === 'live'`, { timeout: 10_000 });
    } finally {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
      await h.stop();
      pki.cleanup();
    }
  });
});

/** A headless Chromium of its own for one describe; closed and its profile removed by `close`. */
async function launch(): Promise<{ browser: Browser; page: Page; errors: string[]; close(): Promise<void> }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 60_000,
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  return {
    browser,
    page,
    errors,
    close: async () => {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

const quietLogger = () => createLogger({ format: 'json', level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

describe("mxproxy forward's inspector page in headless Chromium", { skip }, () => {
  it('draws the forward machine with its counts; forwarding goes 0 → 2 → 0 with two local clients; the table has their local peers', async () => {
    const pki = await createTestPki();
    const echo = await startBackend(echoHandler);
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'] });
    const text = [
      '[client]',
      `sslCertificate = "${pki.client.cert} ${pki.client.key} ${pki.caFile}"`,
      `mxProxy = "127.0.0.1:${h.port}"`,
      'forward = "127.0.0.1:0 echo"',
      'adminListen = "127.0.0.1:9679"',
    ].join('\n');
    const parsed = readClientConfig(text, `${pki.dir}/client.config`, { requireForwards: true });
    const config = { ...parsed, admin: { ...parsed.admin!, listen: { host: '127.0.0.1', port: 0 } } };
    const fwd = await startForwarder({ config, tls: loadTlsMaterial(config.tls!), logger: quietLogger() });
    const b = await launch();
    const clients: net.Socket[] = [];
    try {
      const { page } = b;
      await page.goto(`http://${fwd.adminAddress}/`, { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#diagram svg [data-state="linking.connecting"] text', { timeout: 20_000 });
      await page.waitForFunction(`document.getElementById('feed-status')?.textContent === 'live'`, { timeout: 10_000 });
      const states = await page.$$eval('#diagram [data-state]', (els) => els.map((e) => e.getAttribute('data-state')));
      for (const s of ['linking.connecting', 'linking.requesting', 'forwarding', 'teardown.closing', 'teardown.aborting', 'closed']) {
        assert.ok(states.includes(s), `a count on ${s}: ${states.join(', ')}`);
      }
      assert.equal(await page.$eval('header h1', (e) => e.textContent), 'mxproxy forward inspector');
      const heads = await page.$$eval('#connections thead th', (els) => els.map((e) => e.textContent));
      assert.deepEqual(heads, ['id', 'local peer', 'target', 'upstream', 'state', 'up', 'down', 'age']);
      assert.match((await page.$eval('#diagram-caption', (e) => e.textContent)) ?? '', /^The forward machine: /);

      const port = fwd.addresses[0]!.address.port;
      for (let i = 0; i < 2; i++) {
        const s = net.connect({ host: '127.0.0.1', port });
        await new Promise((r) => s.once('connect', r));
        clients.push(s);
      }
      const want = (n: string) =>
        page.waitForFunction(`document.querySelector('#diagram [data-state="forwarding"] text')?.textContent === ${JSON.stringify(n)}`, { timeout: 10_000 });
      await want('2');
      const peers = clients.map((s) => `127.0.0.1:${s.localPort}`);
      await page.waitForFunction(`${JSON.stringify(peers)}.every((p) => (document.getElementById('connections')?.textContent ?? '').includes(p))`, { timeout: 10_000 });
      await page.click('#connections tbody tr');
      await page.waitForFunction(`/linking\\.requesting → forwarding on PROXY_REPLY_OK/.test(document.getElementById('history-list')?.textContent ?? '')`, { timeout: 10_000 });
      assert.match((await page.$eval('#history-facts', (e) => e.textContent)) ?? '', new RegExp(`upstream 127\\.0\\.0\\.1:${h.port}`));
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'inspector-forward.png'), fullPage: true });
      for (const s of clients) s.end();
      await want('0');
      assert.deepEqual(b.errors, [], 'no error on the page');
    } finally {
      for (const s of clients) s.destroy();
      await b.close();
      await fwd.stop();
      await h.stop();
      await echo.close();
      pki.cleanup();
    }
  });
});

describe("a cluster primary's inspector page in headless Chromium", { skip }, () => {
  it('shows the summed counts and the rows of every worker with a worker column (stand-in workers)', async () => {
    const row = (id: string, acceptedAt: number) => ({
      id,
      peer: `127.0.0.1:4000${id}`,
      identity: 'hmi-1',
      target: 'echo',
      backend: '127.0.0.1:4897',
      state: 'forwarding',
      since: acceptedAt,
      acceptedAt,
      up: 0,
      down: 0,
      endedAt: null,
      reason: null,
    });
    const picture = (worker: number) => ({ t: Date.now(), counts: { forwarding: worker }, totals: { live: worker, untracked: 0, gone: 0 }, rows: Array.from({ length: worker }, (_, i) => row(String(i + 1), Date.now() - 1000 * (worker + i))) });
    const workers: ClusterPool = {
      size: 2,
      stats: () => [1, 2].map((worker) => ({ worker, pid: 1, listening: true, stats: undefined, statsAt: undefined, restarts: 0 })),
      ask: async (index, q) => (q.ask === 'picture' ? { ok: true, value: picture(index) } : undefined),
    };
    const admin = new ClusterAdmin({ admin: { listen: { host: '127.0.0.1', port: 0 }, token: undefined, source: { file: 'f', line: 1 } }, logger: quietLogger(), pool: workers, configFile: 'f', eventLog: undefined });
    await admin.listen();
    const b = await launch();
    try {
      const { page } = b;
      await page.goto(`http://${admin.address}/`, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(`document.querySelector('#diagram [data-state="forwarding"] text')?.textContent === '3'`, { timeout: 20_000 });
      const heads = await page.$$eval('#connections thead th', (els) => els.map((e) => e.textContent));
      assert.deepEqual(heads, ['worker', 'id', 'peer', 'identity', 'target', 'state', 'up', 'down', 'age']);
      await page.waitForFunction(`document.querySelectorAll('#connections tbody tr').length === 3`, { timeout: 10_000 });
      const rows = await page.$$eval('#connections tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-id'), ...[...tr.children].slice(0, 2).map((td) => td.textContent)]));
      assert.deepEqual(rows, [['1-1', '1', '1'], ['2-1', '2', '1'], ['2-2', '2', '2']], 'newest first, each row with its worker');
      assert.match((await page.$eval('#totals', (e) => e.textContent)) ?? '', /Summed over 2 workers, refreshed from their snapshots every 250 ms/);
      assert.deepEqual(b.errors, [], 'no error on the page');
    } finally {
      await b.close();
      await admin.close();
    }
  });
});
