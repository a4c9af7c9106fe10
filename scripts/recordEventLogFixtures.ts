/**
 * Records the event logs shipped under test/fixtures/eventlog/ from real loopback runs (the stories of
 * test/helpers/scenarios.ts). Run after a change to the log format or the machines, then commit the files:
 *
 *   npm run build && node dist/scripts/recordEventLogFixtures.js
 *
 * test/unit/eventLogFixtures.test.ts replays them: a log recorded by an earlier build must still replay.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPki } from '../test/helpers/pki.js';
import * as s from '../test/helpers/scenarios.js';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/eventlog');

const FIXTURES: { file: string; level: string; stories: ((w: s.ScenarioWorld) => Promise<void>)[] }[] = [
  {
    file: 'declines.mxlog',
    level: 'lifecycle',
    stories: [s.clientCloses, s.notAllowed, s.unknownTarget, s.garbage, s.tlsRefused, s.handshakeTimeout],
  },
  {
    file: 'teardown-failover.mxlog',
    level: 'traffic',
    stories: [s.failover, s.serverCloses, s.clientResets, s.serverResets, s.unreachable],
  },
];

const pki = await createTestPki();
try {
  for (const f of FIXTURES) {
    const file = path.join(OUT, f.file);
    fs.rmSync(file, { force: true });
    const w = await s.startWorld(pki, file, f.level);
    for (const story of f.stories) await story(w);
    await w.stop();
    process.stdout.write(`${file}: ${fs.statSync(file).size} bytes, ${f.stories.length} connections\n`);
  }
} finally {
  pki.cleanup();
}
