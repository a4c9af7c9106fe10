/**
 * Records the event logs shipped under test/fixtures/eventlog/ from real loopback runs (the stories of
 * test/helpers/scenarios.ts, and the forwarder's of test/helpers/forwardScenarios.ts). Run after a change to
 * the log format or the machines, then commit the files; name files to record only those (the others stay as
 * an earlier build wrote them):
 *
 *   npm run build && node dist/scripts/recordEventLogFixtures.js [forward-proxy.mxlog ...]
 *
 * test/unit/eventLogFixtures.test.ts replays them: a log recorded by an earlier build must still replay; and
 * test/unit/replayOracle.test.ts replays them through deliberately broken machines, which must be caught. Logs
 * of an earlier log version are kept under v1/ (not re-recorded): the reader must go on reading them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordForwarderLog } from '../test/helpers/forwardScenarios.js';
import { createTestPki } from '../test/helpers/pki.js';
import * as s from '../test/helpers/scenarios.js';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/eventlog');

const FIXTURES: { file: string; level: string; stories: ((w: s.ScenarioWorld) => Promise<void>)[] }[] = [
  {
    file: 'declines.mxlog',
    level: 'lifecycle',
    stories: [s.clientCloses, s.notAllowed, s.unknownTarget, s.garbage, s.tlsRefused, s.handshakeTimeout, s.resetBeforeTls],
  },
  {
    file: 'teardown-failover.mxlog',
    level: 'traffic',
    stories: [s.failover, s.serverCloses, s.clientResets, s.serverResets, s.unreachable],
  },
];

const only = process.argv.slice(2);
const wanted = (file: string) => only.length === 0 || only.includes(file);

const pki = await createTestPki();
try {
  for (const f of FIXTURES.filter((x) => wanted(x.file))) {
    const file = path.join(OUT, f.file);
    fs.rmSync(file, { force: true });
    const w = await s.startWorld(pki, file, f.level);
    for (const story of f.stories) await story(w);
    await w.stop();
    process.stdout.write(`${file}: ${fs.statSync(file).size} bytes, ${f.stories.length} connections\n`);
  }
  // A forwarder's logs: through the proxy, and with the proxy switched off.
  for (const [name, mode] of [['forward-proxy.mxlog', 'proxy'], ['forward-direct.mxlog', 'direct']] as const) {
    if (!wanted(name)) continue;
    const file = path.join(OUT, name);
    fs.rmSync(file, { force: true });
    await recordForwarderLog(pki, file, mode);
    process.stdout.write(`${file}: ${fs.statSync(file).size} bytes\n`);
  }
} finally {
  pki.cleanup();
}
