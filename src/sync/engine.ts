/**
 * The pipeline of one sync run, as `Engine.run` reads: observe, detect, plan, gate, propagate,
 * commit. Each step takes what the steps before it returned and logs its phase once; the pure
 * work (detection, reconciliation, the new snapshot) lives in its own module, and every rclone
 * invocation goes through `Rclone`. `runSync` (run.ts) holds the lock around it.
 */
import type { EngineConfig } from '../config.ts';
import { ConfigError, RunFailed, SafetyStop } from '../errors.ts';
import { logCaughtUp, redact, type Logger } from '../log.ts';
import { otherSide, sameRecord, SIDES, type Direction, type FileMeta, type Listing, type PlanCounts, type RunPhase, type RunProgress, type Side, type TransferProgress } from '../model.ts';
import { BlockComparison, PairVerdict, type BlockDigests } from '../rclone/listing-blocks.ts';
import { joinRemote, Rclone, RcloneError, type BackendFeatures } from '../rclone/rclone.ts';
import { journalExists, journalKey, readJournal, removeJournal, startHeartbeat, unfinishedWindows, writeJournal, writeSpan, windowOfCopies, type JournalEntry, type JournalWindow } from '../state/journal.ts';
import type { PairPaths } from '../state/pair.ts';
import { readListingDigests, removeListingDigests, settingsDigest, writeListingDigests } from '../state/listing-digests.ts';
import { readSnapshot, snapshotHeader, SnapshotCorrupt, writeSnapshot, type Snapshot } from '../state/snapshot.ts';
import { knownAfterPropagation, pickSentinels, rootsStillListed, snapshotAfter, touchedPaths, type LearnedInPropagation } from './commit.ts';
import { chooseHash, sameVersion, type CrossSideCompare } from './compare.ts';
import { detectChanges, discountInterruptedCopies } from './detect.ts';
import { visitEffects } from './effects.ts';
import { foldersAfter, planFolders, type FolderPlan } from './folders.ts';
import type { ChangedPart } from './listing-overlay.ts';
import { listSide, readFilters, rootIdentity, type Filters } from './observe.ts';
import { propagate, stepsOf } from './propagate.ts';
import { confirmRenames, pathsToHash, renameCandidates, type MoveStep } from './renames.ts';
import { compactStamp, ConflictNamer, foldsNames, pathsNeedingContentCheck, reconcile } from './reconcile.ts';
import { checkAccessFiles, checkFiltersUnchanged, checkMaxDelete, checkSideNotVanished } from './safety.ts';
import { tendTrash, type TrashedFiles } from './tend-trash.ts';
import { trashFolders, trashRoot } from './trash.ts';
import { countPlan, type Action, type ChangeSet, type Plan } from './types.ts';

export interface EngineOptions {
  readonly config: EngineConfig;
  readonly paths: PairPaths;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly onProgress: ((p: RunProgress) => void) | undefined;
  readonly startedAt: Date;
  /** Before the previous snapshot is read whole, its size (the run sizes its heap by it: heap.ts). */
  readonly onSnapshotSize?: (bytes: number) => void;
  /** As a resync (which reads no snapshot and holds both listings whole) lists, the files so far. */
  readonly onListedWhole?: (files: number) => void;
}

export class Engine {
  private resync: boolean;
  private done: PlanCounts | undefined;
  private trashed: Record<Side, number> | undefined;
  private readonly abandon = new AbortController();
  private readonly rclone: Rclone;
  private readonly roots: Record<Side, string>;
  private readonly trash: Record<Side, string>;
  private readonly listed = { path1: 0, path2: 0 };
  private readonly transfers: Partial<Record<Direction, TransferProgress>> = {};
  private readonly stamp: string;
  private readonly options: EngineOptions;

  constructor(options: EngineOptions) {
    this.options = options;
    const { config, paths, logger, signal } = options;
    this.resync = config.resync;
    this.stamp = compactStamp(options.startedAt);
    this.roots = { path1: config.path1, path2: config.path2 };
    this.trash = { path1: trashRoot(config.path1, config.trashPaths.path1), path2: trashRoot(config.path2, config.trashPaths.path2) };
    this.rclone = new Rclone({
      binary: config.rcloneBinary,
      logger,
      signal: AbortSignal.any([signal, this.abandon.signal]),
      transferArgs: config.rcloneArgs,
      workDir: paths.tmp,
      stallTimeoutMs: config.stallTimeoutMs,
      localFeaturesFile: paths.localFeatures,
      localListing: config.localListing,
    });
  }

  async run(): Promise<RunResult> {
    try {
      const observed = await this.observe();
      if (observed.kind === 'unchanged') return await this.unchanged();
      const detected = await this.detect(observed);
      const plan = this.plan(observed, detected);
      const folders = this.planFolders(observed, plan);
      await this.gate(observed, plan, folders);
      if (this.options.config.dryRun) {
        this.options.logger.info({ actions: plan.actions.length }, 'dry run: nothing changed, snapshots left as they were');
        return this.result();
      }
      const outcome = await this.propagate(observed, detected, plan, folders);
      await this.commit(observed, detected, plan, outcome, folders);
      return this.result();
    } catch (error) {
      throw new EngineStopped(error, this.result());
    }
  }

