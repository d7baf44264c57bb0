/**
 * One sync cycle. `runSync` is its life: it takes the pair's lock, picks the run's stamp, has the
 * Engine (engine.ts) carry out the pipeline, and turns every ending into a RunReport and a line in
 * the run history. The pipeline, one step each, all of them in engine.ts:
 *
 *   observe    list both sides while reading the last snapshot            (observe.ts)
 *   detect     what changed on each side (and which contents to compare)  (detect.ts)
 *   plan       a pure reconciliation of the two change sets               (reconcile.ts)
 *   gate       the safety checks, all before anything changes             (safety.ts)
 *   propagate  carry the plan out with rclone, touching only what was listed (propagate.ts)
 *   commit     the new snapshot, from what each side really holds, atomically (commit.ts)
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineConfig } from '../config.ts';
import { heapGrowthFor, heapGrowthForListed } from '../heap.ts';
import { RunCancelled, RunFailed, SafetyStop, SyncError, type FailureOutcome } from '../errors.ts';
import { redact, type Logger } from '../log.ts';
import type { RunProgress } from '../model.ts';
import { RcloneError } from '../rclone/rclone.ts';
import { appendHistory, readHistory, runRecord, type RunEnding, type RunRecord } from '../state/history.ts';
import { journalStarts } from '../state/journal.ts';
import { acquireLock, type HeldLock } from '../state/lock.ts';
import { ensurePairDir, pairId, pairPaths } from '../state/pair.ts';
import { SnapshotCorrupt } from '../state/snapshot.ts';
import { Engine, EngineStopped, type RunResult } from './engine.ts';
import { compactStamp } from './trash.ts';

export interface RunOptions {
  readonly logger: Logger;
  /** Aborting it stops rclone and ends the run as cancelled; snapshots stay as they were. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: RunProgress) => void;
}

export type RunReport = RunRecord & { readonly pairDir: string };

export async function runSync(config: EngineConfig, options: RunOptions): Promise<RunReport> {
  let startedAt = new Date();
  const runId = randomUUID();
  const id = pairId(config.path1, config.path2);
  const paths = pairPaths(config.stateDir, id);
  // A named pair's logger already says which pair (its name, issue 11): no second `pair` key.
  const named = (options.logger.bindings?.() as { pair?: unknown } | undefined)?.pair !== undefined;
  const logger = options.logger.child({ run: runId.slice(0, 8), ...(named ? {} : { pair: id }) });
  let result: RunResult = { counts: undefined, trashed: undefined, resync: config.resync };
  let lock: HeldLock | undefined;

  const finish = async (ending: RunEnding): Promise<RunReport> => {
    const endedAt = new Date();
    const record = runRecord(
      {
        runId,
        pair: id,
        startedAt: startedAt.toISOString(),
        endedAt: endedAt.toISOString(),
        durationMs: endedAt.getTime() - startedAt.getTime(),
        dryRun: config.dryRun,
        resync: result.resync,
        ...(result.counts ? { counts: result.counts } : {}),
        ...(result.trashed ? { trashed: result.trashed } : {}),
      },
      ending,
    );
    if (lock) {
      await appendHistory(paths.history, record).catch((error) => logger.error({ err: error }, 'could not write the run history'));
      await lock.release();
    }
    const report = { ...record, pairDir: paths.dir };
    logSummary(logger, report);
    return report;
  };

  // A lost lock (its directory removed or its mtime not refreshed in time) means another run may
  // start: stop touching anything.
  const compromised = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, compromised.signal]) : compromised.signal;

  try {
    await ensurePairDir(paths);
    options.onProgress?.({ phase: 'locking', listed: { path1: 0, path2: 0 } });
    lock = await acquireLock(paths, (error) => {
      logger.error({ err: error }, 'the run lock was compromised; stopping');
      compromised.abort(new RunFailed(`lost the run lock (${error.message}); stopped so that two runs never change the same pair`));
    });
    // Whatever a killed run left in the scratch space is ours to clear now that we hold the lock.
    await rm(paths.tmp, { recursive: true, force: true });
    // The stamp names this run's trash folder and conflict copies: two runs never share one.
    startedAt = await distinctStamp(paths, startedAt, signal);
    const engine = new Engine({ config, paths, logger, signal, onProgress: options.onProgress, startedAt, onSnapshotSize: heapGrowthFor, onListedWhole: heapGrowthForListed });
    try {
      result = await engine.run();
    } catch (error) {
      if (!(error instanceof EngineStopped)) throw error;
      result = error.result;
      throw error.cause;
    } finally {
      await engine.dispose();
    }
    return await finish({ outcome: 'success' });
  } catch (error) {
    const failure = classify(error, signal);
    const level = failure.outcome === 'safety-stop' || failure.outcome === 'locked' ? 'warn' : 'error';
    // Messages may quote a path, and an on-the-fly remote's path may carry a password.
    const message = redact(failure.message);
    logger[level]({ outcome: failure.outcome, gate: failure instanceof SafetyStop ? failure.gate : undefined }, message);
    return await finish(
      failure instanceof SafetyStop
        ? { outcome: 'safety-stop', message, gate: failure.gate }
        : // Only a SafetyStop (which names its gate) ends a run as a safety stop.
          { outcome: failure.outcome as Exclude<FailureOutcome, 'safety-stop'>, message },
    );
  }
}

/**
 * The run's start, moved on to the next second when an earlier run has the same stamp: the last
 * one in the history, or a killed one (SIGKILL writes no history line, but its journal window is
 * there). Sharing a killed run's trash folder would make its leftovers look like versions this
 * run overwrote, and rescue them under conflict names.
 */
