/**
 * The page and what it is built from: static HTML, CSS and JavaScript (no build step, nothing from a CDN), the
 * pair machine's diagram drawn from the machine itself, and the headers every admin response carries. The same
 * page serves the proxy, `mxproxy forward` and a cluster primary: it asks /api/page which one it is.
 */
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import { jsonSafe } from '../shared/printable.js';
import { offThread } from './offThread.js';

/** From dist/src/inspect/ (or src/inspect/ under a TS runner) to the assets next to this file's source. */
const ASSETS = new URL('../../../src/inspect/assets/', import.meta.url);

export interface Asset {
  body: Buffer;
  type: string;
}

const ASSET_TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

let assets: Map<string, Asset> | undefined;

/** The page's files, read once. */
export function pageAssets(): Map<string, Asset> {
  if (!assets) {
    assets = new Map();
    for (const [name, type] of Object.entries(ASSET_TYPES)) assets.set(name, { body: fs.readFileSync(new URL(name, ASSETS)), type });
  }
  return assets;
}

/** The pair machines a page can show: the proxy's connection machine, the forwarder's forward machine. */
export type PageMachine = 'connection' | 'forward';

const diagrams = new Map<PageMachine, Promise<string>>();

/**
 * A pair machine's SVG, drawn once per process from the machine (the same as docs/diagrams/<name>.svg), in a
 * worker thread (./worker.ts says why).
 */
export function machineDiagram(machine: PageMachine): Promise<string> {
  let diagram = diagrams.get(machine);
  if (!diagram) {
    diagram = offThread<string>({ kind: 'diagram', machine });
    diagrams.set(machine, diagram);
    diagram.catch(() => diagrams.delete(machine));
  }
  return diagram;
}

/** The connection machine's SVG (the proxy's page). */
export const connectionDiagram = (): Promise<string> => machineDiagram('connection');

/**
 * Scripts only from this origin's files, no inline script or style, no frames, no form posts elsewhere: text
 * that slipped through escaping still could not run.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export function startStream(res: ServerResponse): void {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': 'text/event-stream; charset=utf-8',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
}

/**
 * JSON that is inert wherever it lands: besides what `jsonSafe` escapes, `<`, `>` and `&` are `\u003c` … (a
 * response sniffed as HTML, or pasted into a page, holds no tag).
 */
export function safeJson(value: unknown): string {
  return jsonSafe(JSON.stringify(value)).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', safeJson(value), extra);
}
