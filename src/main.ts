/**
 * The command line (started by cli.ts): parses flags and settings, then hands over to the engine (run) or the
 * appliance (daemon, health, status). Exit codes are documented in README and --help.
 */
import { helpText, loadConfig, parseCommandLine, type Config, type ParsedCommandLine } from './config.ts';
import { ConfigError, ExitCode, SyncError } from './errors.ts';
import { createLogger, pairLogger } from './log.ts';
import { formatRunSummary, ProgressBoard, progressWanted } from './progress-line.ts';
import type { RunProgress } from './model.ts';
import { prepareRcloneConfig } from './appliance/rclone-config.ts';
import { checkHealth, readVerdict } from './appliance/health.ts';
import { formatStatus, pairsOf, pairStatus, snapshotHeader, thePair } from './appliance/status.ts';
import { pairPaths } from './state/pair.ts';
import { monitoredRun } from './appliance/monitor.ts';
import { preflight } from './preflight.ts';
import { parseTrashRequest, trashCommand } from './commands/trash.ts';
import { describePair, loadPairs, mostSevere, selectPairs, type PairDefinition } from './pairs.ts';
import packageJson from '../package.json' with { type: 'json' };

const VERSION = packageJson.version;

async function main(argv: string[]): Promise<number> {
  const commandLine = parseCommandLine(argv);
  if (commandLine.version) {
    process.stdout.write(`rclonesync ${VERSION}\n`);
    return ExitCode.ok;
  }
  if (commandLine.help || commandLine.command === undefined || commandLine.command === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return commandLine.help || commandLine.command === 'help' ? ExitCode.ok : ExitCode.usage;
  }
  const command = commandLine.command;
  if (!['run', 'daemon', 'status', 'health', 'trash'].includes(command)) {
    throw new ConfigError(`unknown command "${command}": use run, daemon, status, health or trash (rclonesync --help)`);
  }
  if (command === 'trash') {
    const request = parseTrashRequest(commandLine.positionals, { json: commandLine.json, side: commandLine.side, from: commandLine.from });
    const config = await trashConfig(commandLine);
    // stdout is the command's answer (often JSON): rclone's warnings go to stderr.
    const logger = createLogger({ ...config.log, level: 'warn' }, process.stderr);
    await prepareRcloneConfig(process.env, config.engine.stateDir, logger);
    return trashCommand(config.engine, request, logger, process.stdout);
  }
  if (commandLine.side !== undefined || commandLine.from !== undefined) throw new ConfigError(`--side and --from belong to the trash command, not to "${command}"`);
  if (commandLine.progress !== undefined && command !== 'run') throw new ConfigError(`--progress and --no-progress belong to the run command, not to "${command}"`);
  if (commandLine.positionals.length > 0) {
    throw new ConfigError(`unexpected argument "${commandLine.positionals[0]}" after "${command}"; settings are flags such as --path2 remote:dir`);
  }

  if (command === 'status') return status(commandLine);

  if (command === 'health') {
    // Health checks speak 0 or 1 only (Docker reserves 2): a broken setting is simply unhealthy.
    try {
      const pairs = pairsWanted(commandLine, false, { path2Optional: true });
      if (pairs.length > 1 || pairs[0]!.name !== undefined) return await healthOfPairs(pairs, process.stdout);
      const config = pairs[0]!.config;
      const pair = config.engine.path2 ? undefined : await thePair(config);
      if (!config.engine.path2 && pair === undefined) {
        process.stdout.write(`unhealthy: SYNC_PATH2 (--path2) is required to name the pair: the state folder ${config.engine.stateDir} holds none yet (no run has finished there)\n`);
        return ExitCode.failed;
      }
      return await checkHealth(config, process.stdout, pair);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stdout.write(`unhealthy: ${error.message}\n`);
      return ExitCode.failed;
    }
  }
  const pairs = pairsWanted(commandLine, process.stdout.isTTY === true);
  // The logs are process-wide: every pair has the same LOG_LEVEL and LOG_FORMAT.
  const config = pairs[0]!.config;
  const several = pairs.length > 1 || pairs[0]!.name !== undefined;

  // `run` on a terminal: a live progress line on stderr (one per pair), with the log written above it.
  const progress = command === 'run' && progressWanted(commandLine.progress, config.log.format, process) ? new ProgressBoard(process.stderr) : undefined;
  const logger = createLogger(config.log, undefined, progress ? { through: progress.logStream(process.stdout) } : {});
  /** Pairs whose start-of-run checks failed: `run` skips them (exit 2 for them), the daemon stops. */
  const refused = new Map<PairDefinition, ConfigError>();
  for (const pair of pairs) {
    try {
      await preflight(pair.config.engine, { env: process.env });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const named = several ? new ConfigError(`${describePair(pair)}: ${error.message}`) : error;
      // In the log too: a daemon's log is often all that is read (the daemon stops here, exit 2, rather than fail every run).
      logger.error({ ...(several ? { pair: pair.key } : {}), outcome: named.outcome, exitCode: named.exitCode }, named.message);
      if (command === 'daemon' || !several) {
        await flushLogger(logger);
        throw named;
      }
      refused.set(pair, named);
    }
  }
  for (const stateDir of new Set(pairs.filter((p) => !refused.has(p)).map((p) => p.config.engine.stateDir))) {
    await prepareRcloneConfig(process.env, stateDir, logger);
  }
  if (command === 'daemon') {
    // Loaded only here: the schedule, HTTP server and metrics are the daemon's alone.
    const { runDaemon } = await import('./appliance/daemon.ts');
    const code = await runDaemon(pairs, logger);
    await flushLogger(logger);
    // Everything is closed; should a stray handle (an idle keep-alive socket) linger, do not wait for it.
    setTimeout(() => process.exit(code), 1_000).unref();
    return code;
  }

  // One-shot: SIGTERM/SIGINT stop rclone and end the run cleanly (snapshots untouched, lock released).
  const controller = new AbortController();
  const deliveries = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    logger.warn({ signal }, 'stopping the run');
    controller.abort();
    // The failure ping and webhook get a few seconds, not their full retry budget.
    setTimeout(() => deliveries.abort(), 5_000).unref();
  };
  // `on`, not `once`: a second SIGTERM while the run winds down must not kill us before the
  // cancelled run is recorded and its lock released.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Every pair once, one after another (each holds its own lock); the exit code is the most severe.
  const codes: number[] = [];
  const messages: string[] = [];
  const summaries: string[] = [];
  for (const pair of pairs) {
    const problem = refused.get(pair);
    if (problem) {
      codes.push(problem.exitCode);
      messages.push(problem.message);
      continue;
    }
    if (controller.signal.aborted) break;
    // With the same pings and webhook as the daemon's runs, so a CronJob is monitored too.
    const report = await monitoredRun(pair.config, several ? pairLogger(logger, pair.key) : logger, {
      signal: controller.signal,
      deliverySignal: deliveries.signal,
      ...(progress ? { onProgress: (p: RunProgress) => progress.update(pair.label, p) } : {}),
      ...(several ? { pairLabel: pair.label } : {}),
      ...(pair.name ? { pairName: pair.name } : {}),
    });
    progress?.finish(pair.label);
    codes.push(report.exitCode);
    if (report.exitCode !== ExitCode.ok && report.message) messages.push(several ? `${describePair(pair)}: ${report.message}` : report.message);
    if (progress) summaries.push(formatRunSummary(pair.label, report));
  }
  await flushLogger(logger);
  if (progress) {
    progress.clear();
    for (const summary of summaries) process.stderr.write(`${summary}\n`);
  }
  // The log (stdout, often JSON) is for machines; a person at a terminal or reading a CronJob's
  // events wants the one reason on stderr, as for every other error.
  for (const message of messages) process.stderr.write(`rclonesync: ${message}\n`);
  return mostSevere(codes);
}