export async function distinctStamp(files: { readonly history: string; readonly journal: string }, startedAt: Date, signal: AbortSignal): Promise<Date> {
  const last = (await readHistory(files.history).catch(() => [])).at(-1);
  const earlier = [...(last ? [new Date(last.startedAt).getTime()] : []), ...(await journalStarts(files.journal))];
  const stamp = compactStamp(startedAt);
  if (!earlier.some((time) => compactStamp(new Date(time)) === stamp)) return startedAt;
  await sleep(1_000 - (startedAt.getTime() % 1_000) + 5, undefined, { signal });
  return new Date();
}

function classify(error: unknown, signal: AbortSignal): SyncError {
  if (error instanceof SyncError) return error;
  // An abort carries its reason: a signal (cancelled) or a lost lock (failed).
  if (signal.aborted && signal.reason instanceof SyncError) return signal.reason;
  if (signal.aborted || (error instanceof RcloneError && error.cancelled)) return new RunCancelled();
  if (error instanceof RcloneError) return new RunFailed(error.message, { cause: error });
  if (error instanceof SnapshotCorrupt) {
    return new SafetyStop('state-corrupt', `${error.message}; run once with SYNC_RESYNC=true to rebuild it (a resync deletes nothing)`);
  }
  const e = error as NodeJS.ErrnoException;
  const message = e?.message ?? String(error);
  // Node's own messages already start with their code ("ENOSPC: no space left on device, write").
  const code = e?.code && !message.startsWith(`${e.code}:`) ? `${e.code}: ` : '';
  return new RunFailed(`${code}${message}`, { cause: error });
}

function logSummary(logger: Logger, report: RunRecord): void {
  const c = report.counts;
  logger.info(
    {
      summary: true,
      outcome: report.outcome,
      exitCode: report.exitCode,
      dryRun: report.dryRun,
      resync: report.resync,
      copiesToPath1: c?.copiesToPath1 ?? 0,
      copiesToPath2: c?.copiesToPath2 ?? 0,
      deletesOnPath1: c?.deletesOnPath1 ?? 0,
      deletesOnPath2: c?.deletesOnPath2 ?? 0,
      movesOnPath1: c?.movesOnPath1 ?? 0,
      movesOnPath2: c?.movesOnPath2 ?? 0,
      conflicts: c?.conflicts ?? 0,
      trashedOnPath1: report.trashed?.path1 ?? 0,
      trashedOnPath2: report.trashed?.path2 ?? 0,
      bytes: (c?.bytesToPath1 ?? 0) + (c?.bytesToPath2 ?? 0),
      durationMs: report.durationMs,
    },
    `run ${report.outcome}`,
  );
}

