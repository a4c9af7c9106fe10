/**
 * Writes the state diagrams of the machines to docs/diagrams/ (Mermaid, DOT, SVG), generated from the machine
 * definitions. Run after changing a machine, then commit the files; test/unit/diagrams.test.ts fails while
 * they differ from what the machines generate.
 *
 *   npm run diagrams
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { committedDiagrams } from '../src/diagram/render.js';

// dist/scripts → the project root.
const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/diagrams');

fs.mkdirSync(OUT, { recursive: true });
for (const [name, content] of await committedDiagrams()) {
  const file = path.join(OUT, name);
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  fs.writeFileSync(file, content);
  console.log(`${before === content ? 'unchanged' : before === null ? 'written  ' : 'updated  '} ${path.relative(process.cwd(), file)}`);
}
