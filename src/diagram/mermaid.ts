/**
 * A machine model as a Mermaid state diagram (stateDiagram-v2): compound states as composite states, entry /
 * exit actions and transitions without a target as description lines of their state (a note for a composite).
 *
 * Where a transition is written matters: Mermaid moves a state into the last composite that mentions it. So a
 * transition between two children of one composite is written in that composite, and every other one (across
 * composites, or between a composite and its own child) at the top level, outside them all, which moves nothing.
 */
import { mermaidId } from '../replay/mermaid.js';
import { childrenOf, compartmentLines, transitionLabel, type DiagramModel, type DiagramState } from './walk.js';

/**
 * Text for a label: Mermaid ends a statement at `;` and a line at a newline, reads `#…;` as an entity code and
 * shows labels as HTML; the characters its grammar or HTML would take (an `&` only where it could start a
 * reference: `&&` stays readable) are written as entity codes, which Mermaid turns back.
 */
export function mermaidText(s: string): string {
  return s.replace(/\r?\n/g, ' ').replace(/[#;"<>{}]|&(?=[#\w])/g, (c) => `#${c.charCodeAt(0)};`);
}

export function mermaidDiagramOf(model: DiagramModel, header: string[] = []): string {
  const ids = new Map<string, string>();
  const taken = new Set<string>();
  for (const s of model.states) {
    const base = mermaidId(s.path === '' ? model.machine : s.path);
    let id = base;
    // Two paths that sanitize to the same id ("a.b" and "a_b", or the root and a state named like the machine) stay apart.
    for (let n = 2; taken.has(id); n++) id = `${base}_${n}`;
    taken.add(id);
    ids.set(s.path, id);
  }
  const idOf = (path: string) => ids.get(path)!;

  // Transitions by the composite they are written in ('' the root's block, null the top level).
  const parentOf = new Map(model.states.map((s) => [s.path, s.parent]));
  const byBlock = new Map<string | null, string[]>();
  for (const t of model.transitions) {
    if (t.targets.length === 0) continue; // shown in the state's compartment
    for (const target of t.targets) {
      const parent = parentOf.get(t.source) ?? null;
      const block = parent !== null && parentOf.get(target) === parent ? parent : null;
      const list = byBlock.get(block) ?? [];
      list.push(`${idOf(t.source)} --> ${idOf(target)} : ${mermaidText(transitionLabel(t))}`);
      byBlock.set(block, list);
    }
  }

  const lines = ['stateDiagram-v2', ...header.map((h) => `    %% ${h.replace(/\r?\n/g, ' ')}`)];
  const root = model.states.find((s) => s.parent === null)!;
  const emit = (s: DiagramState, indent: string): void => {
    const id = idOf(s.path);
    const compartment = compartmentLines(model, s);
    const children = childrenOf(model, s.path);
    if (children.length === 0) {
      // The key as title: a lone description line would otherwise replace the state's name.
      lines.push(`${indent}state "${mermaidText(s.key)}" as ${id}`);
      for (const c of compartment) lines.push(`${indent}${id} : ${mermaidText(c)}`);
    } else {
      lines.push(`${indent}state ${id} {`);
      const inner = `${indent}    `;
      if (s.initial !== null) lines.push(`${inner}[*] --> ${idOf(s.initial)}`);
      for (const child of children) emit(child, inner);
      for (const child of children) if (child.final) lines.push(`${inner}${idOf(child.path)} --> [*]`);
      lines.push(...(byBlock.get(s.path) ?? []).map((l) => inner + l));
      lines.push(`${indent}}`);
      if (compartment.length) {
        lines.push(`${indent}note right of ${id}`);
        for (const c of compartment) lines.push(`${indent}    ${mermaidText(c)}`);
        lines.push(`${indent}end note`);
      }
    }
  };
  lines.push(`    [*] --> ${idOf(root.path)}`);
  emit(root, '    ');
  lines.push(...(byBlock.get(null) ?? []).map((l) => `    ${l}`));
  return `${lines.join('\n')}\n`;
}
