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
export {
  PROXY_KEYS,
  PROXY_SECTION,
  parseHostPort,
  formatHostPort,
  suggestKey,
  type KeyDoc,
  type ProxyKeyName,
  type ProxySectionOptions,
} from './proxySection.js';
export { readProxyConfig, loadProxyConfig, describeConfig, type ReadProxyConfigOptions } from './load.js';
