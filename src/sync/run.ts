/**
 * One sync cycle: lock, load the last snapshots, list both sides, detect, reconcile, check the
 * safety gates, propagate, then commit the new snapshots. Never throws: every ending becomes a
 * RunReport with an outcome and exit code, and (once the lock is held) a line in the run history.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { EngineConfig } from '../config.ts';
import { ConfigError, ExitCode, RunCancelled, RunFailed, SafetyStop, SyncError, type Outcome, type SafetyGate } from '../errors.ts';
import { redact, type Logger } from '../log.ts';
import { Rclone, RcloneError, type TransferProgress } from '../rclone/rclone.ts';
import { appendHistory, type RunRecord } from '../state/history.ts';
import { HEARTBEAT_MS, journalKey, readJournal, removeJournal, startHeartbeat, writeJournal, type JournalEntry } from '../state/journal.ts';
import { acquireLock, type HeldLock } from '../state/lock.ts';
import { ensurePairDir, pairId, pairPaths, type PairPaths } from '../state/pair.ts';
import { sameVersion, type CrossSideCompare } from './compare.ts';
import { detectChanges, discountInterruptedCopies } from './detect.ts';
import { compactStamp, pathsNeedingContentCheck, reconcile } from './reconcile.ts';
import { checkAccessFiles, checkFiltersUnchanged, checkMaxDelete, checkSideNotVanished } from './safety.ts';
import { readSnapshot, SnapshotCorrupt, writeSnapshot, type Snapshot } from './snapshot.ts';
import { propagate, stepsOf } from './propagate.ts';
import { snapshotAfter, touchedPaths, versionsWritten } from './commit.ts';
import { countPlan, otherSide, SIDES, type Action, type ChangeSet, type Listing, type Plan, type PlanCounts, type Side } from './types.ts';

export type RunPhase = 'locking' | 'listing' | 'checking' | 'propagating' | 'committing' | 'done';

export interface RunProgress {
  readonly phase: RunPhase;
  readonly listed: Record<Side, number>;
  readonly counts?: PlanCounts;
  readonly transfers?: Partial<Record<'toPath1' | 'toPath2', TransferProgress>>;
}

export interface RunOptions {
  readonly logger: Logger;
  /** Aborting it stops rclone and ends the run as cancelled; snapshots stay as they were. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: RunProgress) => void;
}

export interface RunReport extends RunRecord {
  readonly pairDir: string;
}

/** Hashes we would rather compare, cheapest and most common first. */
const HASH_PREFERENCE = ['md5', 'sha1', 'crc32', 'sha256', 'dropbox', 'quickxor', 'whirlpool', 'hidrive', 'mailru'];
const NEWLINE = /[\n\r]/;

export async function runSync(config: EngineConfig, options: RunOptions): Promise<RunReport> {
  const startedAt = new Date();
  const runId = randomUUID();
  const id = pairId(config.path1, config.path2);
  const paths = pairPaths(config.stateDir, id);
  const logger = options.logger.child({ run: runId.slice(0, 8), pair: id });
  let counts: PlanCounts | undefined;
  let lock: HeldLock | undefined;
  let resync = config.resync;

  const finish = async (outcome: Outcome, exitCode: number, extra: { message?: string; gate?: SafetyGate } = {}): Promise<RunReport> => {
    const endedAt = new Date();
    const record: RunRecord = {
      runId,
      pair: id,
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      durationMs: endedAt.getTime() - startedAt.getTime(),
      outcome,
      exitCode,
      dryRun: config.dryRun,
      resync,
      ...(counts ? { counts } : {}),
      ...extra,
    };
    if (lock) {
      await appendHistory(paths.history, record).catch((error) => logger.error({ err: error }, 'could not write the run history'));
      await lock.release();
    }
    return { ...record, pairDir: paths.dir };
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
    const engine = new Engine(config, paths, logger, signal, options.onProgress, startedAt);
    // What the run planned and whether it turned into a resync are recorded however it ends.
    try {
      await engine.run();
    } finally {
      counts = engine.counts;
      resync = engine.resync;
      await engine.dispose();
    }
    const report = await finish('success', ExitCode.ok);
    logSummary(logger, report);
    return report;
  } catch (error) {
    const failure = classify(error, signal);
    const level = failure.outcome === 'safety-stop' || failure.outcome === 'locked' ? 'warn' : 'error';
    // Messages may quote a path, and an on-the-fly remote's path may carry a password.
    const message = redact(failure.message);
    logger[level]({ outcome: failure.outcome, gate: failure instanceof SafetyStop ? failure.gate : undefined }, message);
    const report = await finish(failure.outcome, failure.exitCode, {
      message,
      ...(failure instanceof SafetyStop ? { gate: failure.gate } : {}),
    });
    logSummary(logger, report);
    return report;
  }
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
      conflicts: c?.conflicts ?? 0,
      bytes: (c?.bytesToPath1 ?? 0) + (c?.bytesToPath2 ?? 0),
      durationMs: report.durationMs,
    },
    `run ${report.outcome}`,
  );
}

