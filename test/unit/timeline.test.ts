/** One event as a timeline line (src/replay/timeline.ts): lists of addresses and names come out whole. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeEvent, describeRecord } from '../../src/replay/timeline.js';

describe('describeEvent', () => {
  it('prints every address and name of a list, none cut (map must not pass its index as the length limit)', () => {
    assert.equal(describeEvent({ type: 'AUTHORIZED', id: '1', addresses: ['10.0.0.1:502', '10.0.0.2:502'] }), 'AUTHORIZED 10.0.0.1:502 10.0.0.2:502');
    assert.equal(
      describeEvent({ type: 'TLS_OK', id: '1', identity: 'cn:hmi-1', identities: ['cn:hmi-1', 'dns:hmi-1.plant'], protocol: 'TLSv1.3', alpn: null, resumed: false }),
      'TLS_OK identity=cn:hmi-1 identities=cn:hmi-1,dns:hmi-1.plant TLSv1.3',
    );
  });

  it("a forwarder's events: ACCEPTED with its target and way, the proxy's reply", () => {
    const accepted = { type: 'ACCEPTED', id: '1', peer: '127.0.0.1:40000', local: '127.0.0.1:14897', target: 'data' };
    assert.equal(
      describeEvent({ ...accepted, proxy: '127.0.0.1:5678', addresses: ['127.0.0.1:5678'] }),
      'ACCEPTED peer=127.0.0.1:40000 local=127.0.0.1:14897 target=data via proxy 127.0.0.1:5678',
    );
    assert.equal(
      describeEvent({ ...accepted, proxy: null, addresses: ['10.0.0.1:502', '10.0.0.2:502'] }),
      'ACCEPTED peer=127.0.0.1:40000 local=127.0.0.1:14897 target=data direct 10.0.0.1:502 10.0.0.2:502',
    );
    assert.equal(describeEvent({ type: 'ACCEPTED', id: '1', peer: 'p:1', local: 'l:2' }), 'ACCEPTED peer=p:1 local=l:2', "the proxy's, as before");
    assert.equal(describeEvent({ type: 'PROXY_REPLY_OK', id: '1' }), 'PROXY_REPLY_OK');
    assert.equal(describeEvent({ type: 'PROXY_DECLINED', id: '1', code: 'ERR_NOT_ALLOWED', message: 'no rule' }), 'PROXY_DECLINED ERR_NOT_ALLOWED "no rule"');
  });
});

describe('describeRecord: the records of version 2', () => {
  it('an effect with its parameters, an output, a noted input, a decision with its rule or why; text escaped', () => {
    assert.equal(
      describeRecord({ k: 'f', s: 1, t: 0, id: '1', name: 'dialBackend', params: { attempt: 1, address: '10.0.0.2:502' } }),
      '      do dialBackend attempt=1 address=10.0.0.2:502',
    );
    assert.equal(describeRecord({ k: 'f', s: 1, t: 0, id: '1', name: 'link' }), '      do link');
    assert.equal(
      describeRecord({ k: 'f', s: 1, t: 0, id: '1', name: 'sendDecline', params: { code: 'ERR_NOT_ALLOWED', message: 'no\nway' } }),
      '      do sendDecline code=ERR_NOT_ALLOWED message="no\\x0away"',
    );
    assert.equal(
      describeRecord({ k: 'o', s: 1, t: 0, id: '1', o: { id: '1', peer: 'p:1', reason: 'client-closed', backend: null, client: { read: 5, written: 5 } } }),
      'ended reason=client-closed backend=null client={"read":5,"written":5}',
    );
    assert.equal(
      describeRecord({ k: 'n', s: 1, t: 0, id: '1', e: { type: 'CLIENT_ERROR', id: '1', code: 'ECONNRESET', message: 'reset' }, why: 'before-tls' }),
      'CLIENT_ERROR ECONNRESET "reset"  (not taken by the machines: before-tls)',
    );
    assert.equal(
      describeEvent({ type: 'AUTHORIZED', id: '1', addresses: ['10.0.0.1:502'], matched: 'cn:hmi-1', rule: '/etc/mxproxy.config:12', ruleText: 'hmi-* data' }),
      'AUTHORIZED 10.0.0.1:502 by cn:hmi-1 rule /etc/mxproxy.config:12',
    );
    assert.equal(
      describeEvent({ type: 'DECLINED', id: '1', code: 'ERR_NOT_ALLOWED', message: '"x" may not reach "data"', why: 'no allow rule for cn:x → data (rules checked: 3, listing the target: 1)' }),
      'DECLINED ERR_NOT_ALLOWED "\\"x\\" may not reach \\"data\\""  why: "no allow rule for cn:x → data (rules checked: 3, listing the target: 1)"',
    );
  });
});
