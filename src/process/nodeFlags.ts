/**
 * The V8 flags the proxy runs with where it is started by something of ours: the systemd unit
 * (scripts/mxproxy.service), `npm start` (package.json) and `npm run bench`. Workers inherit them (node:cluster
 * passes the primary's execArgv on). A test keeps the three in agreement.
 *
 * `--max-semi-space-size=32` (MiB; Node 20 on 64-bit: 16): a larger young generation. Under bulk forwarding
 * chunks wait in write queues long enough to survive two scavenges and be promoted; once V8 has settled on a
 * tight old-generation limit (it does after a burst of connections, not always) every few hundred KiB
 * promoted cost a full mark-compact — about 70 in 4 s, one-stream throughput down by a third, measured. With
 * 32 MiB the chunks die young: at most 9 mark-compacts in the same run. It costs up to ~30 MiB more RSS
 * (measured with 2,000 idle pairs), whatever the number of pairs. See docs/performance.md.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
