/**
 * The machines that can be drawn and the formats they are drawn in: what `mxproxy diagram` and
 * `npm run diagrams` share. SVG pulls in Graphviz (WebAssembly), so its module is imported only when asked for.
 */
import type { AnyStateMachine } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import { forwardMachine } from '../../machines/forward.js';
import { forwarderMachine } from '../../machines/forwarder.js';
import { proxyMachine } from '../../machines/proxy.js';
import { dotDiagramOf } from './dot.js';
import { mermaidDiagramOf } from './mermaid.js';
import { walkMachine, type DiagramModel } from './walk.js';

/** The bare machines: their definitions, no effects provided (the diagram reads them, runs nothing). */
export const DIAGRAM_MACHINES = {
  connection: { machine: connectionMachine as AnyStateMachine, source: 'machines/connection.ts' },
  proxy: { machine: proxyMachine as AnyStateMachine, source: 'machines/proxy.ts' },
  forward: { machine: forwardMachine as AnyStateMachine, source: 'machines/forward.ts' },
  forwarder: { machine: forwarderMachine as AnyStateMachine, source: 'machines/forwarder.ts' },
} as const;
export type DiagramMachineName = keyof typeof DIAGRAM_MACHINES;
export const DIAGRAM_MACHINE_NAMES = Object.keys(DIAGRAM_MACHINES) as DiagramMachineName[];

export const DIAGRAM_FORMATS = ['mermaid', 'svg', 'dot', 'json'] as const;
export type DiagramFormat = (typeof DIAGRAM_FORMATS)[number];

export function diagramModel(name: DiagramMachineName): DiagramModel {
  return walkMachine(DIAGRAM_MACHINES[name].machine);
}

/** The diagram as text (SVG is text too); ends with a newline. */
export async function renderDiagram(name: DiagramMachineName, format: DiagramFormat): Promise<string> {
  const model = diagramModel(name);
  const header = [`The ${model.machine} machine, generated from ${DIAGRAM_MACHINES[name].source} by \`mxproxy diagram\` (npm run diagrams): do not edit.`];
  switch (format) {
    case 'json':
      return `${JSON.stringify(model, null, 2)}\n`;
    case 'mermaid':
      return mermaidDiagramOf(model, header);
    case 'dot':
      return dotDiagramOf(model, header);
    case 'svg':
      return (await import('./svg.js')).svgOf(dotDiagramOf(model), header);
  }
}

/** The files `npm run diagrams` writes to docs/diagrams/ (and the drift test regenerates): name → content. */
export async function committedDiagrams(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of DIAGRAM_MACHINE_NAMES) {
    files.set(`${name}.mmd`, await renderDiagram(name, 'mermaid'));
    files.set(`${name}.dot`, await renderDiagram(name, 'dot'));
    files.set(`${name}.svg`, await renderDiagram(name, 'svg'));
  }
  return files;
}
