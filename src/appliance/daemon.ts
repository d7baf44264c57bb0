/**
 * The appliance: run the sync on a cron schedule until stopped. The engine (runSync) does the
 * work and never throws; this loop adds the schedule, overrun protection, monitoring (pings,
 * webhook, HTTP endpoints) and a clean stop on SIGTERM/SIGINT.
 */
import { Cron } from 'croner';
import type { Config } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { redact, type Logger } from '../log.ts';
import { readHistory } from '../state/history.ts';
import { pairId, pairPaths } from '../state/pair.ts';
import type { RunReport } from '../sync/run.ts';
import type { RunProgress } from '../model.ts';
import { formatDuration, maxAgeOf, scheduleTimezone } from './health.ts';
import { startHttpServer, SyncMetrics, verdictOf, type DaemonView, type HttpServerHandle } from './http.ts';
import { monitoredRun } from './monitor.ts';

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

export async function runDaemon(config: Config, logger: Logger): Promise<number> {
  const { engine, appliance } = config;
  const timezone = scheduleTimezone();
  const id = pairId(engine.path1, engine.path2);
  const paths = pairPaths(engine.stateDir, id);
  const log = logger.child({ pair: id });

  const metrics = new SyncMetrics(id, { processMetrics: true, trashStatsFile: paths.trashStats });
  metrics.loadHistory(await readHistory(paths.history).catch(() => []));

  let current: CurrentRun | undefined;
  let stopping = false;
  let skippedTicks = 0;
  let startPending = false;
  let job: Cron | undefined;

  // Set once the schedule exists: the daemon never ends on its own with exit 0 (a schedule that
  // stops firing would otherwise leave a process with nothing to wait for).
  let scheduleExhausted = () => {};
  const nextRun = (): Date | null => (stopping || !job ? null : job.nextRun());
  const logNextRun = () => {
    const next = nextRun();
    if (!next) {
      if (!stopping) scheduleExhausted();
      return;
    }
    const when = timezone ? `${next.toLocaleString('sv-SE', { timeZone: timezone })} ${timezone}` : next.toISOString();
    log.info({ nextRun: next.toISOString(), in: formatDuration(Math.max(0, next.getTime() - Date.now())) }, `next run at ${when}`);
  };

  const runOnce = async (trigger: 'start' | 'schedule'): Promise<void> => {
    if (stopping) return;
    if (current) {
      // croner's protection covers its own ticks; this covers everything else.
      log.warn({ trigger }, 'a run is still in progress: not starting another');
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
    log.info({ trigger }, trigger === 'start' ? 'starting the first run (SYNC_RUN_ON_START)' : 'starting a scheduled run');
    try {
      await monitoredRun(config, logger, {
        signal: run.controller.signal,
        deliverySignal: run.deliveries.signal,
        onProgress: (progress) => {
          run.progress = progress;
        },
        onRunEnded: (report) => {
          run.ended = true;
          metrics.setRunning(false);
          metrics.recordRun(report);
          // Stopping: give the failure ping and webhook a moment, not forever.
          if (stopping) setTimeout(() => run.deliveries.abort(), DELIVERY_GRACE_MS).unref();
        },
      });
    } catch (error) {
      // runSync never throws; should anything around it do, the loop goes on.
      log.error({ err: error }, 'the run failed unexpectedly; the schedule continues');
    } finally {
      metrics.setRunning(false);
      current = undefined;
      settle();
    }
    if (!stopping) logNextRun();
  };

  const view: DaemonView = {
    pair: id,
    path1: engine.path1,
    path2: engine.path2,
    schedule: appliance.schedule,
    timezone,
    historyFile: paths.history,
    trashStatsFile: paths.trashStats,
    maxAgeMs: () => maxAgeOf(config),
    nextRun,
    current: () => (current && !current.ended ? { startedAt: current.startedAt.toISOString(), progress: current.progress } : null),
  };
  metrics.setVerdictSource(() => verdictOf(view));

  let http: HttpServerHandle | undefined;
  if (appliance.httpPort !== undefined) {
    try {
      http = await startHttpServer(appliance.httpPort, view, metrics, log);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ConfigError(`SYNC_HTTP_PORT (--http-port): cannot listen on port ${appliance.httpPort} (${code ?? (error as Error).message}${code === 'EADDRINUSE' ? ': another program uses it' : ''})`);
    }
  }

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals | 'schedule-exhausted') => {
      if (stopping) {
        log.warn({ signal }, 'already stopping');
        return;
      }
      stopping = true;
      job?.stop();
      void (async () => {
        let code = signal === 'schedule-exhausted' ? 1 : 0;
        const run = current;
        if (run) {
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
            code = 1;
          }
        } else {
          log.info({ signal }, 'stopping (no run in progress)');
        }
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
    scheduleExhausted = () => {
      log.error({ schedule: appliance.schedule }, 'SYNC_SCHEDULE has no next run time: stopping the daemon with exit 1');
      stop('schedule-exhausted');
    };

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
        schedule: appliance.schedule,
        timezone: timezone ?? (process.env.TZ || 'local'),
        runOnStart: appliance.runOnStart,
        path1: redact(engine.path1),
        path2: redact(engine.path2),
        stateDir: engine.stateDir,
      },
      'daemon started',
    );
    if (appliance.runOnStart) {
      startPending = true;
      // Through croner, so its overrun protection also sees this run.
      job.trigger().catch((error: unknown) => log.error({ err: error }, 'the first run failed unexpectedly; the schedule continues'));
    } else {
      logNextRun();
    }
  });
}