interface SideListing {
  readonly listing: Listing;
  readonly missing: boolean;
}

class Engine {
  counts: PlanCounts | undefined;
  resync: boolean;
  private hashType = '';
  private readonly abandon = new AbortController();
  private readonly rclone: Rclone;
  private readonly roots: Record<Side, string>;
  private readonly listed = { path1: 0, path2: 0 };
  private readonly transfers: Partial<Record<'toPath1' | 'toPath2', TransferProgress>> = {};
  private readonly config: EngineConfig;
  private readonly paths: PairPaths;
  private readonly logger: Logger;
  private readonly signal: AbortSignal;
  private readonly progress: ((p: RunProgress) => void) | undefined;
  private readonly startedAt: Date;

  constructor(config: EngineConfig, paths: PairPaths, logger: Logger, signal: AbortSignal, progress: ((p: RunProgress) => void) | undefined, startedAt: Date) {
    this.config = config;
    this.paths = paths;
    this.logger = logger;
    this.signal = signal;
    this.progress = progress;
    this.startedAt = startedAt;
    this.resync = config.resync;
    this.roots = { path1: config.path1, path2: config.path2 };
    this.rclone = new Rclone({
      binary: config.rcloneBinary,
      logger,
      signal: AbortSignal.any([signal, this.abandon.signal]),
      transferArgs: config.rcloneArgs,
      workDir: paths.tmp,
    });
  }

  /** Stops any rclone still running (work abandoned after a failure elsewhere) and clears scratch files. */
  async dispose(): Promise<void> {
    this.abandon.abort();
    await this.rclone.dispose();
  }

  private report(phase: RunPhase): void {
    this.progress?.({ phase, listed: { ...this.listed }, ...(this.counts ? { counts: this.counts } : {}), transfers: { ...this.transfers } });
  }

