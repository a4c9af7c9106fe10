/**
 * JSON with object keys sorted and undefined-valued keys left out: the same data gives the same text whatever
 * order its keys were set in. The config hash is taken over it, and replay compares recorded values with
 * replayed ones by it (a value read back from the event log has its keys in the writer's order).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  if (typeof value === 'bigint') return JSON.stringify(String(value));
  return JSON.stringify(value) ?? 'null';
}

/** Whether two plain values are the same data (see canonicalJson). */
export const sameData = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);
