/** The connection machine's side-effect actions: what src/ provides and machine tests record. */
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

/** The forward machine's side-effect actions (machines/forward.ts), provided by src/forward/effects.ts. */
export const FORWARD_EFFECTS = ['startTimer', 'cancelTimer', 'dialUpstream', 'abortDial', 'sendRequest', 'link', 'closeSockets'] as const;
