/**
 * Effects in the event log (`f` records): every side effect a pair's machine asks for, with its parameters,
 * in order. They are recorded where src/ provides the machines' named actions — the provided implementations
 * are wrapped once, at provide time — so the machines stay pure. Replay wraps no-op implementations the same
 * way (`noopEffects`), so live and replay record the same list from the same code.
 */

/** The connection machine's effects (machines/connection.ts), implemented by src/proxy/effects.ts. */
export const CONNECTION_EFFECTS = [
  'startTimer',
  'cancelTimer',
  'readRequest',
  'authorize',
  'dialBackend',
  'abortDial',
  'link',
  'sendDecline',
  'closeSockets',
] as const;
export type ConnectionEffect = (typeof CONNECTION_EFFECTS)[number];

/** The forward machine's effects (machines/forward.ts), implemented by src/forward/effects.ts. */
export const FORWARD_EFFECTS = ['startTimer', 'cancelTimer', 'dialUpstream', 'abortDial', 'sendRequest', 'link', 'closeSockets'] as const;
export type ForwardEffect = (typeof FORWARD_EFFECTS)[number];

/** Told of each effect as it is called: the pair's id (its context's), the action's name, its parameters. */
export type EffectSink = (id: string, name: string, params: unknown) => void;

/** An XState action implementation, as far as the wrapper is concerned: called with (args, params). */
type ActionImpl = (args: never, params: never) => void;

/**
 * `actions` with each call told to `sink` first. Built once per runtime (not per pair or per call): the cost
 * per effect is one call and the record the sink makes.
 */
export function recordEffects<T extends Record<string, ActionImpl>>(actions: T, sink: EffectSink): T {
  const out: Record<string, ActionImpl> = {};
  for (const [name, impl] of Object.entries(actions)) {
    out[name] = (args: never, params: never) => {
      const a: { context?: { id?: unknown } } = args;
      const id = a.context?.id;
      if (typeof id === 'string') sink(id, name, params);
      impl(args, params);
    };
  }
  return out as T;
}

/** Implementations that do nothing, under the effects' names: what replay runs the machines with. */
export function noopEffects<N extends string>(names: readonly N[]): Record<N, () => void> {
  const out = {} as Record<N, () => void>;
  for (const name of names) out[name] = () => undefined;
  return out;
}
