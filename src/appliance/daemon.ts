/**
 * The appliance: run the sync on a cron schedule until stopped. The engine (runSync) does the
 * work and never throws; this loop adds the schedule, overrun protection, monitoring (pings,
 * webhook, HTTP endpoints) and a clean stop on SIGTERM/SIGINT.
 *
 * Several pairs (issue 11): each has its own schedule, overrun protection, lock (its own state
 * folder), pings, webhook and watcher; a pair's run never waits for another's, and a pair that
 * fails never stops the others. The HTTP server and the signals are the process's.
 */
import { Cron } from 'croner';
import { ConfigError } from '../errors.ts';
import { pairLogger, redact, type Logger } from '../log.ts';
import { readHistory } from '../state/history.ts';
import { pairPaths } from '../state/pair.ts';
import type { PairDefinition } from '../pairs.ts';
import type { RunProgress } from '../model.ts';
import { formatDuration, maxAgeOf, scheduleTimezone } from './health.ts';
import { startHttpServer, SyncMetrics, verdictOf, type DaemonView, type HttpServerHandle } from './http.ts';
import { monitoredRun } from './monitor.ts';
import { watchPair, type PairWatch } from './watch.ts';

/** After a cancelled run, pings and the webhook get this long before shutdown gives up on them. */
const DELIVERY_GRACE_MS = 2_500;
/** The longest a stop waits for the run to end (rclone gets SIGTERM, then SIGKILL after 3 s). */
const STOP_DEADLINE_MS = 8_500;

interface CurrentRun {
  readonly startedAt: Date;
  readonly controller: AbortController;
  readonly deliveries: AbortController;
  progress: RunProgress | null;
  /** runSync returned. */
  ended: boolean;
  /** Settles when the run and its monitoring are over. */
  done: Promise<void>;
}

type Trigger = 'start' | 'schedule' | 'watch';

const STARTING: Record<Trigger, string> = {
  start: 'starting the first run (SYNC_RUN_ON_START)',
  schedule: 'starting a scheduled run',
  watch: 'starting a run for the local changes (SYNC_WATCH)',
};

/** One pair in the daemon: its schedule, its run, its watcher. */
interface PairRunner {
  readonly pair: PairDefinition;
  readonly view: DaemonView;
  readonly metrics: SyncMetrics;
  current(): CurrentRun | undefined;
  nextRun(): Date | null;
  /** Starts the schedule (and the first run, the watcher). */
  start(): Promise<void>;
  /** Stops the schedule and the watcher; cancels the run in progress. Resolves false when it did not end in time. */
  stop(signal: string): Promise<boolean>;
}

interface DaemonContext {
  readonly logger: Logger;
  readonly timezone: string | undefined;
  readonly stopping: () => boolean;
  /** This pair's schedule has no next run time. */
  readonly exhausted: (runner: PairRunner) => void;
}