  async run(): Promise<void> {
    const { config, logger } = this;
    const filters = await this.readFilters();
    this.report('listing');
    // rclone lists both sides while we read the snapshot: the two overlap instead of adding up.
    // Only checksum mode needs the backends' hash types before listing.
    const featuresOfBoth = Promise.all([this.rclone.features(config.path1), this.rclone.features(config.path2)]);
    featuresOfBoth.catch(() => {});
    const [features1, features2] = config.compare === 'checksum' ? await featuresOfBoth : [undefined, undefined];
    const hashType = features1 && features2 ? HASH_PREFERENCE.find((h) => features1.hashes.includes(h) && features2.hashes.includes(h)) ?? '' : '';
    this.hashType = hashType;
    if (config.compare === 'checksum' && !hashType) {
      logger.warn('SYNC_COMPARE=checksum but the two backends share no hash type: comparing size and modification time only');
    }
    const listings = Promise.all([this.listSide('path1', filters.file, hashType), this.listSide('path2', filters.file, hashType)]);
    // Should the snapshot stop the run, the listings are abandoned (dispose stops rclone).
    listings.catch(() => {});

    // A resync ignores the previous snapshot, and it is the way out of a damaged one that the
    // state-corrupt stop tells people to take: so a resync must not be stopped by that damage.
    const previous = await readSnapshot(this.paths.snapshot).catch((error: unknown) => {
      if (!(this.resync && error instanceof SnapshotCorrupt)) throw error;
      logger.warn({ err: error.message }, 'the previous snapshot is unreadable; this resync rebuilds it');
      return undefined;
    });
    if (!previous && !this.resync) {
      logger.info('no previous state for this pair: this first run merges both sides and deletes nothing (resync)');
      this.resync = true;
    }
    if (previous && !this.resync) checkFiltersUnchanged(previous.header.filtersHash, filters.hash);

    const [side1, side2] = await listings;
    const bothFeatures = await featuresOfBoth;
    const [precision1, precision2] = bothFeatures.map((f) => f.precisionNs);
    // Whatever SYNC_COMPARE says, a content check reads hashes rather than whole files when it can.
    const hashesInCommon = bothFeatures[0].hashes.some((h) => bothFeatures[1].hashes.includes(h));
    const compare: CrossSideCompare = {
      mtimeToleranceMs: Math.max(1, Math.ceil(Math.max(precision1!, precision2!) / 1e6)),
      commonHash: hashType !== '',
    };
    const current: Record<Side, Listing> = { path1: side1.listing, path2: side2.listing };
    const base: Record<Side, Listing> = this.resync || !previous ? { path1: new Map(), path2: new Map() } : { path1: previous.path1, path2: previous.path2 };
    if (!this.resync) {
      for (const [side, listed] of [['path1', side1], ['path2', side2]] as const) {
        if (listed.missing || listed.listing.size === 0) checkSideNotVanished(side, this.roots[side], listed.missing ? 'missing' : 'empty', base[side].size);
      }
    }

    // Hashes of a different type than the snapshot's cannot be compared with it.
    const useHash = hashType !== '' && previous?.header.hashType === hashType;
    // Within a side, a modtime changes only beyond that backend's own precision.
    const changes: Record<Side, ChangeSet> = {
      path1: detectChanges(base.path1, current.path1, useHash, precision1! / 1e6),
      path2: detectChanges(base.path2, current.path2, useHash, precision2! / 1e6),
    };
    // Also on a resync: when the run that died was the first one of the pair, the next run is a
    // resync too, and without this its half-written files would become conflict copies.
    await this.recoverInterruptedRun(changes, current);
    if (config.checkAccess) checkAccessFiles(config.checkFilename, current.path1, current.path2);

    this.report('checking');
    const stamp = compactStamp(this.startedAt);
    const reconcileBase = { changes, current, compare, conflictResolve: config.conflictResolve, stamp, resync: this.resync };
    const unknown = pathsNeedingContentCheck(reconcileBase);
    let verifiedSame = new Set<string>();
    if (unknown.length > 0) {
      logger.info({ files: unknown.length, by: hashesInCommon ? 'hash' : 'download' }, 'comparing contents of files changed on both sides');
      verifiedSame = await this.rclone.matchingFiles(config.path1, config.path2, unknown, !hashesInCommon);
    }
    const plan = reconcile({ ...reconcileBase, verifiedSame });
    this.counts = countPlan(plan);
    if (!this.resync) checkMaxDelete(this.counts, { path1: base.path1.size, path2: base.path2.size }, config.maxDeletePercent, config.force);

    for (const action of plan.actions) logAction(logger, action, config.dryRun);
    if (config.dryRun) {
      logger.info({ actions: plan.actions.length }, 'dry run: nothing changed, snapshots left as they were');
      return;
    }

    const header = {
      format: 'rclonesync-snapshot' as const,
      version: 1 as const,
      path1: redact(config.path1),
      path2: redact(config.path2),
      compare: config.compare,
      hashType,
      filtersHash: filters.hash,
      committedAt: '',
    };
    if (plan.actions.length === 0) {
      // Nothing moved: commit only if the listings differ from the snapshot in ways that need no
      // action (both sides changed identically), or this was a resync, so the next run starts clean.
      if (this.resync || changes.path1.size > 0 || changes.path2.size > 0 || previous?.header.hashType !== hashType) {
        await this.commit({ header: { ...header, committedAt: new Date().toISOString() }, path1: current.path1, path2: current.path2 });
      }
      await removeJournal(this.paths.journal);
      return;
    }

    this.report('propagating');
    const { snapshot, failure } = await this.propagateAndRelist(plan, current, base, compare);
    this.report('committing');
    await this.commit({ header: { ...header, committedAt: new Date().toISOString() }, ...snapshot });
    // After a partial failure the journal stays: it names the copies that may be half-written.
    if (failure) throw failure;
    await removeJournal(this.paths.journal);
  }

