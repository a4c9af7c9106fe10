/** What `mxproxy audit` reports: one finding per problem, as a text line or a JSON object. */

/** high: exposed now (a bypass, an expired certificate, a world-readable key); medium: a weakness to fix soon. */
export type Severity = 'high' | 'medium';

export type CheckName =
  | 'server-bypass'
  | 'dev-certificates'
  | 'certificate-expiry'
  | 'key-permissions'
  | 'ca-sub-ca'
  | 'allow-everything';

export interface Finding {
  severity: Severity;
  check: CheckName;
  /** What is wrong, in a sentence. */
  message: string;
  /** What to do about it. */
  fix: string;
  /** `file:line` of the config entry, or the certificate or key file. */
  where: string;
}

/** One line: `[high] server-bypass mx.config:7: <message>; fix: <fix>` */
export function formatFinding(f: Finding): string {
  return `[${f.severity}] ${f.check} ${f.where}: ${f.message}; fix: ${f.fix}`;
}
