/** mxproxy as a library: run the proxy, or connect through one. */
export { startProxy, type ProxyHandle, type ProxyOptions, type ProxyStats } from './proxy/runtime.js';
export { clientSecureContext, connect, TlsSessionCache, type ConnectOptions } from './client/connect.js';
export { loadProxyConfig, readProxyConfig, describeConfig, type ProxyConfig } from './config/index.js';
export { ReplyCode, ALL_REPLY_CODES } from './shared/codes.js';
export {
  MxError,
  ConfigError,
  DialError,
  EventLogError,
  ListenError,
  ProxyConnectError,
  ProxyDeclinedError,
  TlsMaterialError,
  ALL_ERROR_CODES,
  ERROR_CODES,
  type ErrorCode,
} from './errors.js';
export { createLogger, type Logger } from './log.js';
export { startForwarder, type Forwarder, type ForwarderOptions } from './forward/forwarder.js';
export { loadClientConfig, readClientConfig, type ClientConfig } from './config/index.js';
export { replayFiles, logSeries, type ReplayFilesResult } from './replay/run.js';
export { readEventLogFile, iterateEventLogFile, type EventLogStop } from './eventlog/index.js';
