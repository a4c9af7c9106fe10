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
