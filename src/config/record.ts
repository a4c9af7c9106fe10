/**
 * The effective configuration as one object, for a JSON log record (`--dbg work --log-format json`): the text
 * of describeConfig / describeClientConfig read back, so the object and the text can never disagree.
 */
import { parseConfigText, sectionEntries } from './parse.js';
import type { KeyDoc } from './types.js';

/** `{ <key>: value }` for every documented key: a list for repeatable keys, null when not set. */
export function configRecord(describeText: string, section: string, keys: readonly KeyDoc<string>[]): Record<string, unknown> {
  const entries = sectionEntries(parseConfigText(describeText, '<effective configuration>'), section);
  const record: Record<string, unknown> = {};
  for (const doc of keys) {
    const values = entries.filter((e) => e.key === doc.name).map((e) => e.value.value);
    record[doc.name] = doc.repeatable ? values : (values[0] ?? null);
  }
  return record;
}
