/**
 * Allow rules that name the certificate field they match, over real loopback mutual TLS: a client whose SAN DNS
 * matches a `dns:` rule is let through and the log says which name and rule matched; the same client is
 * declined by a `cn:` rule only its SAN would match; a certificate with two CNs is refused at TLS time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  closed,
  digestUntilEnd,
  echoHandler,
  request,
  startBackend,
  tlsConnect,
  waitFor,
  type Backend,
  type Harness,
  startHarness,
} from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

describe('allow rules per certificate field', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  let hmi: CertFiles;
  const servers = (b: Backend) => ({ viadns: [b.address], viacn: [b.address], viauri: [b.address] });
  const allow = ['dns:*.plant.local viadns', 'cn:*.plant.local viacn', 'uri:spiffe://plant/* viauri'];
  /** Line of allow[i] in the harness's config file: [proxy], listen, sslCertificate, the servers, then the rules. */
  const ruleLine = (i: number) => 3 + Object.keys(servers(echo)).length + i + 1;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, { servers: servers(echo), allow });
    hmi = await pki.issueClient('hmi-7', { dns: ['hmi-7.plant.local'] });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  it('TLS_OK carries every name with its field', async () => {
    const { socket, reply } = await request({ port: h.port, pki, cert: hmi, target: 'viadns' });
    assert.equal(reply.ok, true);
    socket.destroy();
    const ok = h.events.find((e) => e.type === 'TLS_OK' && e.identity === 'hmi-7');
    assert.deepEqual(ok && ok.type === 'TLS_OK' && ok.identities, ['cn:hmi-7', 'dns:hmi-7.plant.local']);
  });

  it('a dns: rule lets the client in by its SAN DNS name; authorized and link lines say which name and rule', async () => {
    const { socket, reply, rest } = await request({ port: h.port, pki, cert: hmi, target: 'viadns' });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end('ping');
    assert.equal((await got).bytes, 4);
    const where = `${pki.dir}/test.config:${ruleLine(0)}`;
    await waitFor(() => h.logs.some((l) => l.message === 'link' && l.identity === 'hmi-7'), 3000, 'the link line');
    const link = h.logs.find((l) => l.message === 'link' && l.identity === 'hmi-7');
    assert.equal(link?.matched, 'dns:hmi-7.plant.local');
    assert.equal(link?.rule, where);
    const authorized = h.logs.find((l) => l.message === 'authorized' && l.conn === link?.conn);
    assert.deepEqual([authorized?.matched, authorized?.rule, authorized?.allow], ['dns:hmi-7.plant.local', where, allow[0]]);
  });

  it('a cn: rule that only its SAN would match declines the same client', async () => {
    const { socket, reply } = await request({ port: h.port, pki, cert: hmi, target: 'viacn' });
    assert.equal(reply.ok === false && reply.code, 'ERR_NOT_ALLOWED');
    assert.match(reply.ok === false ? reply.message : '', /"hmi-7" may not reach "viacn"/);
    socket.resume();
    await closed(socket);
  });

  it('a CN that looks like a DNS name meets the cn: rule, not the dns: rule', async () => {
    const named = await pki.issueClient('panel.plant.local');
    const viaCn = await request({ port: h.port, pki, cert: named, target: 'viacn' });
    assert.equal(viaCn.reply.ok, true);
    viaCn.socket.destroy();
    await waitFor(() => h.logs.some((l) => l.message === 'link' && l.identity === 'panel.plant.local'), 3000, 'the link line');
    assert.equal(h.logs.find((l) => l.message === 'link' && l.identity === 'panel.plant.local')?.matched, 'cn:panel.plant.local');
    const viaDns = await request({ port: h.port, pki, cert: named, target: 'viadns' });
    assert.equal(viaDns.reply.ok === false && viaDns.reply.code, 'ERR_NOT_ALLOWED');
    viaDns.socket.destroy();
  });

  it('a uri: rule matches the SAN URI', async () => {
    const svc = await pki.issueClient('svc-3', { uris: ['spiffe://plant/svc-3'] });
    const { socket, reply } = await request({ port: h.port, pki, cert: svc, target: 'viauri' });
    assert.equal(reply.ok, true);
    socket.destroy();
    await waitFor(() => h.logs.some((l) => l.message === 'link' && l.identity === 'svc-3'), 3000, 'the link line');
    assert.equal(h.logs.find((l) => l.message === 'link' && l.identity === 'svc-3')?.matched, 'uri:spiffe://plant/svc-3');
  });

  it('refuses a certificate with two CNs as a TLS failure: no TLS_OK, reason tls-failed:ERR_MULTIPLE_CN', async () => {
    const twoCns = await pki.issueWithCommonNames('two-cns', ['hmi-8', 'admin'], ['hmi-8.plant.local']);
    const before = h.events.length;
    const s = await tlsConnect({ port: h.port, pki, cert: twoCns });
    s.on('error', () => {});
    s.write(Buffer.alloc(0));
    s.resume();
    await closed(s);
    await waitFor(() => h.logs.some((l) => l.reason === 'tls-failed:ERR_MULTIPLE_CN'), 3000, 'the refusal logged');
    const mine = h.events.slice(before);
    assert.ok(!mine.some((e) => e.type === 'TLS_OK'), 'no TLS_OK');
    const failed = mine.find((e) => e.type === 'TLS_FAILED');
    assert.equal(failed && failed.type === 'TLS_FAILED' && failed.code, 'ERR_MULTIPLE_CN');
    const line = h.logs.find((l) => l.reason === 'tls-failed:ERR_MULTIPLE_CN');
    assert.match(String(line?.message), /^tls refused: client certificate has 2 subject CNs \("hmi-8", "admin"\)/);
    await waitFor(() => h.proxy.stats().active === 0, 3000, 'the pair forgotten');
  });
});