  /** Stops any rclone still running (work abandoned after a failure elsewhere) and clears scratch files. */
  async dispose(): Promise<void> {
    this.abandon.abort();
    await this.rclone.dispose();
  }

  private result(): RunResult {
    return { counts: this.done, trashed: this.trashed, resync: this.resync };
  }

  private report(phase: RunPhase, counts?: PlanCounts): void {
    this.options.onProgress?.({ phase, listed: { ...this.listed }, ...(counts ? { counts } : {}), transfers: { ...this.transfers } });
  }

  // -------------------------------------------------------------------------------------------
  // observe
  // -------------------------------------------------------------------------------------------

  private async observe(): Promise<Observed | Unchanged> {
    const { config, logger, paths } = this.options;
    logger.info('listing both sides');
    const filters = await readFilters(config.filtersFile);
    // The listings the snapshot describes, as digests, when the last run found nothing to change:
    // while this run's listings hold the same blocks, neither they nor the snapshot are read.
    // Not after an interrupted run (its journal says what to redo), nor on a resync.
    const settings = settingsDigest({ ...config, filtersHash: filters.hash });
    const lastListings = this.resync || (await journalExists(paths.journal)) ? undefined : await readListingDigests(paths.listingDigests, paths.snapshot, settings);
    this.report('listing');
    const identity = { path1: await rootIdentity(config.path1), path2: await rootIdentity(config.path2) };
    // rclone lists both sides while we read the snapshot: the two overlap instead of adding up.
    // Only checksum mode needs the backends' hash types before listing; a run that turns out
    // unchanged needs them not at all (asking a remote costs a connection).
    let asked: Promise<[BackendFeatures, BackendFeatures]> | undefined;
    const featuresOfBoth = (): Promise<[BackendFeatures, BackendFeatures]> => {
      asked ??= Promise.all([this.rclone.features(config.path1), this.rclone.features(config.path2)]);
      asked.catch(() => {});
      return asked;
    };
    const [early1, early2] = config.compare === 'checksum' ? await featuresOfBoth() : [undefined, undefined];
    const hashType = early1 && early2 ? chooseHash(early1.hashes, early2.hashes) : '';
    if (config.compare === 'checksum' && !hashType) {
      logger.warn('SYNC_COMPARE=checksum but the two backends share no hash type: comparing size and modification time only');
    }
    const folders = { path1: new Set<string>(), path2: new Set<string>() };
    let snapshotted: Snapshot | undefined;
    // A resync ignores the previous snapshot, and it is the way out of a damaged one that the
    // state-corrupt stop tells people to take: so a resync must not be stopped by that damage.
    let reading: Promise<Snapshot | undefined> | undefined;
    const readPrevious = (): Promise<Snapshot | undefined> => {
      reading ??= readSnapshot(paths.snapshot, { ...(this.options.onSnapshotSize ? { onOpen: this.options.onSnapshotSize } : {}) }).then(
        (snapshot) => (snapshotted = snapshot),
        (error: unknown) => {
          if (!(this.resync && error instanceof SnapshotCorrupt)) throw error;
          logger.warn({ err: error.message }, 'the previous snapshot is unreadable; this resync rebuilds it');
          return undefined;
        },
      );
      // Awaited below; until then its failure must not count as unhandled.
      reading.catch(() => {});
      return reading;
    };
    // Both read at once, beside the listings; with the last listings' digests, once a block differs.
    const verdict = new PairVerdict(() => {
      void readPrevious();
      void featuresOfBoth();
    });
    const blocks = { path1: new BlockComparison(lastListings?.path1, verdict), path2: new BlockComparison(lastListings?.path2, verdict) };
    const listings = Promise.all([
      this.listSide('path1', filters.file, hashType, folders.path1, () => snapshotted?.path1, () => readPrevious().then((s) => s?.path1), blocks.path1),
      this.listSide('path2', filters.file, hashType, folders.path2, () => snapshotted?.path2, () => readPrevious().then((s) => s?.path2), blocks.path2),
    ]);
    // Should the snapshot stop the run, the listings are abandoned (dispose stops rclone).
    listings.catch(() => {});

    const checkPrevious = (previous: Snapshot | undefined): void => {
      if (!previous && !this.resync) {
        logger.info('no previous state for this pair: this first run merges both sides and deletes nothing (resync)');
        this.resync = true;
      }
      if (previous && !this.resync) checkFiltersUnchanged(previous.header.filtersHash, filters.hash);
    };
    // Refused before the listings end: a changed filter makes every listing meaningless.
    if (!lastListings) checkPrevious(await readPrevious());

    const [side1, side2] = await listings;
    if (side1.unchanged && side2.unchanged) return { kind: 'unchanged' };
    const previous = await readPrevious();
    if (lastListings) checkPrevious(previous);
    const [features1, features2] = await featuresOfBoth();
    return {
      kind: 'listed',
      settings,
      blocks: { path1: blocks.path1.digests, path2: blocks.path2.digests },
      filters,
      previous,
      // A side read in part made the snapshot's map its listing: the snapshot as it was is seen through it.
      base: this.resync || !previous ? { path1: new Map(), path2: new Map() } : { path1: side1.changed?.snapshot ?? previous.path1, path2: side2.changed?.snapshot ?? previous.path2 },
      current: { path1: side1.listing, path2: side2.listing },
      exact: { path1: side1.exact, path2: side2.exact },
      changed: { path1: side1.changed, path2: side2.changed },
      missing: { path1: side1.missing, path2: side2.missing },
      folders,
      features: { path1: features1, path2: features2 },
      hashType,
      compare: {
        mtimeToleranceMs: Math.max(1, Math.ceil(Math.max(features1.precisionNs, features2.precisionNs) / 1e6)),
        commonHash: hashType !== '',
      },
      identity,
    };
  }