/** The pairs of the environment that --pair chose (every pair without it). */
function pairsWanted(commandLine: ParsedCommandLine, isTty: boolean, options: { path2Optional?: boolean } = {}): PairDefinition[] {
  return selectPairs(loadPairs(process.env, commandLine.overrides, isTty, options), commandLine.pairs);
}

/** `health` of named pairs: healthy only when every pair is; the ones that are not are named. */
async function healthOfPairs(pairs: readonly PairDefinition[], out: NodeJS.WritableStream): Promise<number> {
  const now = new Date();
  const verdicts = await Promise.all(
    pairs.map(async (pair) => {
      try {
        return { pair, ...(await readVerdict(pair.config, now, pair.id)) };
      } catch (error) {
        return { pair, healthy: false, reason: `cannot read the run history: ${(error as Error).message}` };
      }
    }),
  );
  const unhealthy = verdicts.filter((v) => !v.healthy);
  out.write(
    unhealthy.length === 0
      ? `healthy: ${pairs.length === 1 ? `pair ${pairs[0]!.key}` : `all ${pairs.length} pairs`}\n`
      : `unhealthy: ${unhealthy.length} of ${pairs.length} ${pairs.length === 1 ? 'pair' : 'pairs'}: ${unhealthy.map((v) => v.pair.key).join(', ')}\n`,
  );
  for (const v of verdicts) out.write(`  ${v.pair.key}: ${v.healthy ? 'healthy' : 'unhealthy'}: ${v.reason}\n`);
  return unhealthy.length === 0 ? ExitCode.ok : ExitCode.failed;
}

