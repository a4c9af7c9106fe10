/**
 * One connection's path through the machine as a Mermaid state diagram (paste into a Markdown file, or
 * `mmdc -i path.mmd`):
 *
 *   stateDiagram-v2
 *       state "handshake.tls" as handshake_tls
 *       …
 *       [*] --> handshake_tls
 *       handshake_tls --> handshake_awaitingRequest: 1 TLS_OK
 *       …
 *       closed --> [*]
 *
 * Mermaid ids cannot contain dots, so each state path gets an id with `_` and the path as its label.
 */
import type { LogRecord, TransitionRecord } from '../eventlog/records.js';
import { printable } from '../shared/printable.js';
import type { ConnectionView } from './connections.js';

/** A Mermaid-safe id for a state path: "handshake.tls" → "handshake_tls". */
export function mermaidId(path: string): string {
  const id = path.replace(/[^A-Za-z0-9_]/g, '_');
  // Ids must not start with a digit, and a few words are diagram keywords.
  return /^[0-9]/.test(id) || /^(state|note|end|direction|class|classDef|click|style)$/.test(id) ? `s_${id}` : id || 's_';
}

/** Text from the log in a label or comment: escaped (see src/shared/printable.ts), no double quotes. */
const label = (s: string) => printable(s).replace(/"/g, "'");

/** The diagram's lines, from the connection's transition records in log order. */
export function mermaidDiagram(view: Pick<ConnectionView, 'id' | 'peer' | 'target' | 'identity'>, records: LogRecord[]): string[] {
  const transitions = records.filter((r): r is TransitionRecord => r.k === 'x');
  const facts = [
    `connection ${printable(view.id)}`,
    view.peer ? `peer ${printable(view.peer)}` : '',
    view.identity ? `identity ${printable(view.identity)}` : '',
    view.target ? `target ${printable(view.target)}` : '',
  ].filter(Boolean);
  const lines = ['stateDiagram-v2', `    %% ${facts.join(', ')}`];

  const states = new Map<string, string>();
  const idOf = (path: string): string => {
    let id = states.get(path);
    if (id === undefined) {
      id = mermaidId(path);
      // Two paths that sanitize to the same id ("a.b" and "a_b") stay apart.
      const taken = new Set(states.values());
      for (let n = 2; taken.has(id); n++) id = `${mermaidId(path)}_${n}`;
      states.set(path, id);
    }
    return id;
  };
  for (const x of transitions) {
    if (x.from !== null) idOf(x.from);
    idOf(x.to);
  }
  for (const [path, id] of states) if (path !== id) lines.push(`    state "${label(path)}" as ${id}`);

  let step = 0;
  for (const [i, x] of transitions.entries()) {
    if (x.from === null) {
      lines.push(`    [*] --> ${idOf(x.to)}`);
      continue;
    }
    // A connection whose start is not in the log begins where its first recorded transition leaves from.
    if (i === 0) lines.push(`    [*] --> ${idOf(x.from)}`);
    step++;
    lines.push(`    ${idOf(x.from)} --> ${idOf(x.to)}: ${step} ${label(x.on)}`);
  }
  const last = transitions.at(-1);
  if (last?.to === 'closed') lines.push(`    ${idOf('closed')} --> [*]`);
  return lines;
}