  private listSide(
    side: Side,
    filtersFile: string | undefined,
    hashType: string,
    folders: Set<string>,
    snapshotted: () => Listing | undefined,
    snapshot: () => Promise<Listing | undefined>,
    blocks: BlockComparison,
  ) {
    const { config, logger } = this.options;
    const root = this.roots[side];
    const excludedFolders = trashFolders(root, config.trashPaths[side]);
    const listed = listSide({
      rclone: this.rclone,
      logger,
      side,
      root,
      filtersFile,
      hashType,
      excludedFolders,
      folders,
      snapshotted,
      snapshot,
      blocks,
      onListed: (count) => {
        const before = this.listed[side];
        this.listed[side] = count;
        if (Math.floor(before / 10_000) === Math.floor(count / 10_000)) return;
        this.report('listing');
        if (this.resync) this.options.onListedWhole?.(this.listed.path1 + this.listed.path2);
      },
    });
    return listed.finally(() => this.report('listing'));
  }

  // -------------------------------------------------------------------------------------------
  // detect
  // -------------------------------------------------------------------------------------------

  private async detect(observed: Observed): Promise<Detected> {
    const { config, logger } = this.options;
    logger.info('checking for changes');
    const { base, current, changed, features, hashType, previous } = observed;
    // Hashes of a different type than the snapshot's cannot be compared with it.
    const useHash = hashType !== '' && previous?.header.hashType === hashType;
    // Within a side, a modtime changes only beyond that backend's own precision.
    // A listing read in part differs from the snapshot only under its changed folders.
    const compared = (side: Side): [ReadonlyMap<string, FileMeta>, ReadonlyMap<string, FileMeta>] => {
      const part = changed[side];
      return part && base[side] === part.snapshot ? [part.before, part.now] : [base[side], current[side]];
    };
    const changes: Record<Side, ChangeSet> = {
      path1: detectChanges(...compared('path1'), useHash, features.path1.precisionNs / 1e6),
      path2: detectChanges(...compared('path2'), useHash, features.path2.precisionNs / 1e6),
    };
    // Also on a resync: when the run that died was the first one of the pair, the next run is a
    // resync too, and without this its half-written files would become conflict copies.
    const { carried, halfWritten, movedAlike } = await this.recoverInterruptedRuns(changes, current);

    this.report('checking');
    const renames = config.trackRenames && !this.resync ? await this.detectRenames(observed, changes) : undefined;
    const unknown = pathsNeedingContentCheck(this.reconcileInput(observed, changes)).filter((path) => !movedAlike.has(path));
    if (unknown.length === 0) return { changes, verifiedSame: movedAlike, carried, halfWritten, renames };
    // Whatever SYNC_COMPARE says, a content check reads hashes rather than whole files when it can.
    const hashesInCommon = features.path1.hashes.some((h) => features.path2.hashes.includes(h));
    logger.info({ files: unknown.length, by: hashesInCommon ? 'hash' : 'download' }, 'comparing contents of files whose metadata cannot tell');
    const verifiedSame = await this.rclone.matchingFiles(config.path1, config.path2, unknown, !hashesInCommon);
    for (const path of movedAlike) verifiedSame.add(path);
    return { changes, verifiedSame, carried, halfWritten, renames };
  }

  /**
   * Renames on each side that the other side can follow with a move (see renames.ts): candidates by
   * size and time, confirmed by content — the listings' hashes when they carry one both sides
   * share, else one `rclone hashsum` per side of just those files (by a hash both backends have,
   * else by reading them).
   */
  private async detectRenames(observed: Observed, changes: Record<Side, ChangeSet>): Promise<Record<Side, Map<string, string>> | undefined> {
    const { logger } = this.options;
    const { current, features } = observed;
    const groups = SIDES.flatMap((side) => renameCandidates(side, changes[side], { changes: changes[otherSide(side)], current: current[otherSide(side)] }));
    if (groups.length === 0) return undefined;
    const { renamed, kept } = pathsToHash(groups);
    const hashes: Record<Side, Map<string, string>> = { path1: new Map(), path2: new Map() };
    const listedHash = (side: Side, path: string) => current[side].get(path)?.hash ?? '';
    const common = chooseHash(features.path1.hashes, features.path2.hashes);
    // Listing hashes are of the one chosen type on both sides: usable as they are.
    const unhashed: Record<Side, string[]> = { path1: [], path2: [] };
    for (const side of SIDES) {
      for (const path of [...renamed[side], ...kept[side]]) {
        const hash = observed.hashType ? listedHash(side, path) : '';
        if (hash) hashes[side].set(path, hash);
        else unhashed[side].push(path);
      }
    }
    const type = common || 'md5';
    const read = await Promise.all(SIDES.map((side) => this.rclone.hashes(this.roots[side], unhashed[side], type, !common)));
    for (const side of SIDES) for (const [path, hash] of read[side === 'path1' ? 0 : 1]!) if (!hashes[side].has(path)) hashes[side].set(path, hash);
    const confirmed = confirmRenames(groups, (side, path) => hashes[side].get(path));
    const candidates = groups.reduce((n, g) => n + g.to.length, 0);
    const found = confirmed.path1.size + confirmed.path2.size;
    logger.info({ candidates, confirmed: found, by: common ? `hash ${common}` : 'download' }, 'looking for renamed and moved files');
    return confirmed;
  }