  private async readFilters(): Promise<{ file: string | undefined; hash: string }> {
    const file = this.config.filtersFile;
    if (!file) return { file: undefined, hash: '' };
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`SYNC_FILTERS_FILE (--filters-file): cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    return { file, hash: createHash('sha256').update(text).digest('hex') };
  }

  private async listSide(side: Side, filtersFile: string | undefined, hashType: string): Promise<SideListing> {
    const listing: Listing = new Map();
    const root = this.roots[side];
    try {
      for await (const batch of this.rclone.list(root, { ...(filtersFile ? { filtersFile } : {}), ...(hashType ? { hashType } : {}) })) {
        for (const entry of batch) {
          if (NEWLINE.test(entry.path)) {
            // rclone's file lists are line-based: such a name cannot be passed to it safely.
            this.logger.warn({ side, path: JSON.stringify(entry.path) }, 'skipping a file whose name contains a line break');
            continue;
          }
          listing.set(entry.path, entry.meta);
        }
        const before = this.listed[side];
        this.listed[side] += batch.length;
        if (Math.floor(before / 10_000) !== Math.floor(this.listed[side] / 10_000)) this.report('listing');
      }
    } catch (error) {
      if (error instanceof RcloneError && error.directoryNotFound) return { listing, missing: true };
      throw error;
    }
    this.report('listing');
    return { listing, missing: false };
  }

  private async recoverInterruptedRun(changes: Record<Side, ChangeSet>, current: Record<Side, Listing>): Promise<void> {
    const interrupted = await readJournal(this.paths.journal);
    if (!interrupted) return;
    const window = { from: interrupted.startedAt - 2_000, to: interrupted.lastAliveAt + HEARTBEAT_MS + 3_000 };
    for (const side of SIDES) {
      const redone = discountInterruptedCopies(changes[side], current[side], current[otherSide(side)], interrupted.copies, (path) => journalKey(side, path), window);
      if (redone.length > 0) {
        this.logger.warn({ side, files: redone.length }, 'an earlier run was interrupted while copying these files; copying them again');
      }
    }
  }

  /**
   * Carries the plan out, then works out the new snapshot from what each side really holds. When
   * some of the work failed (a file rclone could not copy, a remote that went away), what was
   * verifiably done is still recorded, and every path of an action that did not complete keeps its
   * previous snapshot entries, so the next run plans exactly that action again. A pair with one
   * permanently failing file thus keeps syncing everything else, and never undoes a deletion.
   */
  private async propagateAndRelist(
    plan: Plan,
    current: Record<Side, Listing>,
    base: Record<Side, Listing>,
    compare: CrossSideCompare,
  ): Promise<{ snapshot: Record<Side, Listing>; failure?: RunFailed }> {
    const steps = stepsOf(plan);
    const journal: JournalEntry[] = [];
    // Every version the plan writes (a rename's target too: harmless, the journal only excuses a
    // destination whose source side still holds exactly that version).
    for (const action of plan.actions) {
      const versions = versionsWritten(action, current);
      for (const to of SIDES) for (const [path, source] of versions[to]) if (source) journal.push({ to, path, source });
    }
    await writeJournal(this.paths.journal, this.startedAt.getTime(), journal);
    const stopHeartbeat = startHeartbeat(this.paths.journal);
    let propagationError: unknown;
    try {
      await propagate(steps, {
        rclone: this.rclone,
        roots: this.roots,
        checksum: this.config.compare === 'checksum',
        signal: this.signal,
        mustForce: (from, path) => {
          const source = current[from].get(path);
          const destination = current[otherSide(from)].get(path);
          return source !== undefined && destination !== undefined && sameVersion(source, destination, compare) === 'same';
        },
        onStep: (step) => this.logger.debug(step),
        onProgress: (direction, progress) => {
          this.transfers[direction] = progress;
          this.report('propagating');
        },
      });
    } catch (error) {
      // A stop (signal, lost lock) ends the run here: the previous snapshot stands, the journal
      // lets the next run finish the job.
      if (this.signal.aborted || (error instanceof RcloneError && error.cancelled)) throw error;
      propagationError = error;
    } finally {
      stopHeartbeat();
    }

    // List again every path the plan touched: a destination may store a coarser modtime or another
    // hash than the source, and after a failure this is how we learn what was really done.
    const touched = touchedPaths(plan.actions);
    const now: Record<Side, Listing> = { path1: new Map(), path2: new Map() };
    try {
      for (const side of SIDES) {
        if (touched[side].size === 0) continue;
        const relisted = this.rclone.list(this.roots[side], { onlyPaths: touched[side], ...(this.hashType ? { hashType: this.hashType } : {}) });
        for await (const batch of relisted) for (const { path, meta } of batch) if (touched[side].has(path)) now[side].set(path, meta);
      }
    } catch (error) {
      // Cannot tell what was done (the remote is gone, say): record nothing, the next run redoes it.
      throw propagationError ?? error;
    }

    const { snapshot: result, incomplete } = snapshotAfter({
      actions: plan.actions,
      current,
      base,
      relisted: now,
      compare,
      propagationSucceeded: propagationError === undefined,
    });
    if (incomplete.length === 0 && propagationError === undefined) return { snapshot: result };
    const cause = propagationError instanceof Error ? propagationError.message : `"${incomplete[0]}" changed or vanished while it was being synced`;
    const summary = `${incomplete.length} of ${plan.actions.length} actions did not complete (first: "${incomplete[0] ?? '?'}"); what was done is recorded, the next run retries the rest`;
    return { snapshot: result, failure: new RunFailed(`${cause} — ${summary}`, { cause: propagationError }) };
  }

  private async commit(snapshot: Snapshot): Promise<void> {
    this.signal.throwIfAborted();
    await writeSnapshot(this.paths.snapshot, snapshot);
  }
}

function logAction(logger: Logger, action: Action, dryRun: boolean): void {
  const prefix = dryRun ? 'would ' : '';
  switch (action.kind) {
    case 'copy':
      logger.info({ action: 'copy', from: action.from, to: otherSide(action.from), path: action.path, reason: action.reason, size: action.size, dryRun }, `${prefix}copy ${action.from} -> ${otherSide(action.from)}`);
      return;
    case 'delete':
      logger.info({ action: 'delete', side: action.side, path: action.path, dryRun }, `${prefix}delete on ${action.side}`);
      return;
    case 'file-folder-clash':
      logger.warn(
        { action: 'file-folder-clash', side: action.side, path: action.path, renamedTo: action.to, dryRun },
        `${prefix}rename a file that clashes with a folder of the same name on the other side`,
      );
      return;
    case 'conflict': {
      const o = action.outcome;
      const detail = o.winner === 'none' ? { path1Copy: o.path1Copy, path2Copy: o.path2Copy } : { winner: o.winner, loserCopy: o.loserCopy };
      logger.warn({ action: 'conflict', path: action.path, ...detail, dryRun }, `${prefix}keep both versions of a file changed on both sides`);
      return;
    }
  }
}
