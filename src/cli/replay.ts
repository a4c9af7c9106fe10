/**
 * `mxproxy replay <log>`: feeds a recorded event log back through the machines that wrote it — the proxy's
 * connection machines, or a forwarder's forward machines, as its header says (no sockets, no timers: only the
 * replay modules and fs), checks every microstep, effect, output and authorization decision against the log
 * (states only for a version-1 log), and shows what happened: a timeline per connection, JSON lines, or one
 * connection's path as a Mermaid diagram.
 *
 * Where things go:
 *   timeline  stdout: connection blocks, the proxy section, a divergence report, and the summary as the LAST
 *             line; stderr: the list of files, a damaged/unreadable log's error, the progress bar
 *   json      stdout: one line per record, a `{"run": …}` line at the start of each proxy run, and
 *             `{"summary": …}` as the last line; stderr: the human summary, divergence report, errors
 *   mermaid   stdout: the diagram only (redirect it to a .mmd file); stderr: everything else
 *
 * With --config NEW.config it replays nothing: every request is decided again under the new servers and rules
 * (replay/whatif.ts) and the connections whose outcome would change are listed; exit 0 none, 1 some.
 *
 * Exit status: 0 everything matches, 1 a divergence, 2 a usage problem or a log that is not a log,
 * damaged or unreadable (what was replayed before it is still shown), 3 an internal error.
 */
import type { Command } from 'commander';
import { CommanderError, Option } from 'commander';
import type { LogRecord } from '../eventlog/records.js';
import { ConnectionTracker, type ConnectionView, type TrackerMode, type TrackerSink } from '../replay/connections.js';
import { UsageError } from '../errors.js';
import { hasFilter, parseTime, type ReplayFilter } from '../replay/filter.js';
import { jsonLine, jsonSummary } from '../replay/json.js';
import { mermaidDiagram } from '../replay/mermaid.js';
import { ProgressBar } from '../replay/progress.js';
import { divergenceReport, errorLine, summaryLine } from '../replay/report.js';
import { planSeries, replayRuns, workerPrefix, type LogRun, type ReplayRunsResult, type RunPlan } from '../replay/runs.js';
import { seriesToReplay } from '../replay/series.js';
import { formatConnection, formatLate, formatProxySection, type TimelineStyle } from '../replay/timeline.js';
import { whatIf, whatIfJson, whatIfSummary, whatIfTable } from '../replay/whatif.js';
import { Authorizer } from '../auth/rules.js';
import { loadProxyConfig, type ProxyConfig } from '../config/index.js';
import { configSnapshot } from '../config/snapshot.js';
import { ConfigError } from '../errors.js';
import { singleLine } from '../shared/printable.js';

const USAGE_EXIT = 2;
const DIVERGENCE_EXIT = 1;
const INTERNAL_EXIT = 3;
const FORMATS = ['timeline', 'json', 'mermaid'] as const;
type Format = (typeof FORMATS)[number];

interface ReplayOptions {
  /** What-if: decide every request again under this config instead of replaying. */
  config?: string;
  connection?: string;
  target?: string;
  from?: string;
  until?: string;
  format: Format;
  single?: boolean;
  progress: boolean;
}

/** stdout in large writes (a log can have millions of lines), stderr at once; the bar is cleared first. */
class Output {
  private pending: string[] = [];
  private size = 0;

  constructor(private readonly bar: ProgressBar) {}

  line(s: string): void {
    this.pending.push(s);
    this.size += s.length + 1;
    if (this.size > 64 * 1024) this.flush();
  }

  lines(list: string[]): void {
    for (const s of list) this.line(s);
  }

  err(s: string): void {
    this.flush();
    this.bar.clear();
    process.stderr.write(`${s}\n`);
  }

  flush(): void {
    if (this.pending.length === 0) return;
    this.bar.clear();
    process.stdout.write(`${this.pending.join('\n')}\n`);
    this.pending = [];
    this.size = 0;
  }
}

/** What each format does with the tracker's output; `finish` prints the end and returns the exit status. */
interface Presenter {
  mode: TrackerMode;
  sink(run: LogRun): TrackerSink;
  runStart(run: LogRun, runs: number): void;
  /** Before the run's remaining connections are handed over; `stopped`: replay stopped early (divergence, error). */
  runEnding(stopped: boolean): void;
  runEnd(run: LogRun): void;
  finish(r: ReplayRunsResult, shown: number, total: number, context: LogRecord[]): number;
}

