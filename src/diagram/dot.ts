/**
 * A machine model as Graphviz DOT: compound states (and the machine itself) as clusters, atomic states as
 * rounded boxes, the final state with a double border, UML labels `EVENT [guard] / actions`. Entry / exit
 * actions and transitions without a target are listed in their state's box or cluster title.
 *
 * An edge to or from a compound state ends at its cluster's border (compound=true with lhead / ltail), drawn to
 * the cluster's initial point; one from a compound state to its own descendant starts at a small point inside it.
 * The transitions between one pair of states share an edge, a label line each: the layout stays readable.
 */
import { childrenOf, compartmentLines, transitionLabel, type DiagramModel, type DiagramState } from './walk.js';

/**
 * A DOT quoted string. Graphviz reads `\` escapes (`\n`, `\l`, `\N`, …) and HTML entities in labels, so a
 * backslash is doubled, a quote escaped, and an `&` that would start an entity written as `&amp;`.
 */
export function dotString(s: string): string {
  return `"${escapeLine(s)}"`;
}

function escapeLine(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/&(?=#?\w+;)/g, '&amp;').replace(/\r?\n/g, ' ');
}

/**
 * A label of several lines: `centred` lines (joined by `\n`), then `left` lines (each ended by `\l`,
 * left-justified), every line escaped on its own.
 */
function dotLabel(centred: string[], left: string[] = []): string {
  const c = centred.map(escapeLine).join('\\n');
  const l = left.map((line) => `${escapeLine(line)}\\l`).join('');
  return `"${c}${c && l ? '\\n' : ''}${l}"`;
}

export function dotDiagramOf(model: DiagramModel, header: string[] = []): string {
  const byPath = new Map(model.states.map((s) => [s.path, s]));
  const compound = (path: string) => childrenOf(model, path).length > 0;
  const nodeId = (s: DiagramState) => dotString(s.id);
  const initialId = (s: DiagramState) => dotString(`${s.id}#initial`);
  const anchorId = (s: DiagramState) => dotString(`${s.id}#anchor`);
  const clusterId = (s: DiagramState) => dotString(`cluster_${s.id}`);
  const inside = (path: string, container: string) => container === '' || path === container || path.startsWith(`${container}.`);
  // Compound states with a transition to themselves or a descendant: those start at an anchor point inside.
  const anchored = new Set(
    model.transitions.filter((t) => compound(t.source) && t.targets.some((x) => inside(x, t.source))).map((t) => t.source),
  );

  const lines = header.map((h) => `// ${h.replace(/\r?\n/g, ' ')}`);
  lines.push(`digraph ${dotString(model.machine)} {`);
  lines.push('  compound=true;');
  lines.push('  graph [fontname="Helvetica", fontsize=11, labeljust=l, nodesep=0.4, ranksep=0.5];');
  lines.push('  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];');
  lines.push('  edge [fontname="Helvetica", fontsize=9];');

  const emit = (s: DiagramState, indent: string): void => {
    const compartment = compartmentLines(model, s);
    if (!compound(s.path)) {
      lines.push(`${indent}${nodeId(s)} [label=${dotLabel([s.key], compartment)}${s.final ? ', peripheries=2' : ''}];`);
      return;
    }
    lines.push(`${indent}subgraph ${clusterId(s)} {`);
    const inner = `${indent}  `;
    const title = s.path === '' ? `${model.machine} (machine)` : s.key;
    lines.push(`${inner}label=${dotLabel([], [title, ...compartment])};`);
    lines.push(`${inner}style=rounded;`);
    lines.push(`${inner}${initialId(s)} [shape=point, width=0.12, label=""];`);
    if (anchored.has(s.path)) lines.push(`${inner}${anchorId(s)} [shape=point, width=0.05, label=""];`);
    for (const child of childrenOf(model, s.path)) emit(child, inner);
    lines.push(`${indent}}`);
  };
  const root = model.states.find((s) => s.parent === null)!;
  emit(root, '  ');

  // Where an edge attaches to a state: the node itself, or a compound state's initial point and cluster.
  const end = (s: DiagramState) => (compound(s.path) ? { node: initialId(s), cluster: clusterId(s) } : { node: nodeId(s), cluster: null });
  for (const s of model.states) {
    if (s.initial === null) continue;
    const target = end(byPath.get(s.initial)!);
    lines.push(`  ${initialId(s)} -> ${target.node}${attrs([target.cluster ? `lhead=${target.cluster}` : null])};`);
  }
  // One edge per pair of states, one label line per transition between them: fewer crossing edges.
  const edges = new Map<string, { source: DiagramState; target: DiagramState; labels: string[] }>();
  for (const t of model.transitions) {
    for (const targetPath of t.targets) {
      const key = JSON.stringify([t.source, targetPath]);
      const edge = edges.get(key) ?? { source: byPath.get(t.source)!, target: byPath.get(targetPath)!, labels: [] };
      edge.labels.push(transitionLabel(t));
      edges.set(key, edge);
    }
  }
  for (const { source, target, labels } of edges.values()) {
    let from = end(source);
    // ltail cannot clip at a cluster the head is inside of.
    if (compound(source.path) && inside(target.path, source.path)) from = { node: anchorId(source), cluster: null };
    const to = end(target);
    const lhead = to.cluster && !inside(source.path, target.path) ? `lhead=${to.cluster}` : null;
    const ltail = from.cluster ? `ltail=${from.cluster}` : null;
    lines.push(`  ${from.node} -> ${to.node}${attrs([`label=${dotLabel([], labels)}`, ltail, lhead])};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function attrs(list: Array<string | null>): string {
  const present = list.filter((a): a is string => a !== null);
  return present.length ? ` [${present.join(', ')}]` : '';
}
