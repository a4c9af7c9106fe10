/** One event as a timeline line (src/replay/timeline.ts): lists of addresses and names come out whole. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeEvent } from '../../src/replay/timeline.js';

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