  /**
   * Half-written files of killed runs are recognised by the journal and copied again. Returns the
   * windows of those files: they stay in the journal until this run has replaced them.
   */
  private async recoverInterruptedRuns(
    changes: Record<Side, ChangeSet>,
    current: Record<Side, Listing>,
  ): Promise<{ carried: JournalWindow[]; halfWritten: Record<Side, Map<string, FileMeta>>; movedAlike: Set<string> }> {
    const halfWritten = { path1: new Map<string, FileMeta>(), path2: new Map<string, FileMeta>() };
    const movedAlike = new Set<string>();
    const windows = await readJournal(this.options.paths.journal);
    if (!windows) return { carried: [], halfWritten, movedAlike };
    const carried: JournalWindow[] = [];
    for (const window of windows) {
      // A killed run's moves that were made: the path is new on both sides, and each side holds
      // exactly the version it had then (a side compared with itself: as exact as detection is).
      for (const side of SIDES) {
        for (const [path, change] of changes[side]) {
          if (change.kind !== 'new') continue;
          const moved = window.moves.get(journalKey(side, path));
          const there = changes[otherSide(side)].get(path);
          if (!moved || there?.kind !== 'new') continue;
          const exactly = (a: FileMeta, b: FileMeta) => a.size === b.size && a.mtime === b.mtime;
          if (exactly(change.now, moved.moved) && exactly(there.now, moved.renamed)) movedAlike.add(path);
        }
      }
      const redone: JournalEntry[] = [];
      for (const side of SIDES) {
        const discounted = discountInterruptedCopies(
          changes[side],
          current[side],
          current[otherSide(side)],
          window.copies,
          (path) => journalKey(side, path),
          writeSpan(window),
          changes[otherSide(side)],
        );
        for (const [path, listed] of discounted) {
          redone.push({ to: side, path, source: window.copies.get(journalKey(side, path))! });
          halfWritten[side].set(path, listed);
        }
        if (discounted.size > 0) this.options.logger.warn({ side, files: discounted.size }, 'an earlier run was interrupted while copying these files; copying them again');
      }
      if (redone.length > 0) carried.push({ startedAt: window.startedAt, lastAliveAt: window.lastAliveAt, copies: redone });
    }
    if (movedAlike.size > 0) this.options.logger.info({ files: movedAlike.size }, 'an earlier run was interrupted while moving these files; they are moved already');
    return { carried, halfWritten, movedAlike };
  }

  // -------------------------------------------------------------------------------------------
  // plan and gate
  // -------------------------------------------------------------------------------------------

  private reconcileInput(observed: Observed, changes: Record<Side, ChangeSet>) {
    const { config } = this.options;
    return {
      changes,
      current: observed.current,
      compare: observed.compare,
      conflictResolve: config.conflictResolve,
      stamp: this.stamp,
      resync: this.resync,
      foldsNames: foldsNames(observed.features),
    };
  }

  private plan(observed: Observed, detected: Detected): Plan {
    const plan = reconcile({ ...this.reconcileInput(observed, detected.changes), verifiedSame: detected.verifiedSame, ...(detected.renames ? { renames: detected.renames } : {}) });
    this.report('checking', countPlan(plan));
    return plan;
  }

  /** SYNC_EMPTY_DIRS: the folders to make and remove (see folders.ts); undefined when off. */
  private planFolders(observed: Observed, plan: Plan): FolderPlan | undefined {
    if (!this.options.config.emptyDirs) return undefined;
    const { features } = observed;
    return planFolders({
      current: observed.folders,
      base: this.resync ? undefined : observed.previous?.folders,
      files: observed.current,
      actions: plan.actions,
      canHaveEmpty: { path1: features.path1.canHaveEmptyDirs, path2: features.path2.canHaveEmptyDirs },
      resync: this.resync,
    });
  }

