/**
 * Which client certificates the CRLs in force revoke, asked of certificates that passed their handshake before
 * those CRLs were loaded (a reload: src/proxy/reload.ts). New handshakes need none of this: OpenSSL checks them
 * against the CRL itself. The CRLs were checked when the material was loaded (net/crl.ts), so each is from a CA
 * in the CA file.
 */
import type { X509Certificate } from 'node:crypto';
import { readCrl, normalSerial, subjectDer } from './der.js';
import type { TlsMaterial } from './tlsTerminator.js';
import { pemCertificates } from './trust.js';

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/;

export class RevocationList {
  private constructor(
    /** Revoked serial → the CAs whose CRL lists it. */
    private readonly bySerial: Map<string, X509Certificate[]>,
    /** With one CA a serial names one certificate; with more, the issuer must be asked. */
    private readonly anchors: number,
  ) {}

  static readonly EMPTY = new RevocationList(new Map(), 0);

  static of(material: TlsMaterial): RevocationList {
    if (!material.crl || material.crl.length === 0) return RevocationList.EMPTY;
    const anchors = pemCertificates(material.ca);
    const subjects = anchors.map((ca) => ({ ca, der: subjectDer(ca) }));
    const bySerial = new Map<string, X509Certificate[]>();
    for (const pem of material.crl) {
      const body = PEM_CRL.exec(pem)?.[1];
      if (body === undefined) continue;
      const crl = readCrl(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
      const issuers = subjects.filter((s) => s.der.equals(crl.issuer)).map((s) => s.ca);
      for (const serial of crl.revoked) bySerial.set(serial, [...(bySerial.get(serial) ?? []), ...issuers]);
    }
    return new RevocationList(bySerial, anchors.length);
  }

  get size(): number {
    return this.bySerial.size;
  }

  /**
   * Whether the certificate with this serial is revoked. `leaf` is asked only when a CRL lists the serial and the
   * CA file has more than one CA (serials are unique per CA only); a certificate that cannot be had any more
   * (its socket is gone) counts as revoked: the pair is on its way out anyway.
   */
  revokes(serial: string, leaf: () => X509Certificate | undefined): boolean {
    const issuers = this.bySerial.get(normalSerial(serial));
    if (!issuers) return false;
    if (this.anchors <= 1) return true;
    const cert = leaf();
    return cert === undefined || issuers.some((ca) => cert.checkIssued(ca));
  }
}
