/**
 * `mxproxy certs …`: create the project CA, issue server and client certificates, revoke them, show a certificate.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  CA_VALIDITY_DAYS,
  LEAF_VALIDITY_DAYS,
  REVOCATION_REASONS,
  caFiles,
  createCa,
  createCrl,
  describeCertificate,
  issueCertificate,
  loadCa,
  loadCaFiles,
  publicKeyType,
  readCrl,
  sameSerial,
  writeCrlFile,
  writeIssued,
  type CrlContents,
  type KeyAlgorithm,
  type LeafOptions,
  type RevocationReason,
} from '../certs/index.js';
import { TlsMaterialError, UsageError } from '../errors.js';

const ALGORITHMS: readonly KeyAlgorithm[] = ['ec-p256', 'rsa-2048', 'rsa-3072'];
const DEFAULT_DIR = 'certs';
const MAX_DAYS = 36_500; // keeps dates sane; nothing here needs more than a century
const DAY_MS = 24 * 60 * 60 * 1000;
/** Exit status for anything the user fixes by changing the command line or the files it names. */
const USAGE_EXIT = 2;

interface CommonOptions {
  dir: string;
  days: number;
  algorithm: KeyAlgorithm;
  force?: boolean;
}
interface InitOptions extends CommonOptions {
  name?: string;
}
interface LeafCommandOptions extends CommonOptions {
  name: string;
  dns?: string[];
  out?: string;
}
interface ServerOptions extends LeafCommandOptions {
  ip?: string[];
}
interface ClientOptions extends LeafCommandOptions {
  uri?: string[];
}
interface RevokeOptions {
  dir: string;
  ca?: string;
  caKey?: string;
  crl?: string;
  reason: RevocationReason;
  days?: number;
}

// ---- argument checks ------------------------------------------------------------------------------------------

function parseDays(value: string): number {
  const days = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(days >= 1 && days <= MAX_DAYS)) throw new InvalidArgumentError(`expected a whole number of days from 1 to ${MAX_DAYS}.`);
  return days;
}

/** Repeatable options; no default array, so help shows no "(default: [])". */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const BASE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._@+-]{0,99}$/;
const BASE_NAME_RULE = 'letters, digits, ".", "_", "-", "@", "+"; not starting with "." or "-"';

/** The file base name: --out, else the certificate name. "ca" is reserved so a leaf can never replace the CA. */
function baseName(out: string | undefined, name: string): string {
  if (out !== undefined) {
    if (/\.(pem|key)$/i.test(out)) throw new UsageError(`--out "${out}": give the base name without .pem/.key`);
    if (!BASE_NAME.test(out)) throw new UsageError(`--out "${out}" is not a usable file name (${BASE_NAME_RULE})`);
  } else if (!BASE_NAME.test(name)) {
    throw new UsageError(`--name "${name}" cannot be used as a file name (${BASE_NAME_RULE}); add --out <basename>`);
  }
  const base = out ?? name;
  if (base.toLowerCase() === 'ca') throw new UsageError('"ca" is the file name of the CA itself; choose another --name or --out');
  return base;
}

const HOST_LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

function checkServerName(name: string): void {
  if (name === '') throw new UsageError('--name is empty: give the host name or IP address clients connect to');
  if (isIP(name)) return;
  if (name.length > 253 || !name.split('.').every((label) => HOST_LABEL.test(label))) {
    throw new UsageError(`--name "${name}" is not a host name or IP address (labels of letters, digits, "-", separated by ".")`);
  }
}

/** Identities appear in whitespace-separated, quoted allow rules whose `*` and `?` are globs. */
function checkIdentity(name: string): void {
  if (name === '') throw new UsageError('--name is empty: give the client identity (what allow rules match)');
  if (!/^[\x21-\x7e]+$/.test(name) || /["*?\\]/.test(name)) {
    throw new UsageError(`--name "${name}" is not a usable identity: printable ASCII without spaces, quotes, "\\", "*" or "?"`);
  }
}

function checkDir(dir: string): void {
  if (dir.trim() === '') throw new UsageError('--dir is empty');
}

function refuseOverwrite(files: string[], force: boolean | undefined, consequence = ''): string[] {
  const existing = files.filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !force) {
    const verb = existing.length === 1 ? 'exists' : 'exist';
    throw new UsageError(`${existing.join(' and ')} already ${verb}${consequence}; pass --force to replace`);
  }
  return existing;
}