  /**
   * Every safety check, before anything changes; then the plan is logged. A dry run logs its plan
   * first, whatever the checks say, and then names the check a real run would stop at.
   */
  private async gate(observed: Observed, plan: Plan, folders: FolderPlan | undefined): Promise<void> {
    const { config, logger } = this.options;
    const { base, current, missing } = observed;
    const logPlan = async () => {
      await logEach(plan.actions, (action) => logAction(logger, action, config.dryRun));
      const prefix = config.dryRun ? 'would ' : '';
      for (const side of SIDES) {
        await logEach(folders?.create[side] ?? [], (path) => logger.info({ folder: 'create', side, path, dryRun: config.dryRun }, `${prefix}create folder on ${side}: ${path}`));
        await logEach(folders?.remove[side] ?? [], (path) => logger.info({ folder: 'remove', side, path, dryRun: config.dryRun }, `${prefix}remove folder on ${side}: ${path} (if empty)`));
      }
    };
    if (config.dryRun) {
      await logPlan();
      this.done = countPlan(plan);
    }
    try {
      if (!this.resync) {
        for (const side of SIDES) {
          if (missing[side] || current[side].size === 0) checkSideNotVanished(side, this.roots[side], missing[side] ? 'missing' : 'empty', base[side].size);
        }
      }
      if (config.checkAccess) checkAccessFiles(config.checkFilename, current.path1, current.path2);
      if (config.trashDays > 0) {
        for (const side of SIDES) {
          if (observed.features[side].serverSideMove) continue;
          const name = side === 'path1' ? 'SYNC_PATH1' : 'SYNC_PATH2';
          throw new ConfigError(
            `${name} (${this.roots[side]}) is on a backend that cannot move or copy files server-side, so it cannot keep a trash of what the sync removes: ` +
              'set SYNC_TRASH_DAYS=0 (removals and overwrites then are final) or put that side on a backend that can',
          );
        }
      }
      if (!this.resync) checkMaxDelete(countPlan(plan), { path1: base.path1.size, path2: base.path2.size }, config.maxDeletePercent, config.force);
      if (!config.dryRun) await logPlan();
    } catch (error) {
      if (config.dryRun && error instanceof SafetyStop) {
        throw new SafetyStop(error.gate, `dry run: the actions above are what a run would do, but a real run would stop here: ${error.message}`);
      }
      throw error;
    }
  }

  // -------------------------------------------------------------------------------------------
  // propagate
  // -------------------------------------------------------------------------------------------

  private async propagate(observed: Observed, detected: Detected, plan: Plan, folders: FolderPlan | undefined): Promise<{ failure: unknown; folders: PropagationResults }> {
    const results: PropagationResults = {
      made: { path1: [], path2: [] },
      removed: { path1: [], path2: [] },
      moved: { path1: [], path2: [] },
      removedFiles: { path1: [], path2: [] },
      listedAfterCopies: { path1: new Map(), path2: new Map() },
    };
    if (plan.actions.length === 0 && !hasFolderWork(folders)) return { failure: undefined, folders: results };
    const { config, logger, paths, signal } = this.options;
    logger.info({ actions: plan.actions.length }, 'applying changes');
    this.report('propagating', countPlan(plan));
    const { current, compare } = observed;
    const runTrash = config.trashDays > 0 ? { path1: joinRemote(this.trash.path1, this.stamp), path2: joinRemote(this.trash.path2, this.stamp) } : undefined;
    // The version each written path must end up holding (a conflict copy's included).
    const versions: Record<Side, Map<string, FileMeta | undefined>> = { path1: new Map(), path2: new Map() };
    const collect = { written: (side: Side, path: string, version: FileMeta | undefined) => void versions[side].set(path, version), removed: () => {} };
    for (const action of plan.actions) visitEffects(action, current, collect);
    // A version rescued during the copies gets a conflict name by the plan's rules, and none the plan writes.
    const rescueNames = new ConflictNamer({ current, changes: detected.changes, stamp: this.stamp }, (name) => versions.path1.has(name) || versions.path2.has(name));
    let stopHeartbeat = () => {};
    let failure: unknown;
    try {
      await propagate(stepsOf(plan, observed.folders, config.filtersFile ? undefined : current), {
        rclone: this.rclone,
        folders: observed.folders,
        ...(folders ? { folderPlan: folders } : {}),
        keepEmptyFolders: config.emptyDirs,
        onFolder: (side, path, done) => results[done][side].push(path),
        onMoved: (side, move) => results.moved[side].push(move),
        onRemoved: (side, removed) => results.removedFiles[side].push(...removed),
        onListedAfterCopy: (side, copied, now) => {
          // A copy that wrote the very version it was to write keeps that version's record: one
          // record for both sides, as in a listing (a million fewer objects after a first run).
          for (const path of copied) {
            const listed = now.get(path);
            const wanted = versions[side].get(path);
            results.listedAfterCopies[side].set(path, listed && wanted && sameRecord(listed, wanted) ? wanted : listed);
          }
        },
        roots: this.roots,
        checksum: config.compare === 'checksum',
        listedVersion: (side, path) => detected.halfWritten[side].get(path) ?? current[side].get(path),
        hashType: observed.hashType,
        listedFiles: { path1: current.path1.size, path2: current.path2.size },
        trash: runTrash,
        signal,
        beforeCopying: async (copies) => {
          // Every version the copies will write, this run's window, before the first byte moves.
          const own = windowOfCopies(this.options.startedAt.getTime(), copies, (to, path) => versions[to].get(path));
          const moves = plan.actions.flatMap((a) => {
            const renamed = a.kind === 'move' ? current[otherSide(a.side)].get(a.path) : undefined;
            return a.kind === 'move' && renamed ? [{ to: a.side, from: a.from, path: a.path, source: a.meta, renamed }] : [];
          });
          await writeJournal(paths.journal, [...detected.carried, { ...own, moves }]);
          stopHeartbeat = startHeartbeat(paths.journal);
        },
        rescueName: (side, path) => rescueNames.allocate(path, side),
        mustForce: (from, path) => {
          const source = current[from].get(path);
          const destination = current[otherSide(from)].get(path);
          return source !== undefined && destination !== undefined && sameVersion(source, destination, compare) === 'same';
        },
        onStep: (step) => logger.debug(step),
        onSkipped: (side, path, what) =>
          logger.warn({ side, path, skipped: what }, `${path} changed on ${side} after it was listed: left alone (the next run sees the change)`),
        onRescued: (side, path, to) =>
          logger.warn({ side, path, keptAs: to }, `${path} was written on ${side} while this run copied over it: that version is kept as ${to}`),
        onProgress: (direction, progress) => {
          this.transfers[direction] = progress;
          this.report('propagating');
        },
      });
    } catch (error) {
      // A stop (signal, lost lock) ends the run here: the previous snapshot stands, the journal
      // lets the next run finish the job.
      if (signal.aborted || (error instanceof RcloneError && error.cancelled)) throw error;
      failure = error;
    } finally {
      stopHeartbeat();
    }
    return { failure, folders: results };
  }

