/** src/shared/address.ts: the one "<host>:<port>" parser, printer and comparison. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addressKey, formatHostPort, parseHostPort, sameAddress, type HostPort } from '../../src/shared/address.js';

function parsed(s: string, opts?: { anyPort?: boolean }): HostPort {
  const r = parseHostPort(s, opts);
  assert.ok(r.ok, `${s}: ${r.ok ? '' : r.message}`);
  return r.value;
}

function rejected(s: string, why: RegExp, opts?: { anyPort?: boolean }): void {
  const r = parseHostPort(s, opts);
  assert.ok(!r.ok, `${s} should be rejected, got ${JSON.stringify(r)}`);
  assert.ok(r.message.startsWith(`bad address "${s}": `), r.message);
  assert.match(r.message, why);
}

describe('parseHostPort / formatHostPort', () => {
  it('round-trips IPv4, IPv6 and host names', () => {
    const cases: [string, HostPort][] = [
      ['10.0.0.5:4897', { host: '10.0.0.5', port: 4897 }],
      ['0.0.0.0:5678', { host: '0.0.0.0', port: 5678 }],
      ['[::1]:5678', { host: '::1', port: 5678 }],
      ['[fe80::1]:1', { host: 'fe80::1', port: 1 }],
      ['[::]:65535', { host: '::', port: 65535 }],
      ['[::ffff:10.0.0.1]:80', { host: '::ffff:10.0.0.1', port: 80 }],
      ['localhost:80', { host: 'localhost', port: 80 }],
      ['scada1.plant.local:4897', { host: 'scada1.plant.local', port: 4897 }],
      ['Host-1.example.:22', { host: 'Host-1.example.', port: 22 }],
    ];
    for (const [text, hp] of cases) {
      assert.deepEqual(parsed(text), hp, text);
      assert.equal(formatHostPort(hp), text);
    }
  });

  it('reads a port with leading zeros as its number', () => {
    assert.deepEqual(parsed('a:00080'), { host: 'a', port: 80 });
  });

  it('rejects a missing port', () => {
    rejected('1.2.3.4', /port missing/);
    rejected('localhost', /port missing/);
    rejected('1.2.3.4:', /port "" is not a number 1\.\.65535/);
    rejected('[::1]:', /port "" is not a number/);
    rejected('[::1]5678', /expected "\[<IPv6>\]:<port>"/);
  });

  it('rejects ports out of range or not numbers', () => {
    rejected('1.2.3.4:0', /port must be between 1 and 65535/);
    rejected('1.2.3.4:65536', /port must be between 1 and 65535/);
    rejected('[::1]:70000', /port must be between 1 and 65535/);
    rejected('a:99999999999999999999', /port must be a whole number/);
    rejected('a:-1', /port "-1" is not a number/);
    rejected('a:1e3', /port "1e3" is not a number/);
    rejected('a:0x10', /port "0x10" is not a number/);
    rejected('a:http', /not a number/);
    rejected('[::1]:5:6', /port "5:6" is not a number/);
  });

  it('accepts port 0 only when asked to (any free port)', () => {
    assert.deepEqual(parsed('127.0.0.1:0', { anyPort: true }), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parsed('[::1]:0', { anyPort: true }), { host: '::1', port: 0 });
    rejected('127.0.0.1:65536', /between 1 and 65535/, { anyPort: true });
    rejected('bad_host:0', /"bad_host" is not a valid host name/, { anyPort: true });
  });

  it('rejects an IPv6 address with a port but without brackets', () => {
    rejected('::1:5678', /an IPv6 address must be in brackets/);
    rejected('fe80::1:80', /must be in brackets/);
  });

  it('rejects an empty host', () => {
    rejected(':5678', /host missing/);
    rejected('[]:5678', /"" is not an IPv6 address/);
  });

  it('rejects garbage', () => {
    rejected('', /port missing/);
    rejected('[::g]:5678', /"::g" is not an IPv6 address/);
    rejected('[[::1]]:5', /expected "\[<IPv6>\]:<port>"/);
    rejected('1.2.3.400:5678', /"1.2.3.400" is not a valid IPv4 address/);
    rejected('1.2.3:5', /not a valid IPv4 address/);
    rejected('bad_host!:5678', /not a valid host name or IP address/);
    rejected('-a:5', /not a valid host name/);
    rejected(' a:5', /not a valid host name/);
    rejected(`${'x'.repeat(64)}:1`, /not a valid host name/);
    rejected('host.123:1', /not a valid host name/);
  });

  const port = fc.integer({ min: 1, max: 65535 });
  const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/);
  const hostName = fc
    .tuple(fc.array(label, { maxLength: 3 }), fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/))
    .map(([labels, last]) => [...labels, last].join('.'));
  const address = fc.oneof(
    fc.tuple(fc.ipV4(), port).map(([host, p]) => `${host}:${p}`),
    fc.tuple(fc.ipV6(), port).map(([host, p]) => `[${host}]:${p}`),
    fc.tuple(fc.oneof(fc.domain(), hostName), port).map(([host, p]) => `${host}:${p}`),
  );

  it('format(parse(x)) is x for generated addresses', () => {
    fc.assert(
      fc.property(address, (text) => {
        assert.equal(formatHostPort(parsed(text)), text);
      }),
      { numRuns: 2000 },
    );
  });

  it('parse(format(hp)) is hp for generated addresses', () => {
    const hp = fc.record({ host: fc.oneof(fc.ipV4(), fc.ipV6(), hostName), port });
    fc.assert(
      fc.property(hp, (a) => {
        assert.deepEqual(parsed(formatHostPort(a)), a);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('addressKey / sameAddress', () => {
  it('treats case, a trailing dot and IPv6 spellings as the same address', () => {
    assert.ok(sameAddress({ host: 'Host.local', port: 1 }, { host: 'host.local', port: 1 }));
    assert.ok(sameAddress({ host: 'host.local.', port: 1 }, { host: 'host.local', port: 1 }));
    assert.ok(sameAddress({ host: '::1', port: 1 }, { host: '0:0::1', port: 1 }));
    assert.ok(sameAddress({ host: 'FE80::0:1', port: 1 }, { host: 'fe80::1', port: 1 }));
  });

  it('tells different hosts and ports apart', () => {
    assert.ok(!sameAddress({ host: '::1', port: 1 }, { host: '::1', port: 2 }));
    assert.ok(!sameAddress({ host: '10.0.0.1', port: 1 }, { host: '10.0.0.2', port: 1 }));
    assert.ok(!sameAddress({ host: 'a', port: 1 }, { host: 'b', port: 1 }));
  });

  it('keys IPv6 in its canonical form', () => {
    assert.equal(addressKey({ host: 'FE80:0::1', port: 80 }), addressKey({ host: 'fe80::1', port: 80 }));
    assert.equal(addressKey({ host: 'Example.COM.', port: 5 }), 'example.com:5');
  });
});