async function status(commandLine: ParsedCommandLine): Promise<number> {
  const configured = pairsWanted(commandLine, false, { path2Optional: true });
  const now = new Date();
  const pairs =
    configured.length === 1 && configured[0]!.name === undefined
      ? await Promise.all((await pairsOf(configured[0]!.config)).map((pair) => pairStatus(configured[0]!.config, configured[0]!.config.engine.stateDir, pair, now)))
      : await Promise.all(configured.map(async (p) => ({ ...(p.name ? { name: p.name } : {}), ...(await pairStatus(p.config, p.config.engine.stateDir, p.id, now)) })));
  const json = commandLine.json;
  const { config } = configured[0]!;
  if (json) {
    process.stdout.write(`${JSON.stringify({ pairs }, null, 2)}\n`);
    return ExitCode.ok;
  }
  if (pairs.length === 0) {
    process.stdout.write(`no runs recorded in ${config.engine.stateDir}\n`);
    return ExitCode.ok;
  }
  process.stdout.write(formatStatus(pairs, now));
  return ExitCode.ok;
}

/**
 * The pair `trash` works on: the configured one, or without SYNC_PATH2 the state folder's only pair,
 * whose paths its snapshot records (unless they hold a masked credential: then they must be given).
 */
async function trashConfig(commandLine: ParsedCommandLine): Promise<Config> {
  const { overrides } = commandLine;
  const pairs = pairsWanted(commandLine, false, { path2Optional: true });
  if (pairs.length > 1) throw new ConfigError(`trash works on one pair at a time: pick it with --pair (the pairs are ${pairs.map((p) => p.key).join(', ')})`);
  const config = pairs[0]!.config;
  if (config.engine.path2) return config;
  const pair = await thePair(config);
  const header = pair ? await snapshotHeader(pairPaths(config.engine.stateDir, pair).snapshot) : undefined;
  if (!header?.path1 || !header.path2 || header.path1.includes('***') || header.path2.includes('***')) {
    throw new ConfigError(
      `SYNC_PATH2 (--path2) is required to name the pair: the state folder ${config.engine.stateDir} holds ${pair ? 'a pair whose paths it cannot tell (credentials are masked there)' : 'no pair yet'}`,
    );
  }
  return loadConfig({ ...process.env, SYNC_PATH1: header.path1, SYNC_PATH2: header.path2 }, overrides, false);
}

function flushLogger(logger: ReturnType<typeof createLogger>): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof SyncError) {
      process.stderr.write(`rclonesync: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`rclonesync: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = ExitCode.failed;
  },
);

