/**
 * The admin endpoint's keys, adminListen and adminToken: the same in `[proxy]` (`mxproxy start`) and `[client]`
 * (`mxproxy forward`), read and checked alike. Anyone who can reach a non-loopback address could read every
 * peer, identity and target and download the metrics, so such an address is refused without a token: the
 * process does not start (a configuration error at the adminListen line, ERR_CONFIG, exit 2).
 */
import { formatHostPort, isLoopbackHost, parseHostPort, type HostPort } from '../shared/address.js';
import type { ConfigEntry } from './parse.js';
import type { AdminConfig, ConfigIssue, KeyDoc } from './types.js';

export type AdminKeyName = 'adminListen' | 'adminToken';

export function adminKeyDocs(who: 'proxy' | 'forwarder'): KeyDoc<AdminKeyName>[] {
  const what =
    who === 'proxy'
      ? 'the inspector page, /metrics (Prometheus), /status (JSON) and the live event stream'
      : "the forwarder's inspector page (the forward machine's diagram and the forwarded pairs), /metrics " +
        '(Prometheus, mxforward_ names), /status (JSON) and the live event stream';
  const process = who === 'proxy' ? 'the proxy' : 'the forwarder';
  return [
    {
      name: 'adminListen',
      type: 'string',
      syntax: 'adminListen = "<host>:<port>"',
      default: undefined,
      repeatable: false,
      description:
        `The admin endpoint (plain HTTP): ${what}. Unset: off. On a loopback address (127.0.0.1, [::1], localhost) ` +
        `it is open to local users unless adminToken is set; any other address requires adminToken, or ${process} ` +
        'does not start.' +
        (who === 'forwarder' ? ' Use another port than [proxy] adminListen when one host runs both.' : ''),
      example: who === 'proxy' ? 'adminListen = "127.0.0.1:9678"' : 'adminListen = "127.0.0.1:9679"',
    },
    {
      name: 'adminToken',
      type: 'string',
      syntax: 'adminToken = "<token>"',
      default: undefined,
      repeatable: false,
      secret: true,
      description:
        'The bearer token every admin request must carry (Authorization: Bearer <token>; a browser may send it as ' +
        'the password of HTTP Basic authentication). At least 16 visible ASCII characters, no spaces; generate one ' +
        'with `openssl rand -hex 32`. Needs adminListen.',
      example: 'adminToken = "replace-with-openssl-rand-hex-32"',
    },
  ];
}

/** The admin entries of one section as they are read; resolve() checks them together. */
export class AdminEntries {
  private listen: { entry: ConfigEntry; value: HostPort } | undefined;
  private token: { entry: ConfigEntry; value: string } | undefined;

  constructor(private readonly file: string) {}

  /** One adminListen or adminToken entry (a string value; the section checked the type and repetition). */
  read(e: ConfigEntry, issue: (e: ConfigEntry, message: string) => void): void {
    const v = String(e.value.value);
    if (e.key === 'adminListen') {
      // As hostPortSchema reads it (not imported: the key docs here are part of proxyKeys.ts, which schemas.ts reads).
      const r = parseHostPort(v);
      if (!r.ok) issue(e, r.message);
      else this.listen = { entry: e, value: r.value };
      return;
    }
    // Visible ASCII only: it travels in an HTTP header, and a space would split it from its scheme.
    if (!/^[\x21-\x7e]{16,1024}$/.test(v)) {
      issue(e, 'adminToken must be 16 to 1024 visible ASCII characters without spaces; generate one with `openssl rand -hex 32`');
    } else {
      this.token = { entry: e, value: v };
    }
  }

  /** adminListen and adminToken together; undefined: no endpoint (or a problem, added to `issues`). */
  resolve(issues: ConfigIssue[]): AdminConfig | undefined {
    const { listen, token, file } = this;
    if (!listen) {
      if (token) issues.push({ file, line: token.entry.line, entry: token.entry.text, message: 'adminToken is given without adminListen' });
      return undefined;
    }
    if (!token && !isLoopbackHost(listen.value.host)) {
      issues.push({
        file,
        line: listen.entry.line,
        entry: listen.entry.text,
        message:
          `adminListen ${formatHostPort(listen.value)} is not a loopback address: set adminToken too ` +
          '(anyone who reaches it would see every connection), or listen on 127.0.0.1',
      });
      return undefined;
    }
    return { listen: listen.value, token: token?.value, source: { file, line: listen.entry.line } };
  }
}
