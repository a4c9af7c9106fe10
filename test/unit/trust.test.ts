/** Only the project CA is trusted: public roots and non-CA certificates are refused as trust anchor. */
import assert from 'node:assert/strict';
import { rootCertificates } from 'node:tls';
import { describe, it } from 'node:test';
import { createCa, issueCertificate } from '../../src/certs/index.js';
import { TlsMaterialError } from '../../src/errors.js';
import { checkTrustAnchors } from '../../src/net/trust.js';

describe('trust anchors', () => {
  it('accepts the project CA', async () => {
    const ca = await createCa({ commonName: 'plant CA' });
    assert.equal(checkTrustAnchors(ca.certPem, 'ca.pem').length, 1);
  });

  it('refuses a public CA from the system trust store', () => {
    assert.ok(rootCertificates.length > 0);
    assert.throws(
      () => checkTrustAnchors(rootCertificates[0]!, 'public.pem'),
      (e: unknown) => e instanceof TlsMaterialError && e.code === 'ERR_CA_PUBLIC' && /public CA/.test(e.message),
    );
  });

  it('refuses a bundle that smuggles a public root next to the project CA', async () => {
    const ca = await createCa({ commonName: 'plant CA' });
    assert.throws(() => checkTrustAnchors(ca.certPem + rootCertificates[3]!, 'bundle.pem'), /public CA/);
  });

  it('refuses a leaf certificate as anchor, and a file without certificates', async () => {
    const ca = await createCa({ commonName: 'plant CA' });
    const leaf = await issueCertificate(ca, { kind: 'server', commonName: 'localhost' });
    assert.throws(() => checkTrustAnchors(leaf.certPem, 'leaf.pem'), (e: unknown) => e instanceof TlsMaterialError && e.code === 'ERR_CA_NOT_CA');
    assert.throws(() => checkTrustAnchors('not a pem', 'x.pem'), /no PEM certificate/);
  });

  it('PEM from mxproxy certs ends with a newline: two CA files concatenated are two anchors', async () => {
    const [a, b] = [await createCa({ commonName: 'CA 2025' }), await createCa({ commonName: 'CA 2026' })];
    assert.ok(a.certPem.endsWith('\n') && a.keyPem.endsWith('\n'));
    assert.equal(checkTrustAnchors(a.certPem + b.certPem, 'bundle.pem').length, 2);
  });

  it('refuses certificates joined on one line (OpenSSL would silently read only the first)', async () => {
    const [a, b] = [await createCa({ commonName: 'CA 2025' }), await createCa({ commonName: 'CA 2026' })];
    assert.throws(() => checkTrustAnchors(a.certPem.trimEnd() + b.certPem, 'bundle.pem'), /joined on one line/);
  });
});