function exitStatus(r: ReplayRunsResult): number {
  if (r.error) return USAGE_EXIT;
  if (r.divergence) return DIVERGENCE_EXIT;
  return 0;
}

function timelinePresenter(out: Output, style: TimelineStyle, filter: ReplayFilter): Presenter {
  let root: LogRecord[] = [];
  let openNote: string | undefined;
  return {
    mode: 'block',
    sink: () => ({
      connection: (view, open) => {
        out.lines(formatConnection(view, open, style, openNote));
        out.line('');
      },
      late: (r, first, id) => out.line(formatLate(r, id, first, style)),
      root: (r) => root.push(r),
    }),
    runStart: (run, runs) => {
      root = [];
      if (runs > 1) out.line(`=== ${workerPrefix(run)}proxy run ${run.index} of ${runs}: ${run.files.join(', ')}`);
    },
    runEnding: (stopped) => {
      openNote = stopped ? 'still open where replay stopped' : undefined;
    },
    runEnd: (run) => {
      const lines = formatProxySection(run.header, root, style);
      if (lines.length > 0) out.lines([...lines, '']);
    },
    finish: (r, shown, total, context) => {
      if (r.divergence) out.lines(divergenceReport(r.divergence.divergence, context, r.divergence.run.worker));
      const error = errorLine(r);
      if (error) out.err(`mxproxy replay: ${error}`);
      out.line(summaryLine(r, hasFilter(filter) ? { shown, total } : undefined));
      return exitStatus(r);
    },
  };
}

function jsonPresenter(out: Output, filter: ReplayFilter): Presenter {
  return {
    mode: 'stream',
    sink: () => ({ record: (r) => out.line(jsonLine(r)), root: (r) => out.line(jsonLine(r)) }),
    runStart: (run) => out.line(jsonLine({ run: { index: run.index, worker: run.worker ?? null, files: run.files, header: run.header ?? null } })),
    runEnding: () => undefined,
    runEnd: () => undefined,
    finish: (r, shown, total, context) => {
      if (r.divergence) for (const l of divergenceReport(r.divergence.divergence, context, r.divergence.run.worker)) out.err(l);
      const error = errorLine(r);
      if (error) out.err(`mxproxy replay: ${error}`);
      out.line(jsonLine(jsonSummary(r, shown)));
      out.err(summaryLine(r, hasFilter(filter) ? { shown, total } : undefined));
      return exitStatus(r);
    },
  };
}

function mermaidPresenter(out: Output, filter: ReplayFilter): Presenter {
  let found: { view: ConnectionView; records: LogRecord[]; run: LogRun } | undefined;
  let others = 0;
  return {
    mode: 'block',
    sink: (run) => ({
      connection: (view) => {
        if (found) others++;
        else found = { view, records: [...view.records], run };
      },
    }),
    runStart: () => undefined,
    runEnding: () => undefined,
    runEnd: () => undefined,
    finish: (r, shown, total, context) => {
      if (found) out.lines(mermaidDiagram(found.view, found.records));
      if (r.divergence) for (const l of divergenceReport(r.divergence.divergence, context, r.divergence.run.worker)) out.err(l);
      const error = errorLine(r);
      if (error) out.err(`mxproxy replay: ${error}`);
      if (others > 0) {
        out.err(
          `mxproxy replay: connection ${filter.connection} appears in ${others + 1} proxy runs; the diagram shows ` +
            `${workerPrefix(found!.run)}run ${found!.run.index} (narrow it with --from/--until, or give one worker's log)`,
        );
      }
      out.err(summaryLine(r, { shown, total }));
      const status = exitStatus(r);
      if (!found && status === 0) {
        const narrowed = filter.target !== undefined || filter.from !== undefined || filter.until !== undefined;
        out.err(`mxproxy replay: connection ${filter.connection} is not in the log${narrowed ? ' (with these --target/--from/--until)' : ''}: no diagram`);
        return USAGE_EXIT;
      }
      return status;
    },
  };
}

