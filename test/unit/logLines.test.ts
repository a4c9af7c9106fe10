/** Log lines a client cannot forge (src/log.ts): one record is one line, field values escaped or cut. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { connMeta, createLogger, type LogFormat } from '../../src/log.js';

async function logged(format: LogFormat, write: (l: ReturnType<typeof createLogger>) => void): Promise<string> {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const logger = createLogger({ format, level: 'debug', stream });
  write(logger);
  await new Promise((r) => setImmediate(r));
  return out;
}

const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const hostile = { id: '7', peer: '127.0.0.1:40000', identity: 'hmi\x1b[2J\x00\nx', target: `t\u202e${'y'.repeat(400)}` };

describe('log lines', () => {
  it('text: one line per record; message, fields and keys escaped; long identity/target cut with their length', async () => {
    const out = await logged('text', (l) => {
      l.warn('first\nsecond\u2028line', connMeta(hostile, { error: 'a "quoted" = value\r\n' }));
      l.info('next');
    });
    assert.doesNotMatch(out, RAW);
    const lines = out.split('\n').filter((x) => x !== '');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, / warn  first\\x0asecond\\u\{2028\}line conn=7 /);
    assert.match(lines[0]!, / identity=hmi\\x1b\[2J\\x00\\x0ax /);
    assert.match(lines[0]!, / target="t\\u\{202e\}y{254}…\(\+146 chars\)" /);
    assert.match(lines[0]!, / error="a \\"quoted\\" = value\\x0d\\x0a"$/);
  });

  it('json: one line per record, the same values for a JSON reader, identity and target cut, nothing raw for a terminal', async () => {
    const out = await logged('json', (l) => l.warn('decline: "t\u202e"', connMeta(hostile)));
    assert.doesNotMatch(out, RAW);
    const lines = out.split('\n').filter((x) => x !== '');
    assert.equal(lines.length, 1);
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(rec.message, 'decline: "t\u202e"');
    assert.equal(rec.identity, hostile.identity);
    assert.equal(rec.target, `t\u202e${'y'.repeat(254)}…(+146 chars)`);
  });
});