function pairRunner(pair: PairDefinition, ctx: DaemonContext, processMetrics: boolean): PairRunner {
  const config = pair.config;
  const { engine, appliance } = config;
  const { timezone } = ctx;
  const paths = pairPaths(engine.stateDir, pair.id);
  const log = pairLogger(ctx.logger, pair.key);
  const metrics = new SyncMetrics(pair.key, { processMetrics, trashStatsFile: paths.trashStats });

  let current: CurrentRun | undefined;
  let skippedTicks = 0;
  let startPending = false;
  let job: Cron | undefined;
  let watch: PairWatch | undefined;
  let stopped = false;
  const stopping = () => stopped || ctx.stopping();

  const nextRun = (): Date | null => (stopping() || !job ? null : job.nextRun());
  const logNextRun = () => {
    const next = nextRun();
    if (!next) {
      if (!stopping()) ctx.exhausted(runner);
      return;
    }
    const when = timezone ? `${next.toLocaleString('sv-SE', { timeZone: timezone })} ${timezone}` : next.toISOString();
    log.info({ nextRun: next.toISOString(), in: formatDuration(Math.max(0, next.getTime() - Date.now())) }, `next run at ${when}`);
  };

  const runOnce = async (trigger: Trigger): Promise<void> => {
    if (stopping()) return;
    if (current) {
      // croner's protection covers its own ticks; this covers everything else.
      log[trigger === 'watch' ? 'debug' : 'warn']({ trigger }, 'a run is still in progress: not starting another');
      return;
    }
    const run: CurrentRun = {
      startedAt: new Date(),
      controller: new AbortController(),
      deliveries: new AbortController(),
      progress: null,
      ended: false,
      done: Promise.resolve(),
    };
    let settle!: () => void;
    run.done = new Promise<void>((resolve) => (settle = resolve));
    current = run;
    skippedTicks = 0;
    metrics.setRunning(true);
    // Whatever started it, the run covers the changes the watcher has seen so far.
    watch?.runStarted();
    let succeeded = false;
    log.info({ trigger }, STARTING[trigger]);
    try {
      await monitoredRun(config, log, {
        signal: run.controller.signal,
        deliverySignal: run.deliveries.signal,
        ...(pair.name ? { pairLabel: pair.label, pairName: pair.name } : {}),
        onProgress: (progress) => {
          run.progress = progress;
        },
        onRunEnded: (report) => {
          run.ended = true;
          succeeded = report.outcome === 'success';
          metrics.setRunning(false);
          metrics.recordRun(report);
          // Stopping: give the failure ping and webhook a moment, not forever.
          if (stopping()) setTimeout(() => run.deliveries.abort(), DELIVERY_GRACE_MS).unref();
        },
      });
    } catch (error) {
      // runSync never throws; should anything around it do, the loop goes on.
      log.error({ err: error }, 'the run failed unexpectedly; the schedule continues');
    } finally {
      metrics.setRunning(false);
      current = undefined;
      settle();
      watch?.runEnded({ succeeded });
    }
    if (!stopping()) logNextRun();
  };

  const view: DaemonView = {
    pair: pair.key,
    ...(pair.name ? { name: pair.name } : {}),
    path1: engine.path1,
    path2: engine.path2,
    schedule: appliance.schedule,
    timezone,
    historyFile: paths.history,
    trashStatsFile: paths.trashStats,
    snapshotFile: paths.snapshot,
    maxAgeMs: () => maxAgeOf(config),
    nextRun,
    current: () => (current && !current.ended ? { startedAt: current.startedAt.toISOString(), progress: current.progress } : null),
  };
  metrics.setVerdictSource(() => verdictOf(view));

  const runner: PairRunner = {
    pair,
    view,
    metrics,
    current: () => current,
    nextRun,
    async start() {
      metrics.loadHistory(await readHistory(paths.history).catch(() => []));
      job = new Cron(
        appliance.schedule,
        {
          ...(timezone ? { timezone } : {}),
          protect: () => {
            skippedTicks++;
            const level = skippedTicks === 1 ? 'warn' : 'debug';
            log[level]({ skippedTicks }, 'scheduled time reached while the previous run is still in progress: skipping this one');
          },
          catch: (error) => log.error({ err: error }, 'scheduled run failed unexpectedly; the schedule continues'),
        },
        () => {
          const trigger = startPending ? 'start' : 'schedule';
          startPending = false;
          return runOnce(trigger);
        },
      );
      log.info(
        {
          ...(pair.name ? { name: pair.name } : {}),
          schedule: appliance.schedule,
          timezone: timezone ?? (process.env.TZ || 'local'),
          runOnStart: appliance.runOnStart,
          watch: appliance.watch,
          path1: redact(engine.path1),
          path2: redact(engine.path2),
          stateDir: engine.stateDir,
        },
        pair.name ? `pair ${pair.name} started` : 'daemon started',
      );
      if (appliance.watch) {
        try {
          watch = await watchPair(
            { path1: engine.path1, path2: engine.path2, stateDir: engine.stateDir, trashPaths: engine.trashPaths },
            { delayMs: appliance.watchDelayMs, logger: log, startRun: () => void runOnce('watch') },
          );
        } catch (error) {
          log.warn({ err: (error as Error).message }, 'cannot watch the local folders for changes; syncing goes on by the schedule');
        }
        if (stopping()) await watch?.close();
      }
      if (appliance.runOnStart) {
        startPending = true;
        // Through croner, so its overrun protection also sees this run.
        job.trigger().catch((error: unknown) => log.error({ err: error }, 'the first run failed unexpectedly; the schedule continues'));
      } else {
        logNextRun();
      }
    },
    async stop(signal) {
      stopped = true;
      job?.stop();
      await watch?.close().catch(() => {});
      const run = current;
      if (!run) return true;
      log.warn({ signal }, 'stopping: cancelling the run in progress (rclone is stopped, snapshots stay as they were)');
      run.controller.abort();
      if (run.ended) setTimeout(() => run.deliveries.abort(), DELIVERY_GRACE_MS).unref();
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        run.done.then(() => true),
        new Promise<false>((r) => {
          timer = setTimeout(() => r(false), STOP_DEADLINE_MS);
        }),
      ]);
      clearTimeout(timer);
      if (!finished) {
        log.error(`the run did not end within ${STOP_DEADLINE_MS / 1000}s of the stop signal; exiting anyway (the next start takes the lock over)`);
        run.deliveries.abort();
      }
      return finished;
    },
  };
  return runner;
}

