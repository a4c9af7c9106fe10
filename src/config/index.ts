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
