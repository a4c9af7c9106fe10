/**
 * The layers, read from the import statements of the sources (no tool to install): machines/ stand on the
 * shared words and xstate only, src/shared/ on nothing, and no module imports itself back through others.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

// dist/test/unit → the project root, where the TypeScript sources are.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

/** Module (relative to the root, .ts) → what it imports: other modules as .ts paths, packages by name. */
function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec) continue;
      if (spec.startsWith('.')) deps.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
      else deps.push(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
    graph.set(file, deps);
  }
  return graph;
}

const graph = importGraph([...sources('machines'), ...sources('src')]);

function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (!g.has(d)) continue;
      if (state.get(d) === 'visiting') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of g.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('layers', () => {
  test('the reader sees the imports (sanity: the connection machine imports xstate and the shared codes)', () => {
    assert.ok(graph.size > 40, `read ${graph.size} modules`);
    assert.ok(graph.get('machines/connection.ts')?.includes('xstate'));
    assert.ok(graph.get('machines/connection.ts')?.includes('src/shared/codes.ts'));
  });

  test('machines/ import only xstate, each other and src/shared/', () => {
    for (const [file, deps] of graph) {
      if (!file.startsWith('machines/')) continue;
      const bad = deps.filter((d) => d !== 'xstate' && !d.startsWith('machines/') && !d.startsWith('src/shared/'));
      assert.deepEqual(bad, [], `${file} imports ${bad.join(', ')}`);
    }
  });

  test('src/shared/ imports nothing but itself (and Node built-ins)', () => {
    for (const [file, deps] of graph) {
      if (!file.startsWith('src/shared/')) continue;
      const bad = deps.filter((d) => !d.startsWith('src/shared/') && !d.startsWith('node:'));
      assert.deepEqual(bad, [], `${file} imports ${bad.join(', ')}`);
    }
  });

  test('only the CLI and the public entry point sit above everything: nothing imports src/cli/', () => {
    for (const [file, deps] of graph) {
      if (file.startsWith('src/cli/')) continue;
      const bad = deps.filter((d) => d.startsWith('src/cli/'));
      assert.deepEqual(bad, [], `${file} imports ${bad.join(', ')}`);
    }
  });

  test('net, auth, proxy, client and forward do not reach into the config validator', () => {
    const validator = ['src/config/proxySection.ts', 'src/config/clientSection.ts', 'src/config/schemas.ts', 'src/config/proxyKeys.ts'];
    for (const [file, deps] of graph) {
      if (!/^src\/(net|auth|proxy|client|forward)\//.test(file)) continue;
      const bad = deps.filter((d) => validator.includes(d));
      assert.deepEqual(bad, [], `${file} imports ${bad.join(', ')}`);
    }
  });

  test('no import cycles', () => {
    assert.deepEqual(cycles(graph).map((c) => c.join(' → ')), []);
  });

  test('the cycle finder finds a cycle (so the check above can fail)', () => {
    const g = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']]]);
    assert.deepEqual(cycles(g), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  });
});