export async function runDaemon(pairs: readonly PairDefinition[], logger: Logger): Promise<number> {
  const timezone = scheduleTimezone();
  // Process-wide settings are the same in every pair's config.
  const { httpPort } = pairs[0]!.config.appliance;
  const several = pairs.length > 1 || pairs[0]!.name !== undefined;
  let stopping = false;
  const exhaustedPairs = new Set<PairRunner>();
  // Set once the signals are in place: the daemon never ends on its own with exit 0 (a schedule
  // that stops firing would otherwise leave a process with nothing to wait for).
  let allExhausted = () => {};
  const ctx: DaemonContext = {
    logger,
    timezone,
    stopping: () => stopping,
    exhausted: (runner) => {
      if (exhaustedPairs.has(runner)) return;
      exhaustedPairs.add(runner);
      const log = logger.child({ pair: runner.pair.key });
      if (exhaustedPairs.size < runners.length) {
        log.error({ schedule: runner.view.schedule }, 'SYNC_SCHEDULE has no next run time: this pair runs no more; the other pairs go on');
        return;
      }
      log.error({ schedule: runner.view.schedule }, 'SYNC_SCHEDULE has no next run time: stopping the daemon with exit 1');
      allExhausted();
    },
  };
  const runners = pairs.map((pair, i) => pairRunner(pair, ctx, i === 0));
  const log = several ? logger : logger.child({ pair: pairs[0]!.key });

  let http: HttpServerHandle | undefined;
  if (httpPort !== undefined) {
    try {
      http = await startHttpServer(
        httpPort,
        runners.map((r) => r.view),
        runners.map((r) => r.metrics),
        log,
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ConfigError(`SYNC_HTTP_PORT (--http-port): cannot listen on port ${httpPort} (${code ?? (error as Error).message}${code === 'EADDRINUSE' ? ': another program uses it' : ''})`);
    }
  }

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals | 'schedule-exhausted') => {
      if (stopping) {
        log.warn({ signal }, 'already stopping');
        return;
      }
      stopping = true;
      void (async () => {
        let code = signal === 'schedule-exhausted' ? 1 : 0;
        if (!runners.some((r) => r.current())) log.info({ signal }, 'stopping (no run in progress)');
        // Every pair's run is cancelled at once: a stop takes as long as the slowest, not their sum.
        const finished = await Promise.all(runners.map((r) => r.stop(signal)));
        if (finished.includes(false)) code = 1;
        await http?.close().catch(() => {});
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        log.info({ exitCode: code }, 'daemon stopped');
        resolve(code);
      })();
    };
    // Installed before anything can run: as PID 1 (no tini) Node has no default SIGTERM action.
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    allExhausted = () => stop('schedule-exhausted');
    if (several) log.info({ pairs: runners.map((r) => r.pair.key) }, `daemon started with ${runners.length} ${runners.length === 1 ? 'pair' : 'pairs'}`);
    // A pair that cannot start (its history unreadable) is logged; the others start regardless.
    for (const runner of runners) {
      runner.start().catch((error: unknown) => logger.child({ pair: runner.pair.key }).error({ err: error }, 'the pair could not start; the other pairs go on'));
    }
  });
}
