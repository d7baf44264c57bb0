/**
 * One sync cycle with its monitoring, shared by the daemon and one-shot `run`. Kept apart from
 * the daemon so a CronJob's `run` does not load the schedule, HTTP and metrics code.
 */
import type { Config } from '../config.ts';
import { logTailOf, redact, type Logger } from '../log.ts';
import { runSync, type RunReport } from '../sync/run.ts';
import type { RunProgress } from '../model.ts';
import { pairId, pairPaths } from '../state/pair.ts';
import { progressWriter } from '../state/progress.ts';
import { notifyRun } from './notify.ts';
import { RunPinger } from './ping.ts';

export interface MonitoredRunOptions {
  /** Aborting it cancels the run (rclone is stopped). */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: RunProgress) => void;
  /** Called as soon as runSync returned, before pings and notifications are sent. */
  readonly onRunEnded?: (report: RunReport) => void;
  /** Aborting it gives up on pings and notifications still being delivered. */
  readonly deliverySignal?: AbortSignal;
  /** How messages for people name the pair: its name (issue 11), else `path1 <-> path2`. */
  readonly pairLabel?: string;
  /** A named pair's name, for the webhook's JSON. */
  readonly pairName?: string;
}

/**
 * One sync cycle with its monitoring: the start ping, the run, then the success/failure ping
 * (with the run's log tail) and the webhook. Used by the daemon and by one-shot `run`, so a
 * Kubernetes CronJob is monitored the same way. Never throws; pings never change the outcome.
 */
export async function monitoredRun(config: Config, logger: Logger, options: MonitoredRunOptions = {}): Promise<RunReport> {
  const tail = logTailOf(logger);
  const mark = tail?.mark() ?? 0;
  const delivery = options.deliverySignal ? { signal: options.deliverySignal } : {};
  const pinger = config.appliance.pingUrl ? new RunPinger(config.appliance.pingUrl, logger, delivery) : undefined;
  pinger?.start();
  const progressFile = progressWriter(pairPaths(config.engine.stateDir, pairId(config.engine.path1, config.engine.path2)));
  const report = await runSync(config.engine, {
    logger,
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (progress) => {
      progressFile.update(progress);
      options.onProgress?.(progress);
    },
  });
  await progressFile.end();
  try {
    options.onRunEnded?.(report);
  } catch (error) {
    logger.error({ err: error }, 'run-ended hook failed');
  }
  const logText = tail?.since(mark, { maxLines: 100, maxBytes: 10 * 1024 }) ?? '';
  await Promise.all([
    pinger?.finish(report, logText),
    config.appliance.notifyUrl
      ? notifyRun(config.appliance.notifyUrl, report, logger, { ...delivery, ...(options.pairName ? { pairName: options.pairName } : {}), pairLabel: options.pairLabel ?? `${redact(config.engine.path1)} <-> ${redact(config.engine.path2)}` })
      : undefined,
  ]).catch((error: unknown) => logger.warn({ err: error }, 'monitoring failed; the run is not affected'));
  return report;
}
