/**
 * The command line (started by cli.ts): parses flags and settings, then hands over to the engine (run) or the
 * appliance (daemon, health, status). Exit codes are documented in README and --help.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { helpText, loadConfig, parseCommandLine, type Config } from './config.ts';
import { ConfigError, ExitCode, SyncError } from './errors.ts';
import { createLogger } from './log.ts';
import { readHistory, type RunRecord } from './state/history.ts';
import { pairId, pairPaths } from './state/pair.ts';
import { prepareRcloneConfig } from './appliance/rclone-config.ts';
import { checkHealth } from './appliance/health.ts';
import { monitoredRun } from './appliance/monitor.ts';
import { preflight } from './preflight.ts';
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
  if (!['run', 'daemon', 'status', 'health'].includes(command)) {
    throw new ConfigError(`unknown command "${command}": use run, daemon, status or health (rclonesync --help)`);
  }
  if (commandLine.positionals.length > 0) {
    throw new ConfigError(`unexpected argument "${commandLine.positionals[0]}" after "${command}"; settings are flags such as --path2 remote:dir`);
  }

  if (command === 'status') return status(commandLine.overrides, commandLine.json);

  if (command === 'health') {
    // Health checks speak 0 or 1 only (Docker reserves 2): a broken setting is simply unhealthy.
    try {
      return await checkHealth(loadConfig(process.env, commandLine.overrides, false), process.stdout);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stdout.write(`unhealthy: ${error.message}\n`);
      return ExitCode.failed;
    }
  }
  const config = loadConfig(process.env, commandLine.overrides, process.stdout.isTTY === true);

  const logger = createLogger(config.log);
  try {
    await preflight(config.engine, { env: process.env });
  } catch (error) {
    // In the log too: a daemon's log is often all that is read (the daemon stops here, exit 2, rather than fail every run).
    if (error instanceof ConfigError) logger.error({ outcome: error.outcome, exitCode: error.exitCode }, error.message);
    await flushLogger(logger);
    throw error;
  }
  await prepareRcloneConfig(process.env, config.engine.stateDir, logger);
  if (command === 'daemon') {
    // Loaded only here: the schedule, HTTP server and metrics are the daemon's alone.
    const { runDaemon } = await import('./appliance/daemon.ts');
    const code = await runDaemon(config, logger);
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
  // `on`, not `once`: execa's exit cleanup (signal-exit) re-raises a signal that no other listener
  // handles, which would kill us before the cancelled run is recorded and its lock released.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // With the same pings and webhook as the daemon's runs, so a CronJob is monitored too.
  const report = await monitoredRun(config, logger, { signal: controller.signal, deliverySignal: deliveries.signal });
  await flushLogger(logger);
  // The log (stdout, often JSON) is for machines; a person at a terminal or reading a CronJob's
  // events wants the one reason on stderr, as for every other error.
  if (report.exitCode !== ExitCode.ok && report.message) process.stderr.write(`rclonesync: ${report.message}\n`);
  return report.exitCode;
}

async function status(overrides: Record<string, string>, json: boolean): Promise<number> {
  const env = { ...process.env, ...overrides };
  const stateDir = env.SYNC_STATE_DIR || '/state';
  let pairs: { pair: string; runs: RunRecord[] }[];
  if (env.SYNC_PATH2) {
    const config: Config = loadConfig(process.env, overrides, false);
    const id = pairId(config.engine.path1, config.engine.path2);
    pairs = [{ pair: id, runs: await readHistory(pairPaths(config.engine.stateDir, id).history) }];
  } else {
    // Without a pair configured, show every pair that shares this state directory.
    const entries = await readdir(stateDir, { withFileTypes: true }).catch(() => []);
    pairs = await Promise.all(
      entries.filter((e) => e.isDirectory()).map(async (e) => ({ pair: e.name, runs: await readHistory(join(stateDir, e.name, 'history.jsonl')) })),
    );
    pairs = pairs.filter((p) => p.runs.length > 0);
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ pairs }, null, 2)}\n`);
    return ExitCode.ok;
  }
  if (pairs.length === 0) {
    process.stdout.write(`no runs recorded in ${stateDir}\n`);
    return ExitCode.ok;
  }
  for (const { pair, runs } of pairs) {
    process.stdout.write(`pair ${pair}\n`);
    process.stdout.write(`  ${'started'.padEnd(24)} ${'outcome'.padEnd(12)} ${'secs'.padStart(7)} ${'->p1'.padStart(6)} ${'->p2'.padStart(6)} ${'del'.padStart(6)} ${'confl'.padStart(5)}  note\n`);
    for (const r of runs.slice(-20)) {
      const c = r.counts;
      const note = [r.dryRun ? 'dry-run' : '', r.resync ? 'resync' : '', r.message ?? ''].filter(Boolean).join('; ');
      process.stdout.write(
        `  ${r.startedAt.padEnd(24)} ${r.outcome.padEnd(12)} ${(r.durationMs / 1000).toFixed(1).padStart(7)} ${String(c?.copiesToPath1 ?? 0).padStart(6)} ${String(c?.copiesToPath2 ?? 0).padStart(6)} ${String((c?.deletesOnPath1 ?? 0) + (c?.deletesOnPath2 ?? 0)).padStart(6)} ${String(c?.conflicts ?? 0).padStart(5)}  ${note}\n`,
      );
    }
  }
  return ExitCode.ok;
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