  // -------------------------------------------------------------------------------------------
  // commit
  // -------------------------------------------------------------------------------------------

  /**
   * Works out the new snapshot from what each side really holds, and saves it. When some of the
   * work failed (a file rclone could not copy, a remote that went away), what was verifiably done
   * is still recorded, and every path of an action that did not complete keeps its previous
   * snapshot entries, so the next run plans exactly that action again. A pair with one
   * permanently failing file thus keeps syncing everything else, and never undoes a deletion.
   */
  private async commit(observed: Observed, detected: Detected, plan: Plan, outcome: { failure: unknown; folders: PropagationResults }, folders: FolderPlan | undefined): Promise<void> {
    const { logger, paths, signal } = this.options;
    const { current, base, compare, previous } = observed;
    const changed = detected.changes.path1.size > 0 || detected.changes.path2.size > 0;
    if (plan.actions.length === 0) {
      this.done = countPlan(plan);
      // Nothing moved: commit only if the listings differ from the snapshot in ways that need no
      // action (both sides changed identically), or this was a resync, so the next run starts clean.
      const foldersChanged = folders !== undefined && (hasFolderWork(folders) || !sameFolders(previous?.folders, observed.folders));
      if (this.resync || changed || foldersChanged || previous?.header.hashType !== observed.hashType) await this.save(observed, current, outcome.folders);
      else if (detected.carried.length === 0 && detected.verifiedSame.size === 0) await this.rememberListings(observed);
      await removeJournal(paths.journal);
      await this.tendTrash(undefined);
      return;
    }
    logger.info('committing');
    this.report('committing');
    // Nothing reads the change sets again: their entries (a million after a first run) are freed
    // before the new snapshot is built, not held until the run ends.
    for (const side of SIDES) detected.changes[side].clear();
    const now = await this.relistTouched(observed, plan, outcome);

    const trashable = this.options.config.trashDays > 0 ? trashableBy(plan.actions, current) : undefined;
    // The listings become the new snapshot (edited in place): nothing below reads them as listed.
    const { snapshot, incomplete, done } = snapshotAfter({ actions: plan.actions, current, base, relisted: now, compare, propagationSucceeded: outcome.failure === undefined });
    this.done = countPlan({ actions: done });
    const trashed = trashable ? trashedBy(done, trashable) : undefined;
    if (trashed) this.trashed = { path1: trashed.path1.files, path2: trashed.path2.files };
    signal.throwIfAborted();
    await this.save(observed, snapshot, outcome.folders);
    // Killed runs' half-written files that this run did not manage to replace stay in the journal;
    // this run's own copies do not: rclone removes what it wrote when a transfer fails, so a
    // destination that changed under it was changed by a person.
    const carried = unfinishedWindows(detected.carried, new Set(incomplete));
    if (carried.length > 0) await writeJournal(paths.journal, carried);
    else await removeJournal(paths.journal);

    if (incomplete.length === 0 && outcome.failure === undefined) {
      await this.tendTrash(trashed);
      return;
    }
    const cause = outcome.failure instanceof Error ? outcome.failure.message : `"${incomplete[0]}" changed or vanished while it was being synced`;
    const summary = `${incomplete.length} of ${plan.actions.length} actions did not complete (first: "${incomplete[0] ?? '?'}"); what was done is recorded, the next run retries the rest`;
    throw new RunFailed(`${cause} — ${summary}`, { cause: outcome.failure });
  }