function parseWindow(o: ReplayOptions, plan: RunPlan): Pick<ReplayFilter, 'from' | 'until'> {
  // Without a header in the first file nothing is replayed (replay stops there and says why), so the day
  // a bare HH:MM falls on does not matter then.
  const started = plan.runs[0]?.header?.started ?? Date.now();
  const read = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    try {
      return parseTime(text, started);
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${flag} ${err.message}`, { cause: err });
      throw err;
    }
  };
  const from = read('--from', o.from);
  const until = read('--until', o.until);
  if (from !== undefined && until !== undefined && from > until) {
    throw new UsageError(`--from ${o.from} is after --until ${o.until}: no connection could be shown`);
  }
  return { ...(from !== undefined ? { from } : {}), ...(until !== undefined ? { until } : {}) };
}

/**
 * `--config NEW.config`: every request decided again under the new servers and rules; the pairs whose outcome
 * would change, as a table or JSON lines. Exit 0 nothing would change, 1 something would, 2 a problem.
 */
async function whatIfCommand(plan: RunPlan, o: ReplayOptions, out: Output): Promise<number> {
  if (o.format === 'mermaid') throw new UsageError('--config decides the requests again: its output is a table (or --format json), not a diagram');
  let config: ProxyConfig;
  try {
    // The certificate files belong to the proxy's host: only the rules and servers are read here.
    config = loadProxyConfig(o.config!, { checkFiles: false });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`--config ${err.message}`, { cause: err });
    throw err;
  }
  const snapshot = configSnapshot(config);
  const result = await whatIf(plan, Authorizer.fromSnapshot(snapshot));
  const label = `${snapshot.file} (${snapshot.hash.slice(0, 12)})`;
  if (o.format === 'json') {
    for (const v of whatIfJson(result, snapshot)) out.line(jsonLine(v));
    out.err(whatIfSummary(result, label));
  } else {
    out.lines(whatIfTable(result, label, plan.runs.length));
  }
  if (result.error) {
    out.err(`mxproxy replay: ${singleLine(result.error.stop.message)}`);
    return USAGE_EXIT;
  }
  return result.changes.length > 0 ? DIVERGENCE_EXIT : 0;
}

async function replayCommand(log: string, more: string[], o: ReplayOptions): Promise<void> {
  const bar = new ProgressBar(process.stderr, process.stderr.isTTY === true && o.progress !== false);
  const out = new Output(bar);
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // `mxproxy replay … | head`: the reader has gone, so has the point of writing.
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  try {
    if (o.format === 'mermaid' && o.connection === undefined) {
      throw new UsageError('--format mermaid draws one connection: give --connection <id> (the ids are in the timeline)');
    }
    const series = await seriesToReplay(log, more, o.single);
    const files = series.flatMap((s) => s.files);
    const plan = await planSeries(series);
    if (o.config !== undefined) {
      process.exitCode = await whatIfCommand(plan, o, out);
      return;
    }
    if (files.length > 1) {
      const workers = series.filter((s) => s.worker !== undefined).length;
      const runs = workers > 1 ? ` (${workers} workers, ${plan.runs.length} runs)` : plan.runs.length > 1 ? ` (${plan.runs.length} proxy runs)` : '';
      out.err(`replaying ${files.length} files${runs}: ${files.join(', ')}`);
    }
    const filter: ReplayFilter = {
      ...(o.connection !== undefined ? { connection: o.connection } : {}),
      ...(o.target !== undefined ? { target: o.target } : {}),
      ...parseWindow(o, plan),
    };
    const style: TimelineStyle = { color: process.stdout.isTTY === true && !process.env.NO_COLOR };
    const presenter =
      o.format === 'json' ? jsonPresenter(out, filter) : o.format === 'mermaid' ? mermaidPresenter(out, filter) : timelinePresenter(out, style, filter);

    let tracker: ConnectionTracker | undefined;
    let current: LogRun | undefined;
    let context: LogRecord[] = [];
    let shown = 0;
    let total = 0;
    let preexisting = 0;
    const endRun = (stopped: boolean) => {
      if (!tracker || !current) return;
      presenter.runEnding(stopped);
      tracker.end();
      presenter.runEnd(current);
      shown += tracker.shown;
      total += tracker.total;
      preexisting += tracker.preexisting;
      tracker = undefined;
    };
    const result = await replayRuns(plan, {
      onRunStart: (run) => {
        current = run;
        tracker = new ConnectionTracker(filter, presenter.mode, presenter.sink(run));
        presenter.runStart(run, plan.runs.length);
      },
      onRecord: (r) => tracker!.add(r),
      onRunEnd: (res) => {
        const d = res.summary.divergence;
        if (d && tracker) context = tracker.context(d.id);
        endRun(d !== undefined || res.error !== undefined);
      },
      onProgress: (read, all) => bar.update(read, all),
    });
    endRun(true); // a run cut short by an I/O error
    // Replay counts the connections it skipped by their events; a connection of which only a transition or a
    // chunk is left in the log began before it too.
    result.preexisting = Math.max(result.preexisting, preexisting);
    process.exitCode = presenter.finish(result, shown, total, context);
  } catch (err) {
    if (err instanceof UsageError) {
      out.err(`mxproxy replay: ${err.message}`);
      process.exitCode = USAGE_EXIT;
    } else {
      out.err(`mxproxy replay: internal error: ${(err as Error)?.message ?? String(err)}`);
      if (process.env.MXPROXY_DEBUG) out.err(String((err as Error)?.stack));
      process.exitCode = INTERNAL_EXIT;
    }
  } finally {
    out.flush();
    bar.clear();
  }
}

export function registerReplayCommand(program: Command): void {
  const cmd = program
    .command('replay')
    .description("replay an event log (the proxy's or a forwarder's) through its machines, check every transition, show what happened")
    .argument('<log>', 'event log file; alone it means its rotated series (log.N … log.1, log), oldest first, and each worker\'s series of it (log name.wN.ext)')
    .argument('[more logs...]', 'further files or * ? patterns, replayed in the order given (no series lookup; a worker\'s files are grouped by worker, oldest first)')
    .option('--config <file>', 'what if: decide every recorded request again under this config\'s servers and rules, list the pairs that would change')
    .option('--connection <id>', 'show only this connection (ids are base 36, as in the timeline)')
    .option('--target <name>', 'show only connections that asked for this target')
    .option('--from <time>', 'show only connections with records at or after this time')
    .option('--until <time>', 'show only connections that began at or before this time')
    .addOption(new Option('--format <format>', 'output format').choices(FORMATS).default('timeline'))
    .option('--single', 'replay only <log> itself, not its rotated series')
    .option('--no-progress', 'no progress bar (there is none anyway when stderr is not a terminal)')
    .addHelpText(
      'after',
      [
        '',
        'Replay reads every record (a connection can only be reproduced from all of its events); the options',
        'above only choose what is shown. A connection is shown if its first..last record overlaps the window.',
        '',
        'Times: ISO 8601 (2026-11-25T03:12:00Z, or 2026-11-25T03:12 for local time), HH:MM[:SS[.mmm]] (local',
        'time on the day the log started), or milliseconds since the epoch.',
        '',
        'Output: timeline (default) prints a block per connection when it closes, the proxy\'s own records, and',
        'a summary as the last line of stdout ("replayed 120 events, 11 connections, all transitions match").',
        'json prints one line per record (bytes as base64) and a final {"summary": ...} line. mermaid prints',
        'a stateDiagram-v2 of one connection (--connection is required). Other messages go to stderr.',
        '',
        'Exit status: 0 everything matches, 1 a divergence (reported with the records leading to it),',
        '2 a usage problem, or a log that is not a log, damaged or unreadable (what came before is still shown).',
        '',
        'What if: with --config NEW.config nothing is replayed; every request in the log is decided again under',
        'the new servers and rules, and the connections whose outcome would change are listed (allowed →',
        'declined with the code, declined → allowed, other addresses). Exit 0 when nothing would change, 1 when',
        'something would.',
        '',
        'Examples:',
        '  mxproxy replay /var/log/mxproxy/events.mxlog',
        '  mxproxy replay /var/log/mxproxy/events.mxlog --connection 7 --format mermaid > connection-7.mmd',
        '  mxproxy replay /var/log/mxproxy/events.mxlog --from 03:10 --until 03:15 --target data',
        '  mxproxy replay events.mxlog.2 events.mxlog.1 --format json --no-progress | jq -c \'select(.k == "e")\'',
        '  mxproxy replay /var/log/mxproxy/events.mxlog --config /etc/mxproxy/mxproxy.config.new',
        '  mxproxy replay /var/log/mxproxy/events.mxlog        # with workers = 2: events.w1.mxlog…, then events.w2.mxlog…',
        "  mxproxy replay '/var/log/mxproxy/events.w2.mxlog*'   # one worker's series",
      ].join('\n'),
    )
    .action(replayCommand);
  cmd.exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT));
}
