/** The recorder holds a pair's records until TLS_OK, writes pairs that end before it within a budget, sums up
 * the rest in `d` records, and writes everything held at SHUTDOWN. Fake clock, a real file. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { ProxyEvent } from '../../machines/proxy.js';
import { readEventLogFile } from '../../src/eventlog/index.js';
import { EventRecorder } from '../../src/eventlog/recorder.js';
import { asLogRecord, type LogRecord } from '../../src/eventlog/records.js';
import { FakeClock } from '../helpers/fakeClock.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-recorder-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const accepted = (id: string): ProxyEvent => ({ type: 'ACCEPTED', id, peer: '127.0.0.2:1000', local: '127.0.0.1:5678' });
const tlsOk = (id: string): ProxyEvent => ({ type: 'TLS_OK', id, identity: 'c', identities: ['c'], protocol: 'TLSv1.3', alpn: null, resumed: false });
const tlsFailed = (id: string): ProxyEvent => ({ type: 'TLS_FAILED', id, code: 'ECONNRESET', message: 'reset' });

/** What the file says, one short string per record: `e ACCEPTED a`, `x a`, `d 1/3`. */
function show(r: LogRecord): string {
  if (r.k === 'e') return `e ${r.e.type} ${'id' in r.e ? String(r.e.id) : ''}`.trim();
  if (r.k === 'x') return `x ${r.id} ${r.to}`;
  if (r.k === 'd') return `d ${r.pairs}/${r.records}`;
  return `c ${r.id}`;
}

describe('event recorder: unauthenticated pairs', () => {
  test('held until TLS_OK, budget, summary, late events, SHUTDOWN', async () => {
    const clock = new FakeClock();
    const file = path.join(dir, 'a.mxlog');
    const rec = await EventRecorder.open({ path: file, level: 'lifecycle', clock, unauthenticatedBudget: { count: 1, per: 'min', burst: 1 }, droppedSummaryMs: 10_000 });
    // A pair's first state comes from the registry's observer, every later one as XState's inspection reports it.
    const step = (id: string, to: string, on: string) => {
      const snapshot = { value: to, status: to === 'closed' ? 'done' : 'active' };
      if (on === 'xstate.init') rec.observeChild(id, snapshot, on);
      else rec.inspect({ type: '@xstate.microstep', rootId: 'root', actorRef: { sessionId: `s${id}`, systemId: id } as { sessionId: string }, event: { type: on }, snapshot, _transitions: [{ target: [to] }] });
    };

    rec.event(accepted('a'));
    step('a', 'handshake', 'xstate.init');
    rec.event(accepted('b'));
    step('b', 'handshake', 'xstate.init');
    rec.event(tlsOk('a')); // a is written, in order; b is still held
    step('a', 'request', 'TLS_OK');
    assert.equal(rec.stats().held, 1);

    rec.event(tlsFailed('b'));
    step('b', 'closed', 'TLS_FAILED');
    rec.ended('b'); // within the budget: written whole
    rec.event(accepted('c'));
    step('c', 'handshake', 'xstate.init');
    rec.event(tlsFailed('c'));
    step('c', 'closed', 'TLS_FAILED');
    rec.ended('c'); // over the budget: dropped
    rec.event(tlsFailed('c')); // a late event of a dropped pair goes with it
    clock.advance(10_000); // the summary
    rec.event(accepted('d'));
    step('d', 'handshake', 'xstate.init');
    rec.event({ type: 'SHUTDOWN' }); // d is written before SHUTDOWN
    rec.event(accepted('e')); // after SHUTDOWN nothing is held
    assert.deepEqual([rec.stats().held, rec.stats().droppedPairs, rec.stats().droppedRecords], [0, 1, 5]);
    await rec.close();

    const read = await readEventLogFile(file);
    const list = read.records.map((r) => asLogRecord(r) as LogRecord);
    assert.deepEqual(list.map(show), [
      'e ACCEPTED a',
      'x a handshake',
      'e TLS_OK a',
      'x a request',
      'e ACCEPTED b',
      'x b handshake',
      'e TLS_FAILED b',
      'x b closed',
      'd 1/5',
      'e ACCEPTED d',
      'x d handshake',
      'e SHUTDOWN',
      'e ACCEPTED e',
    ]);
    assert.deepEqual(list.map((r) => r.s), list.map((_, i) => i + 1), 'numbered when written: no gaps');
    // Held records keep the time they happened.
    const bAccepted = list[4];
    assert.ok(bAccepted && bAccepted.t < (list[6]?.t ?? 0) + 1);
    const d = list[8];
    assert.ok(d?.k === 'd' && d.since <= d.t);
  });

  test('a d record is written at close for drops not yet summed up', async () => {
    const clock = new FakeClock();
    const file = path.join(dir, 'b.mxlog');
    const rec = await EventRecorder.open({ path: file, level: 'lifecycle', clock, unauthenticatedBudget: { count: 1, per: 'min', burst: 1 } });
    for (const id of ['1', '2', '3']) {
      rec.event(accepted(id));
      rec.event(tlsFailed(id));
      rec.ended(id);
    }
    await rec.close();
    const list = (await readEventLogFile(file)).records.map((r) => asLogRecord(r) as LogRecord);
    assert.deepEqual(list.map(show), ['e ACCEPTED 1', 'e TLS_FAILED 1', 'd 2/4']);
  });
});

