/**
 * The Authorizer replay makes from a logged config (Authorizer.fromSnapshot) decides as the one the proxy made
 * from the config file: same outcome, same rule, same words, for any names and targets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Authorizer, decideNames, decisionEvent } from '../../src/auth/rules.js';
import { readProxyConfig } from '../../src/config/index.js';
import { configSnapshot } from '../../src/config/snapshot.js';

const CONFIG = [
  '[proxy]',
  'listen = "127.0.0.1:5678"',
  'server = "data 10.0.0.7:502 10.0.0.8:502"',
  'server = "event 10.0.0.9:20000"',
  'server = "hist [fd00::5]:5432"',
  'allow = "cn:hmi-* data"',
  'allow = "dns:*.plant.local data event"',
  'allow = "uri:spiffe://plant/* hist"',
  'allow = "ops-? *"',
  '',
].join('\n');

describe('Authorizer.fromSnapshot', () => {
  const config = readProxyConfig(CONFIG, '/etc/mxproxy/mxproxy.config', { checkFiles: false });
  const live = new Authorizer(config);
  const replayed = Authorizer.fromSnapshot(configSnapshot(config));

  it('decides every request as the Authorizer of the config file', () => {
    const name = fc.tuple(
      fc.constantFrom('cn', 'dns', 'uri', 'bare'),
      fc.constantFrom('hmi-1', 'hmi-', 'ops-a', 'ops-ab', 'x.plant.local', 'plant.local', 'spiffe://plant/a', 'HMI-1', ''),
    ).map(([kind, value]) => (kind === 'bare' ? value : `${kind}:${value}`));
    fc.assert(
      fc.property(fc.array(name, { maxLength: 4 }), fc.constantFrom('data', 'event', 'hist', 'nosuch', 'Data', ''), (names, target) => {
        assert.deepEqual(decisionEvent(decideNames(replayed, names, target)), decisionEvent(decideNames(live, names, target)));
      }),
      { numRuns: 500 },
    );
  });

  it('a rule that does not parse (a hand-edited log) matches nothing; the others still apply', () => {
    const snapshot = configSnapshot(config);
    const edited = Authorizer.fromSnapshot({ ...snapshot, allow: [{ identity: 'nds:hmi-*', targets: ['data'], where: 'x:1' }, ...snapshot.allow] });
    const d = decisionEvent(decideNames(edited, ['cn:hmi-1'], 'data'));
    assert.equal(d.type === 'AUTHORIZED' && d.rule, '/etc/mxproxy/mxproxy.config:6');
  });
});