  /**
   * Every path the plan touched, as it is now on each side: learned in propagation or listed again,
   * once each root is shown to still be the folder that was listed. The touched sets (a million
   * paths after a first run) live only here, not on through the snapshot's building and writing.
   */
  private async relistTouched(observed: Observed, plan: Plan, outcome: { failure: unknown; folders: PropagationResults }): Promise<Record<Side, Listing>> {
    const { current } = observed;
    // List again every path the plan touched (a destination may store a coarser modtime or another
    // hash than the source, and after a failure this is how we learn what was really done), and a
    // few untouched files, whose presence proves each root is still the folder that was listed.
    // What propagation learned as it went is known without listing (see knownAfterPropagation).
    const touchedOtherwise = touchedPaths(plan.actions.filter((a) => a.kind !== 'move'), current);
    const touchedByMoves = touchedPaths(plan.actions.filter((a) => a.kind === 'move'), current);
    const both = (side: Side) => (touchedByMoves[side].size === 0 ? touchedOtherwise[side] : new Set([...touchedOtherwise[side], ...touchedByMoves[side]]));
    const touched = { path1: both('path1'), path2: both('path2') };
    const known = knownAfterPropagation(outcome.folders, current, { otherwise: touchedOtherwise, byMoves: touchedByMoves });
    const sentinels = { path1: pickSentinels(current.path1, touched.path1, SENTINELS), path2: pickSentinels(current.path2, touched.path2, SENTINELS) };
    const now: Record<Side, Listing> = { path1: new Map(), path2: new Map() };
    try {
      // Both sides at once (on two remotes, each relisting waits on its own server); allSettled, so
      // that no listing is left running when the other fails.
      const relistings = await Promise.allSettled(
        SIDES.map(async (side) => {
          const unknown: string[] = [];
          for (const path of touched[side]) if (!known[side].has(path)) unknown.push(path);
          const listed = await this.rclone.listPaths(this.roots[side], [...unknown, ...sentinels[side]], observed.hashType);
          // The known map becomes the relisting (known gone: absent), with what was listed added:
          // no third map of every copied path. The two never share a path: only untouched
          // sentinels and touched paths not known were listed.
          const relisted = known[side];
          for (const [path, meta] of relisted) if (!meta) relisted.delete(path);
          for (const [path, meta] of listed) relisted.set(path, meta);
          now[side] = relisted as Listing;
        }),
      );
      for (const relisting of relistings) if (relisting.status === 'rejected') throw relisting.reason;
    } catch (error) {
      // Cannot tell what was done (the remote is gone, say): record nothing, the next run redoes it.
      throw outcome.failure ?? error;
    }
    for (const side of SIDES) {
      const identity = await rootIdentity(this.roots[side]);
      if (!rootsStillListed(current[side], sentinels[side], now[side]) || identity !== observed.identity[side]) {
        // Whatever was written went to some other folder (a mount point whose mount went away):
        // recording it would turn into deletions once the real folder is back.
        throw new RunFailed(
          `${side} (${this.roots[side]}) is no longer the folder that was listed (did a mount go away during the run?); nothing was committed: ` +
            'the next run starts again from the last good state',
          { cause: outcome.failure },
        );
      }
    }
    return now;
  }

  /** Both listings were exactly the last run's: nothing to detect, plan or carry out. */
  private async unchanged(): Promise<RunResult> {
    const { config, logger } = this.options;
    logger.info('checking for changes');
    logger.info({ unchanged: true }, 'both listings are exactly those of the last run, which changed nothing: nothing to do');
    this.done = countPlan({ actions: [] });
    if (config.dryRun) {
      logger.info({ actions: 0 }, 'dry run: nothing changed, snapshots left as they were');
      return this.result();
    }
    await this.tendTrash(undefined);
    return this.result();
  }

  /** The snapshot describes this run's listings exactly: the next run may find them unchanged by their digests. */
  private async rememberListings(observed: Observed): Promise<void> {
    const { path1, path2 } = observed.blocks;
    const { paths } = this.options;
    if (path1 && path2) await writeListingDigests(paths.listingDigests, paths.snapshot, observed.settings, { path1, path2 }, observed.exact);
  }

  /** Retention and the trash's counts (tend-trash.ts), given what this run put in each trash. */
  private tendTrash(trashed: Record<Side, TrashedFiles> | undefined): Promise<void> {
    const { config, logger, paths, startedAt } = this.options;
    return tendTrash({ rclone: this.rclone, logger, statsFile: paths.trashStats, trashRoots: this.trash, trashDays: config.trashDays, now: startedAt.getTime() }, trashed);
  }

  private async save(observed: Observed, listings: Record<Side, Listing>, folders: PropagationResults): Promise<void> {
    const { config, paths, signal } = this.options;
    const header = snapshotHeader({
      path1: redact(config.path1),
      path2: redact(config.path2),
      compare: config.compare,
      hashType: observed.hashType,
      filtersHash: observed.filters.hash,
    });
    signal.throwIfAborted();
    const after = config.emptyDirs
      ? { path1: foldersAfter(observed.folders.path1, folders.made.path1, folders.removed.path1, listings.path1), path2: foldersAfter(observed.folders.path2, folders.made.path2, folders.removed.path2, listings.path2) }
      : undefined;
    // The digests stand for the snapshot being replaced (they say so too; this is belt and braces).
    await removeListingDigests(paths.listingDigests);
    await writeSnapshot(paths.snapshot, { header, path1: listings.path1, path2: listings.path2, folders: after });
  }

}

/** What a run did, however it ended: the counts of what was done (absent before planning). */
export interface RunResult {
  readonly counts: PlanCounts | undefined;
  /** Files moved to each side's trash (absent when nothing was done). */
  readonly trashed: Record<Side, number> | undefined;
  readonly resync: boolean;
}

/** Engine.run's failures carry what the run had done by then. */
export class EngineStopped extends Error {
  readonly result: RunResult;
  constructor(cause: unknown, result: RunResult) {
    super('run stopped', { cause });
    this.result = result;
  }
}

/** The folders propagation made and removed, per side, and what it learned of the files (commit.ts). */
interface PropagationResults extends LearnedInPropagation {
  readonly made: Record<Side, string[]>;
  readonly removed: Record<Side, string[]>;
  readonly moved: Record<Side, MoveStep[]>;
  readonly removedFiles: Record<Side, string[]>;
  readonly listedAfterCopies: Record<Side, Map<string, FileMeta | undefined>>;
}

const hasFolderWork = (folders: FolderPlan | undefined): boolean =>
  folders !== undefined && SIDES.some((side) => folders.create[side].length + folders.remove[side].length > 0);

