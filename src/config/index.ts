export * from './types.js';
export {
  parseConfigText,
  sectionEntries,
  hasSection,
  type ConfigValue,
  type ConfigEntry,
  type ConfigSection,
  type ParsedConfig,
} from './parse.js';
export { PROXY_KEYS, PROXY_SECTION, type KeyDoc, type ProxyKeyName } from './proxyKeys.js';
export type { ProxySectionOptions } from './proxySection.js';
export { suggestKey } from './suggest.js';
export { readProxyConfig, loadProxyConfig, describeConfig, type ReadProxyConfigOptions } from './load.js';
export {
  CLIENT_KEYS,
  CLIENT_SECTION,
  CLIENT_DEFAULTS,
  GENERAL_SECTION,
  PROXY_OFF,
  buildClientConfig,
  type ClientConfig,
  type ClientKeyName,
  type ClientSectionOptions,
  type ForwardRule,
} from './clientSection.js';
export { readClientConfig, loadClientConfig, describeClientConfig, type ReadClientConfigOptions } from './clientLoad.js';
export { configRecord } from './record.js';
export { LOG_DEFAULTS, LOG_KEY_DOCS, logFileProblem, parseSyslogUrl, resolveLogTargets, type LogFlags, type LogKeyName } from './logKeys.js';
