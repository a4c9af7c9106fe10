export {
  CA_VALIDITY_DAYS,
  LEAF_VALIDITY_DAYS,
  createCa,
  describeCertificate,
  issueCertificate,
  type CaOptions,
  type CertificateDescription,
  type Issued,
  type KeyAlgorithm,
  type LeafOptions,
  type ValidityOptions,
} from './x509.js';
export type { CertificateDescription as CertificateSummary } from './x509.js';
export { writeIssued, writeCrlFile } from './files.js';
export {
  REVOCATION_REASONS,
  createCrl,
  readCrl,
  sameSerial,
  type CrlContents,
  type RevocationReason,
  type RevokedEntry,
} from './crl.js';
export { caFiles, loadCa, loadCaFiles } from './load.js';
export { publicKeyType } from './keyType.js';
export { allowsSubCa, caPathLen, type CaPathLen } from './pathLen.js';