describe('event recorder: version 2 records of a pair', () => {
  test('effects, outputs and noted inputs are held with the pair until TLS_OK, and dropped with it over the budget', async () => {
    const clock = new FakeClock();
    const file = path.join(dir, 'c.mxlog');
    const rec = await EventRecorder.open({ path: file, level: 'lifecycle', clock, unauthenticatedBudget: { count: 1, per: 'min', burst: 1 } });
    const noted = (id: string) => rec.noted(id, { type: 'CLIENT_ERROR', id, code: 'ECONNRESET', message: 'read ECONNRESET' }, 'before-tls');
    const output = (id: string) => ({ id, peer: '127.0.0.2:1000', reason: 'tls-failed:ECONNRESET' });

    rec.event(accepted('a'));
    rec.effect('a', 'startTimer', { timer: 'handshake' });
    noted('a');
    assert.equal(rec.stats().seq, 0, 'held: nothing written before TLS_OK');
    rec.event(tlsOk('a'));
    rec.effect('a', 'readRequest', undefined);

    rec.event(accepted('b')); // ends before TLS, within the budget: written whole
    rec.effect('b', 'startTimer', { timer: 'handshake' });
    rec.event(tlsFailed('b'));
    rec.output('b', output('b'));
    rec.ended('b');

    rec.event(accepted('c')); // over the budget: its effect, noted input and output go with it
    rec.effect('c', 'startTimer', { timer: 'handshake' });
    noted('c');
    rec.output('c', output('c'));
    rec.ended('c');
    await rec.close();

    const list = (await readEventLogFile(file)).records.map((r) => asLogRecord(r) as LogRecord);
    const brief = (r: LogRecord) =>
      r.k === 'f' ? `f ${r.id} ${r.name}${r.params === undefined ? '' : ` ${JSON.stringify(r.params)}`}` : r.k === 'o' ? `o ${r.id} ${String(r.o.reason)}` : r.k === 'n' ? `n ${r.id} ${r.e.type} ${r.why}` : show(r);
    assert.deepEqual(list.map(brief), [
      'e ACCEPTED a',
      'f a startTimer {"timer":"handshake"}',
      'n a CLIENT_ERROR before-tls',
      'e TLS_OK a',
      'f a readRequest',
      'e ACCEPTED b',
      'f b startTimer {"timer":"handshake"}',
      'e TLS_FAILED b',
      'o b tls-failed:ECONNRESET',
      'd 1/4',
    ]);
    assert.ok(!('params' in list[4]!), 'no params key for an action without any');
  });
});
