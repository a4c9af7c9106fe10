/**
 * The cluster primary's admin endpoint (src/inspect/cluster.ts) over a stand-in pool: what workers answer is
 * checked before it is summed (a worker faces the network; a bad answer counts as no answer), a worker that
 * does not answer is left out of the sums and named, and metrics of two registries add up as prom-client's
 * AggregatorRegistry adds them. Real HTTP on loopback; no worker processes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import type { AdminQuestion } from '../../src/cluster/messages.js';
import type { WorkerView } from '../../src/cluster/primary.js';
import { asMetrics, ClusterAdmin, type ClusterPool } from '../../src/inspect/cluster.js';
import { createLogger } from '../../src/log.js';
import { getJson, httpRequest, metricValue } from '../helpers/admin.js';
import { Writable } from 'node:stream';

const quiet = () => createLogger({ format: 'json', level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

const row = (id: string, over: Record<string, unknown> = {}) => ({
  id,
  peer: '127.0.0.1:40000',
  identity: 'hmi-1',
  target: 'echo',
  backend: '127.0.0.1:4897',
  state: 'forwarding',
  since: 1000,
  acceptedAt: 1000,
  up: 10,
  down: 20,
  endedAt: null,
  reason: null,
  ...over,
});

async function accepts(n: number): Promise<unknown> {
  const registry = new Registry();
  const c = new Counter({ name: 'mxproxy_accepts_total', help: 'TCP connections accepted', registers: [registry] });
  c.inc(n);
  return JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as unknown;
}

/** A pool of three workers: 1 answers well, 2 answers garbage, 3 does not answer. */
function pool(answers: Record<number, (q: AdminQuestion) => unknown>): ClusterPool {
  const view = (worker: number): WorkerView => ({ worker, pid: 100 + worker, listening: true, stats: undefined, statsAt: undefined, restarts: worker === 3 ? 1 : 0 });
  return {
    size: 3,
    stats: () => [1, 2, 3].map(view),
    ask: async (index, q) => {
      const answer = answers[index];
      return answer ? { ok: true, value: await answer(q) } : undefined;
    },
  };
}

describe('cluster admin endpoint', () => {
  it('sums what the workers answer, leaves out a bad answer and a missing one, and says so', async () => {
    const good = (q: AdminQuestion): unknown => {
      switch (q.ask) {
        case 'metrics':
          return accepts(3);
        case 'picture':
          return { t: 1, counts: { forwarding: 2 }, totals: { live: 2, untracked: 0, gone: 1 }, rows: [row('a'), row('b', { state: 'x\ny', identity: 'a\\x0ab' }), row('c', { endedAt: 2000, reason: 'client-closed' })] };
        case 'status':
          return { startedAt: 'now', uptimeSeconds: 1, config: { file: 'f', loadedAt: 'then' }, eventLog: null, listeners: ['127.0.0.1:5678'], accepted: 3, active: 2, untracked: 0, states: { forwarding: 2 } };
        case 'connection':
          return q.conn === 'a' ? { ...row('a'), local: '127.0.0.1:5678', message: null, history: [{ t: 1, from: null, to: 'handshake.tls', on: 'xstate.init' }], dropped: 0 } : null;
      }
    };
    const bad = (q: AdminQuestion): unknown => {
      switch (q.ask) {
        case 'metrics':
          // A label name that would start a new line of the exposition: the whole answer is refused.
          return [{ name: 'mxproxy_accepts_total', help: 'h', type: 'counter', aggregator: 'sum', values: [{ value: 1e6, labels: { 'x"} 1\nfake': 'v' } }] }];
        case 'picture':
          return { t: 1, counts: { forwarding: 'many' }, totals: {}, rows: [] };
        default:
          return 'nonsense';
      }
    };
    const admin = new ClusterAdmin({ admin: { listen: { host: '127.0.0.1', port: 0 }, token: undefined, source: { file: 'f', line: 1 } }, logger: quiet(), pool: pool({ 1: good, 2: bad }), configFile: 'f', eventLog: undefined });
    await admin.listen();
    const base = `http://${admin.address}`;
    try {
      const m = await httpRequest(`${base}/metrics`);
      assert.equal(m.status, 200);
      assert.equal(metricValue(m.body, 'mxproxy_accepts_total'), 3, 'only the good worker counted');
      assert.equal(metricValue(m.body, 'mxproxy_workers'), 3);
      assert.equal(metricValue(m.body, 'mxproxy_workers_answering'), 1);
      assert.equal(metricValue(m.body, 'mxproxy_worker_restarts_total'), 1);
      assert.doesNotMatch(m.body, /fake/);

      const table = await getJson<{ counts: Record<string, number>; totals: { live: number; missing: number }; rows: { id: string; worker: number; state: string; identity: string }[] }>(`${base}/api/connections`);
      assert.deepEqual(table.counts, { forwarding: 2 });
      assert.deepEqual(table.totals, { live: 2, untracked: 0, gone: 1, missing: 2 });
      assert.deepEqual(table.rows.map((r) => [r.id, r.worker]), [['1-a', 1], ['1-b', 1], ['1-c', 1]]);
      const b = table.rows[1]!;
      assert.equal(b.state, 'x\\x0ay', 'a raw newline from a worker is escaped');
      assert.equal(b.identity, 'a\\x0ab', "a worker's escapes are kept as they are");

      const s = await getJson<{ accepted: number; workersAnswered: number; workers: { worker: number; answered: boolean }[] }>(`${base}/status`);
      assert.equal(s.accepted, 3);
      assert.equal(s.workersAnswered, 1);
      assert.deepEqual(s.workers.map((w) => [w.worker, w.answered]), [[1, true], [2, false], [3, false]]);

      const d = await getJson<{ id: string; worker: number; history: unknown[] }>(`${base}/api/connections/1-a`);
      assert.deepEqual([d.id, d.worker, d.history.length], ['1-a', 1, 1]);
      assert.equal((await httpRequest(`${base}/api/connections/1-zz`)).status, 404);
      assert.equal((await httpRequest(`${base}/api/connections/2-a`)).status, 404);
      assert.equal((await httpRequest(`${base}/api/connections/a`)).status, 404, 'a cluster id names its worker');
    } finally {
      await admin.close();
    }
  });

  it('asMetrics takes what getMetricsAsJSON gives and refuses names, labels and aggregators it must not pass on', async () => {
    const ok = asMetrics(await accepts(2));
    assert.ok(ok);
    assert.equal(ok[0]!.name, 'mxproxy_accepts_total');
    const base = { name: 'm', help: 'h', type: 'counter', aggregator: 'sum', values: [{ value: 1, labels: {} }] };
    assert.ok(asMetrics([base]));
    assert.equal(asMetrics([{ ...base, name: 'm\n# x' }]), undefined);
    assert.equal(asMetrics([{ ...base, type: 'histogramm' }]), undefined);
    assert.equal(asMetrics([{ ...base, aggregator: 'constructor' }]), undefined);
    assert.equal(asMetrics([{ ...base, values: [{ value: 1, labels: { 'le"': '1' } }] }]), undefined);
    assert.equal(asMetrics([{ ...base, values: [{ value: 1, labels: { a: { b: 1 } } }] }]), undefined);
    assert.equal(asMetrics([{ ...base, values: [{ value: 1, metricName: 'm bucket' }] }]), undefined);
    assert.equal(asMetrics({}), undefined);
    assert.deepEqual(asMetrics([{ ...base, values: [{ value: null, labels: {} }] }])?.[0]?.values, [], 'a NaN (null over JSON) is no sample');
  });
});
