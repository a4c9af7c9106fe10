/**
 * The inspector page in headless Chromium (puppeteer-core driving Debian's /usr/bin/chromium): the diagram is
 * drawn, the number on `forwarding` goes 0 → 3 → 0 while three real pairs open and close through the proxy, a
 * click on a connection shows its transitions, hostile text stays text, and the replay view steps through an
 * uploaded log. A screenshot goes to test-artifacts/ (git-ignored). Skipped only when Chromium is not installed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { printable } from '../../src/shared/printable.js';
import { startAdminHarness, type AdminHarness } from '../helpers/admin.js';
import { closed, echoHandler, request, startBackend, waitFor, type Backend, type ClientSocket } from '../helpers/harness.js';
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
