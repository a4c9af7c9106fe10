/**
 * A machine's definition as plain data, read from XState's state nodes (machine.root and below): every state,
 * every transition with its event, guard and actions, entry and exit actions. The diagrams are drawn from this
 * model alone, so they show what the machine is, not what someone remembered to draw.
 *
 * Paths name states: "handshake.tls" is the key path below the root; the root itself is "".
 */
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

/** An action as the diagram shows it: its name and, where they are static and short, its params. */
export interface DiagramAction {
  name: string;
  /** "handshake" for `{ type: 'startTimer', params: { timer: 'handshake' } }`; absent when dynamic. */
  params?: string;
}

export interface DiagramState {
  /** XState's id: "connection.handshake.tls". */
  id: string;
  /** Key path below the root: "handshake.tls"; "" for the root. */
  path: string;
  key: string;
  /** Path of the parent; null for the root. */
  parent: string | null;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** Path of the initial child of a compound state. */
  initial: string | null;
  final: boolean;
  entry: DiagramAction[];
  exit: DiagramAction[];
  description?: string;
}

export interface DiagramTransition {
  /** Path of the state that declares the transition. */
  source: string;
  /** The event descriptor as declared ("REQUEST", "*", "xstate.done.actor.*"); null for an eventless `always`. */
  event: string | null;
  /** Paths of the targets; empty when the transition stays where it is and only runs its actions. */
  targets: string[];
  /** `isCurrentAttempt && hasNextAddress` for and([...]); null when unguarded. */
  guard: string | null;
  actions: DiagramAction[];
  /** Exits and re-enters the target even when it is the source (or an ancestor of it). */
  reenter: boolean;
}

export interface DiagramModel {
  /** The machine's id: "connection". */
  machine: string;
  /** Depth first, in definition order: a parent before its children. */
  states: DiagramState[];
  /** By source state in `states` order, then as declared; a state's `always` after its events. */
  transitions: DiagramTransition[];
}

export function walkMachine(machine: AnyStateMachine): DiagramModel {
  const states: DiagramState[] = [];
  const transitions: DiagramTransition[] = [];
  const visit = (node: AnyStateNode): void => {
    const path = pathOf(node);
    const initialTarget = (node.initial as { target?: readonly AnyStateNode[] } | undefined)?.target?.[0];
    const state: DiagramState = {
      id: node.id,
      path,
      key: node.key,
      parent: node.parent ? pathOf(node.parent) : null,
      type: node.type,
      initial: node.type === 'compound' && initialTarget ? pathOf(initialTarget) : null,
      final: node.type === 'final',
      entry: actionsOf(node.entry),
      exit: actionsOf(node.exit),
    };
    if (node.description) state.description = node.description;
    states.push(state);
    for (const [descriptor, list] of node.transitions) for (const t of list) transitions.push(transitionOf(path, descriptor, t));
    for (const t of node.always ?? []) transitions.push(transitionOf(path, null, t));
    for (const child of Object.values(node.states)) visit(child as AnyStateNode);
  };
  visit(machine.root);
  return { machine: machine.id, states, transitions };
}

/** How a renderer names an event: eventless transitions are `always`, delayed ones `after <delay>`. */
export function eventLabel(event: string | null): string {
  if (event === null) return 'always';
  // Delayed transitions are keyed xstate.after.<delay>.<state id>.
  const after = /^xstate\.after\.([^.]+)\./.exec(event);
  if (after) return /^\d+$/.test(after[1]!) ? `after ${after[1]}ms` : `after ${after[1]}`;
  return event;
}

export function actionLabel(a: DiagramAction): string {
  return a.params === undefined ? a.name : `${a.name}(${a.params})`;
}

/** `EVENT [guard] / action, action`: the UML transition label. */
export function transitionLabel(t: DiagramTransition): string {
  return [
    eventLabel(t.event) + (t.reenter ? ' (reenter)' : ''),
    t.guard === null ? null : `[${t.guard}]`,
    t.actions.length ? `/ ${t.actions.map(actionLabel).join(', ')}` : null,
  ]
    .filter((s) => s !== null)
    .join(' ');
}