/** Quotes a path for the shell when it needs it, for the hints printed. */
function sh(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

// ---- output ---------------------------------------------------------------------------------------------------

function print(lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

function expiry(notAfter: Date): string {
  const left = notAfter.getTime() - Date.now();
  if (left <= 0) return `${notAfter.toISOString()} (EXPIRED)`;
  const days = Math.round(left / DAY_MS); // --days 30 reads "in 30 days", not 29 and change
  return `${notAfter.toISOString()} (in ${days} day${days === 1 ? '' : 's'})`;
}

function summary(certPem: string): string[] {
  const d = describeCertificate(certPem);
  return [
    `  subject      ${d.subject}`,
    `  issuer       ${d.issuer}${d.issuer === d.subject ? ' (self-signed)' : ''}`,
    `  SAN          ${d.san.length > 0 ? d.san.join(', ') : '(none)'}`,
    `  key          ${publicKeyType(certPem)}`,
    `  CA           ${d.isCa ? 'yes' : 'no'}`,
    `  valid from   ${d.notBefore.toISOString()}`,
    `  expires      ${expiry(d.notAfter)}`,
    `  serial       ${d.serial}`,
    `  SHA-256      ${d.fingerprint256}`,
  ];
}

function written(certFile: string, keyFile: string, certPem: string): string[] {
  return [`  certificate  ${certFile}`, `  private key  ${keyFile} (mode 0600; keep it on this host)`, ...summary(certPem)];
}

/** The value of an sslCertificate entry, with the caveats of that syntax. */
function sslCertificateLines(dir: string, files: string[]): string[] {
  const lines = [`  sslCertificate = "${files.join(' ')}"`];
  if (files.some((f) => /\s/.test(f))) lines.push('  (paths in sslCertificate cannot contain spaces: move the files to a path without them)');
  else if (!path.isAbsolute(dir)) lines.push("  (relative paths are resolved from the config file's directory)");
  return lines;
}

// ---- actions --------------------------------------------------------------------------------------------------

function defaultCaName(): string {
  const prefix = 'mxproxy project CA (';
  return `${prefix}${os.hostname().slice(0, 64 - prefix.length - 1)})`; // a CN holds at most 64 characters
}

async function initCa(opts: InitOptions): Promise<void> {
  checkDir(opts.dir);
  const { certFile, keyFile, crlFile } = caFiles(opts.dir);
  const replaced = refuseOverwrite([certFile, keyFile, crlFile], opts.force, ' (a new CA invalidates every certificate the old one issued)');
  // pathLen 0: the CA signs leaf certificates only, so no certificate it issues can act as a CA (createCa).
  const ca = await createCa({ commonName: opts.name ?? defaultCaName(), algorithm: opts.algorithm, validityDays: opts.days });
  await writeIssued(opts.dir, 'ca', ca);
  // An empty CRL from the start, so sslCrl can be set at once and `certs revoke` only ever adds to it.
  await writeCrlFile(crlFile, await createCrl(ca, [], { number: 0n, nextUpdate: describeCertificate(ca.certPem).notAfter }));
  if (replaced.length > 0) process.stderr.write(`mxproxy: replaced the CA in ${opts.dir}: certificates issued by the old CA no longer verify\n`);
  print([
    `Created the project CA:`,
    ...written(certFile, keyFile, ca.certPem),
    `  CRL          ${crlFile} (empty; \`mxproxy certs revoke\` adds to it)`,
    '',
    `Next: a certificate for the proxy, one for each client:`,
    `  mxproxy certs issue server --dir ${sh(opts.dir)} --name <proxy host name> [--ip <address>]`,
    `  mxproxy certs issue client --dir ${sh(opts.dir)} --name <client identity>`,
  ]);
}

interface IssuedFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  certPem: string;
}

async function issueLeaf(opts: CommonOptions, base: string, leaf: Pick<LeafOptions, 'kind' | 'commonName' | 'dns' | 'ips' | 'uris'>): Promise<IssuedFiles> {
  checkDir(opts.dir);
  const caFile = caFiles(opts.dir).certFile;
  let ca;
  try {
    ca = await loadCa(opts.dir);
  } catch (err) {
    if (!(err instanceof TlsMaterialError && err.code === 'ERR_CA_NOT_FOUND')) throw err;
    throw new UsageError(`${err.message}: create the project CA first with: mxproxy certs init --dir ${sh(opts.dir)}`, { cause: err });
  }
  const caNotAfter = describeCertificate(ca.certPem).notAfter;
  if (caNotAfter.getTime() <= Date.now()) {
    throw new UsageError(`the CA in ${caFile} expired on ${caNotAfter.toISOString()}: create a new one (mxproxy certs init --force)`);
  }
  const certFile = path.join(opts.dir, `${base}.pem`);
  const keyFile = path.join(opts.dir, `${base}.key`);
  refuseOverwrite([certFile, keyFile], opts.force);
  const issued = await issueCertificate(ca, { ...leaf, algorithm: opts.algorithm, validityDays: opts.days });
  await writeIssued(opts.dir, base, issued);
  if (describeCertificate(issued.certPem).notAfter > caNotAfter) {
    process.stderr.write(`mxproxy: warning: the certificate outlives the CA, which expires on ${caNotAfter.toISOString()}\n`);
  }
  return { certFile, keyFile, caFile, certPem: issued.certPem };
}

async function issueServer(opts: ServerOptions): Promise<void> {
  checkServerName(opts.name);
  const base = baseName(opts.out, opts.name);
  const nameIsIp = isIP(opts.name) !== 0;
  const files = await issueLeaf(opts, base, {
    kind: 'server',
    commonName: opts.name,
    dns: nameIsIp ? opts.dns : [opts.name, ...(opts.dns ?? [])],
    ips: nameIsIp ? [opts.name, ...(opts.ip ?? [])] : opts.ip,
  });
  print([
    'Issued a server certificate:',
    ...written(files.certFile, files.keyFile, files.certPem),
    '',
    'Proxy config ([proxy] section):',
    ...sslCertificateLines(opts.dir, [files.certFile, files.keyFile, files.caFile]),
  ]);
}

async function issueClient(opts: ClientOptions): Promise<void> {
  checkIdentity(opts.name);
  const base = baseName(opts.out, opts.name);
  const files = await issueLeaf(opts, base, { kind: 'client', commonName: opts.name, dns: opts.dns, uris: opts.uri });
  print([
    'Issued a client certificate:',
    ...written(files.certFile, files.keyFile, files.certPem),
    '',
    'Client config ([client] section), on the client host:',
    ...sslCertificateLines(opts.dir, [files.certFile, files.keyFile, files.caFile]),
    'Proxy config ([proxy] section), to let this client reach a server (<target>: a name from a server entry):',
    `  allow = "${opts.name} <target>"`,
  ]);
}

async function showCertificate(file: string): Promise<void> {
  let pem: string;
  try {
    pem = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const count = pem.split('-----BEGIN CERTIFICATE-----').length - 1;
  if (count === 0) {
    const hint = pem.includes('PRIVATE KEY-----') ? ' (it holds a private key; show the .pem next to it)' : '';
    throw new UsageError(`${file} holds no PEM certificate${hint}`);
  }
  let lines: string[];
  try {
    lines = summary(pem);
  } catch (err) {
    throw new UsageError(`${file}: the certificate cannot be parsed: ${(err as Error).message}`, { cause: err });
  }
  print([`${file}${count > 1 ? ` (the first of ${count} certificates)` : ''}:`, ...lines]);
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

async function revokeCertificate(certArg: string, opts: RevokeOptions): Promise<void> {
  if ((opts.ca === undefined) !== (opts.caKey === undefined)) throw new UsageError('--ca and --ca-key go together: give both, or --dir');
  checkDir(opts.dir);
  const files =
    opts.ca !== undefined && opts.caKey !== undefined
      ? { certFile: opts.ca, keyFile: opts.caKey, crlFile: path.join(path.dirname(opts.ca), 'crl.pem') }
      : caFiles(opts.dir);
  const crlFile = opts.crl ?? files.crlFile;
  let ca;
  try {
    ca = await loadCaFiles(files.certFile, files.keyFile);
  } catch (err) {
    if (!(err instanceof TlsMaterialError && err.code === 'ERR_CA_NOT_FOUND')) throw err;
    throw new UsageError(`${err.message}: revoke with the CA that issued the certificate (--dir, or --ca and --ca-key)`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await readText(certArg, 'certificate'));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${certArg} holds no certificate that can be parsed (${(err as Error).message})`);
  }
  const caCert = new X509Certificate(ca.certPem);
  if (cert.fingerprint256 === caCert.fingerprint256) {
    throw new UsageError(`${certArg} is the CA itself: to retire a CA, replace it (mxproxy certs init --force) and reissue`);
  }
  if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) {
    throw new UsageError(`${certArg} was not issued by the CA in ${files.certFile}`);
  }
  let existing: CrlContents | undefined;
  if (fs.existsSync(crlFile)) existing = await readCrl(await readText(crlFile, 'CRL'), ca);
  const subject = cert.subject.replace(/\n/g, ', ');
  const already = existing?.entries.find((e) => sameSerial(e.serial, cert.serialNumber));
  if (already) {
    print([`${subject} (serial ${cert.serialNumber}) is already revoked in ${crlFile}, since ${already.revokedAt.toISOString()}; nothing changed`]);
    return;
  }
  const caNotAfter = describeCertificate(ca.certPem).notAfter;
  // Until the CA expires by default: a CRL past its nextUpdate makes the proxy refuse every client.
  const nextUpdate = opts.days !== undefined ? new Date(Date.now() + opts.days * DAY_MS) : caNotAfter;
  const entries = [...(existing?.entries ?? []), { serial: cert.serialNumber, revokedAt: new Date(), reason: opts.reason }];
  const number = (existing?.number ?? 0n) + 1n;
  await writeCrlFile(crlFile, await createCrl(ca, entries, { number, nextUpdate }));
  print([
    `Revoked ${subject}${opts.reason === 'unspecified' ? '' : ` (${opts.reason})`}:`,
    `  certificate  ${certArg}`,
    `  serial       ${cert.serialNumber}`,
    `  CRL          ${crlFile}${existing ? '' : ' (new)'}: ${entries.length} revoked, CRL number ${number}`,
    `  next update  ${expiry(nextUpdate)}`,
    '',
    'On every proxy host: put the CRL there, name it in [proxy] and restart the proxy (the CRL is read at start):',
    `  sslCrl = "${crlFile}"`,
  ]);
}

/** Runs an action: expected problems become one line on stderr and an exit status, never a stack trace. */
function run<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      // UsageError, and TlsMaterialError from src/certs (bad input, an unusable CA): things the user fixes
      if (err instanceof UsageError || err instanceof TlsMaterialError) {
        process.stderr.write(`mxproxy: ${err.message}\n`);
        process.exitCode = USAGE_EXIT;
      } else if (typeof (err as NodeJS.ErrnoException).code === 'string' && (err as Error).message) {
        process.stderr.write(`mxproxy: ${(err as Error).message}\n`); // e.g. EACCES creating the directory
        process.exitCode = 1;
      } else {
        throw err;
      }
    }
  };
}

// ---- command tree ---------------------------------------------------------------------------------------------

function addCommonOptions(cmd: Command, defaultDays: number, what: string): Command {
  return cmd
    .option('--dir <dir>', 'certificate directory', DEFAULT_DIR)
    .addOption(new Option('--algorithm <algorithm>', 'key type').choices(ALGORITHMS).default('ec-p256'))
    .addOption(new Option('--days <n>', 'validity in days').argParser(parseDays).default(defaultDays))
    .option('--force', `replace an existing ${what}`);
}

export function registerCertsCommand(program: Command): void {
  const certs = program
    .command('certs')
    .description("manage the project's certificates: a CA, server and client certificates signed by it")
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  mxproxy certs init --dir certs',
        '  mxproxy certs issue server --dir certs --name proxy.plant.local --ip 10.0.0.5',
        '  mxproxy certs issue client --dir certs --name hmi-1',
        '  mxproxy certs revoke certs/hmi-1.pem --dir certs --reason keyCompromise',
        '  mxproxy certs show certs/proxy.plant.local.pem',
      ].join('\n'),
    );
  // Usage errors (bad --days, unknown --algorithm, missing --name) exit 2 like every other certs error.
  certs.exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT));

  addCommonOptions(
    certs.command('init').description('create a new project CA (pathLen 0): <dir>/ca.pem, <dir>/ca.key and an empty <dir>/crl.pem'),
    CA_VALIDITY_DAYS,
    'CA',
  )
    .option('--name <common name>', 'CA common name (default: "mxproxy project CA (<hostname>)")')
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  mxproxy certs init --dir certs',
        '  mxproxy certs init --dir /etc/mxproxy/certs --name "Plant 7 CA" --algorithm rsa-3072 --days 3650',
      ].join('\n'),
    )
    .action(run(initCa));

  const issue = certs
    .command('issue')
    .description('issue a server or client certificate signed by <dir>/ca.pem')
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  mxproxy certs issue server --dir certs --name proxy.plant.local --ip 10.0.0.5',
        '  mxproxy certs issue client --dir certs --name hmi-1 --uri spiffe://plant/hmi-1',
      ].join('\n'),
    );

  addCommonOptions(issue.command('server').description('issue the proxy\'s certificate: <dir>/<name>.pem and .key'), LEAF_VALIDITY_DAYS, 'certificate')
    .requiredOption('--name <host>', 'host name or IP address clients connect to (CN, and a SAN entry)')
    .option('--ip <address>', 'another IP address SAN (repeatable)', collect)
    .option('--dns <name>', 'another DNS name SAN (repeatable)', collect)
    .option('--out <basename>', 'file base name (default: the name)')
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  mxproxy certs issue server --name proxy.plant.local --ip 10.0.0.5 --ip 10.1.0.5',
        '  mxproxy certs issue server --dir certs --name localhost --ip 127.0.0.1 --dns proxy --days 365',
        '  mxproxy certs issue server --name 10.0.0.5 --out proxy --algorithm rsa-2048',
      ].join('\n'),
    )
    .action(run(issueServer));

  addCommonOptions(issue.command('client').description('issue a client certificate: <dir>/<name>.pem and .key'), LEAF_VALIDITY_DAYS, 'certificate')
    .requiredOption('--name <identity>', 'client identity (CN), what allow rules match')
    .option('--uri <uri>', 'a URI SAN, also matched by allow rules (repeatable)', collect)
    .option('--dns <name>', 'a DNS name SAN, also matched by allow rules (repeatable)', collect)
    .option('--out <basename>', 'file base name (default: the identity)')
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  mxproxy certs issue client --name hmi-1',
        '  mxproxy certs issue client --dir certs --name historian --uri spiffe://plant/historian --days 365',
      ].join('\n'),
    )
    .action(run(issueClient));

  certs
    .command('revoke')
    .description('add a certificate to the CA\'s revocation list (<dir>/crl.pem), created if missing, signed by the CA')
    .argument('<cert.pem>', 'the certificate to revoke (issued by the CA)')
    .option('--dir <dir>', 'certificate directory holding ca.pem, ca.key and crl.pem', DEFAULT_DIR)
    .option('--ca <ca.pem>', 'the CA certificate, instead of <dir>/ca.pem (with --ca-key)')
    .option('--ca-key <ca.key>', 'the CA private key, instead of <dir>/ca.key (with --ca)')
    .option('--crl <crl.pem>', 'the CRL file (default: crl.pem next to the CA certificate)')
    .addOption(new Option('--reason <reason>', 'revocation reason').choices(REVOCATION_REASONS).default('unspecified'))
    .addOption(new Option('--days <n>', 'the CRL is valid for n days (default: until the CA expires)').argParser(parseDays))
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  mxproxy certs revoke certs/hmi-1.pem --dir certs --reason keyCompromise',
        '  mxproxy certs revoke /tmp/old-hmi.pem --ca /media/ca/ca.pem --ca-key /media/ca/ca.key --crl /media/ca/crl.pem',
      ].join('\n'),
    )
    .action(run((file: string, opts: RevokeOptions) => revokeCertificate(file, opts)));

  certs
    .command('show')
    .description('describe a PEM certificate: subject, issuer, SANs, key, validity, fingerprint')
    .argument('<file>', 'PEM certificate file')
    .addHelpText('after', '\nExamples:\n  mxproxy certs show certs/ca.pem\n  mxproxy certs show certs/hmi-1.pem')
    .action(run((file: string) => showCertificate(file)));
}
