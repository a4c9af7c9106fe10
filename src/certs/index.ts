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
export { writeIssued } from './files.js';
export { caFiles, loadCa } from './load.js';
export { publicKeyType } from './keyType.js';
export { allowsSubCa, caPathLen, type CaPathLen } from './pathLen.js';
