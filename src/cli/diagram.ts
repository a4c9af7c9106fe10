/**
 * `mxproxy diagram`: a state machine drawn from its definition (machines/), as Mermaid, DOT, SVG or the JSON
 * model the others are drawn from. The same output as the committed docs/diagrams/ (`npm run diagrams`).
 */
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import {
  DIAGRAM_FORMATS,
  DIAGRAM_MACHINE_NAMES,
  renderDiagram,
  type DiagramFormat,
  type DiagramMachineName,
} from '../diagram/render.js';

interface DiagramOptions {
  machine: DiagramMachineName;
  format: DiagramFormat;
  output?: string;
}

export function registerDiagramCommand(program: Command): void {
  program
    .command('diagram')
    .description('draw a state machine from its definition: Mermaid, Graphviz DOT, SVG, or the JSON model')
    .addOption(
      new Option('--machine <name>', 'which machine: a connection pair (connection), the proxy\'s root supervisor (proxy), a forwarded pair (forward) or the forwarder\'s root (forwarder)')
        .choices(DIAGRAM_MACHINE_NAMES)
        .default('connection'),
    )
    .addOption(new Option('--format <format>', 'output format').choices(DIAGRAM_FORMATS).default('mermaid'))
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  mxproxy diagram                                   # the connection machine as Mermaid, on stdout',
        '  mxproxy diagram --machine proxy --format svg -o proxy.svg',
        '  mxproxy diagram --format dot | dot -Tpng > connection.png',
        '  mxproxy diagram --format json | jq \'.transitions[] | select(.guard)\'',
      ].join('\n'),
    )
    .action(async (opts: DiagramOptions) => {
      const text = await renderDiagram(opts.machine, opts.format);
      if (opts.output === undefined) return void process.stdout.write(text);
      try {
        fs.writeFileSync(opts.output, text);
      } catch (err) {
        process.stderr.write(`mxproxy diagram: cannot write ${opts.output}: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