/** A state's compartment: entry and exit actions, then the transitions that stay in it (no target). */
export function compartmentLines(model: DiagramModel, state: DiagramState): string[] {
  return [
    ...(state.entry.length ? [`entry / ${state.entry.map(actionLabel).join(', ')}`] : []),
    ...(state.exit.length ? [`exit / ${state.exit.map(actionLabel).join(', ')}`] : []),
    ...model.transitions.filter((t) => t.source === state.path && t.targets.length === 0).map(transitionLabel),
  ];
}

export function childrenOf(model: DiagramModel, path: string): DiagramState[] {
  return model.states.filter((s) => s.parent === path);
}

function pathOf(node: AnyStateNode): string {
  return node.path.join('.');
}

// XState's definitions keep actions and guards as given: a name, `{ type, params }`, or a function (an inline
// implementation, or a built-in such as assign / and() that carries its arguments as properties). These local
// shapes read just those properties.
type ActionDef = string | { type: string; params?: unknown } | ((...args: never[]) => unknown);
type BuiltinFn = { type?: unknown; assignment?: unknown; event?: unknown; name: string };
type GuardDef = string | { type: string; params?: unknown } | ((...args: never[]) => unknown);
type CompositeGuardFn = { name: string; guards?: GuardDef[]; stateValue?: unknown };

function transitionOf(source: string, event: string | null, t: AnyTransitionDefinition): DiagramTransition {
  return {
    source,
    event,
    targets: (t.target ?? []).map((n) => pathOf(n as AnyStateNode)),
    guard: t.guard === undefined ? null : guardLabel(t.guard as GuardDef, true),
    actions: actionsOf(t.actions),
    reenter: t.reenter === true,
  };
}

function actionsOf(list: unknown): DiagramAction[] {
  return (Array.isArray(list) ? (list as ActionDef[]) : []).map(actionOf);
}

function actionOf(a: ActionDef): DiagramAction {
  if (typeof a === 'string') return { name: a };
  if (typeof a === 'function') {
    const fn = a as unknown as BuiltinFn;
    if (typeof fn.type === 'string' && fn.type.startsWith('xstate.')) {
      const name = fn.type.slice('xstate.'.length);
      // An assign with an object names the context keys it updates; one with a function cannot say.
      if (name === 'assign' && fn.assignment && typeof fn.assignment === 'object' && Object.keys(fn.assignment).length) {
        return { name, params: Object.keys(fn.assignment).join(', ') };
      }
      if (name === 'raise' && fn.event && typeof fn.event === 'object') return { name, params: String((fn.event as { type?: unknown }).type) };
      return { name };
    }
    return { name: fn.name || 'inline' };
  }
  const params = staticParams(a.params);
  return params === undefined ? { name: a.type } : { name: a.type, params };
}

/**
 * Static params as their values, when they are words: `closeSockets(abort)`, `decline(ERR_SHUTTING_DOWN, ...)`.
 * A long or free-text value shows as `...` (ASCII: Graphviz has no width for other characters); params computed
 * from context and event (a function) are not shown.
 */
function staticParams(params: unknown): string | undefined {
  if (params === undefined || params === null || typeof params !== 'object') return undefined;
  const values = Object.values(params as Record<string, unknown>);
  if (values.length === 0) return undefined;
  return values
    .map((v) => {
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      if (v === '') return '""';
      if (typeof v === 'string' && /^[\w.:@*-]{1,32}$/.test(v)) return v;
      return '...';
    })
    .join(', ');
}

function guardLabel(g: GuardDef, top: boolean): string {
  if (typeof g === 'string') return g;
  if (typeof g !== 'function') return g.type;
  const fn = g as unknown as CompositeGuardFn;
  const parts = fn.guards?.map((inner) => guardLabel(inner, false));
  // and() / or() / not() are functions named after themselves that carry their operands in `guards`.
  if (parts && fn.name === 'and') return wrap(parts.join(' && '), top);
  if (parts && fn.name === 'or') return wrap(parts.join(' || '), top);
  if (parts && fn.name === 'not') return `!${parts[0] ?? ''}`;
  if (fn.name === 'stateIn') return `in(${JSON.stringify(fn.stateValue)})`;
  return fn.name || 'inline';
}

function wrap(s: string, top: boolean): string {
  return top ? s : `(${s})`;
}