function sameFolders(previous: Record<Side, ReadonlySet<string>> | undefined, now: Record<Side, ReadonlySet<string>>): boolean {
  return previous !== undefined && SIDES.every((side) => previous[side].size === now[side].size && [...now[side]].every((f) => previous[side].has(f)));
}

/** Untouched files per side whose presence after propagation proves the root is still the one listed. */
const SENTINELS = 8;
/** Lines of the plan logged between waits for stdout to catch up (~2.5 MB of log: a copy line is ~250 bytes). */
const LOG_CATCH_UP_EVERY = 10_000;


/** Both listings hold exactly the blocks of the last run's, which changed nothing: neither was read. */
interface Unchanged {
  readonly kind: 'unchanged';
}

/** Both sides as listed, with the snapshot they are compared against. */
interface Observed {
  readonly kind: 'listed';
  readonly filters: Filters;
  /** settingsDigest of this run's settings (listing-digests.ts). */
  readonly settings: string;
  /** Each listing's blocks (undefined: they cannot stand for it, see listing-blocks.ts). */
  readonly blocks: Record<Side, BlockDigests | undefined>;
  /**
   * The last snapshot, for its header and folders. Its files are read through `base`: a side's map
   * here may have become that side's listing (observe.ts).
   */
  readonly previous: Snapshot | undefined;
  /**
   * The snapshot to diff against: empty on a resync. Read-only, and may be a listing's own map (a
   * side listed exactly as its snapshot, or read in part): true until the commit edits the listings.
   */
  readonly base: Record<Side, ReadonlyMap<string, FileMeta>>;
  readonly current: Record<Side, Listing>;
  /** Each listing holds exactly the snapshot's files, each as the snapshot has it. */
  readonly exact: Record<Side, boolean>;
  /** Of a listing read in part, where alone it can differ from the snapshot (`base`). */
  readonly changed: Record<Side, ChangedPart | undefined>;
  readonly missing: Record<Side, boolean>;
  /** Folders each side holds (empty ones included): a copy must not find one in its way. */
  readonly folders: Record<Side, Set<string>>;
  readonly features: Record<Side, BackendFeatures>;
  /** The hash type the listings carry ('' when none). */
  readonly hashType: string;
  readonly compare: CrossSideCompare;
  /** What a local root was when listed (device and inode): a mount that goes away changes it. */
  readonly identity: Record<Side, string | undefined>;
}

interface Detected {
  readonly changes: Record<Side, ChangeSet>;
  /** Paths whose two versions rclone compared and found identical. */
  readonly verifiedSame: ReadonlySet<string>;
  /** Journal windows of killed runs whose half-written files this run redoes. */
  readonly carried: readonly JournalWindow[];
  /** Those half-written files as listed (detection treats them as absent or unchanged). */
  readonly halfWritten: Record<Side, Map<string, FileMeta>>;
  /** Confirmed renames on each side (new path -> old path); undefined when none were looked for or found. */
  readonly renames: Record<Side, Map<string, string>> | undefined;
}

/**
 * What each removal, and each copy over an existing file, sends to its side's trash: the version
 * listed there. Taken before the commit, which builds the new snapshot in the listings' own maps.
 */
function trashableBy(actions: readonly Action[], listed: Record<Side, Listing>): Map<Action, { side: Side; bytes: number }> {
  const trashable = new Map<Action, { side: Side; bytes: number }>();
  for (const action of actions) {
    const side = action.kind === 'delete' ? action.side : action.kind === 'copy' ? otherSide(action.from) : undefined;
    const version = side && listed[side].get(action.path);
    if (side && version) trashable.set(action, { side, bytes: Math.max(0, version.size) });
  }
  return trashable;
}

/** Files the done actions moved to each side's trash, with their listed sizes. */
function trashedBy(done: readonly Action[], trashable: ReadonlyMap<Action, { side: Side; bytes: number }>): Record<Side, TrashedFiles> {
  const trashed = { path1: { files: 0, bytes: 0 }, path2: { files: 0, bytes: 0 } };
  for (const action of done) {
    const version = trashable.get(action);
    if (!version) continue;
    trashed[version.side].files++;
    trashed[version.side].bytes += version.bytes;
  }
  return trashed;
}

/** Logs a line for each item, waiting for stdout to take them every LOG_CATCH_UP_EVERY lines. */
async function logEach<T>(items: Iterable<T>, logLine: (item: T) => void): Promise<void> {
  let logged = 0;
  for (const item of items) {
    logLine(item);
    if (++logged % LOG_CATCH_UP_EVERY === 0) await logCaughtUp();
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
    case 'move':
      logger.info({ action: 'move', side: action.side, from: action.from, path: action.path, dryRun }, `${prefix}move on ${action.side}: ${action.from} -> ${action.path}`);
      return;
    case 'file-folder-clash':
      if (action.sameNameAs !== undefined) {
        logger.warn(
          { action: 'file-folder-clash', side: action.side, path: action.path, sameNameAs: action.sameNameAs, renamedTo: action.to, dryRun },
          `${prefix}rename ${action.path} on ${action.side} to ${action.to}: ${otherSide(action.side)} takes it for the same name as ${action.sameNameAs} (case or unicode normalization)`,
        );
        return;
      }
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
