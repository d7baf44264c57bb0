/**
 * Watch mode: the sides of a pair that are local folders are watched recursively (inotify, through
 * @parcel/watcher: one native watch per folder, events batched in C++, fine with 100k folders), and
 * the pair's run starts SYNC_WATCH_DELAY after the last change. The schedule goes on as before: it
 * catches the remote side's changes, and everything when watching is impossible.
 *
 * Not every event is a change to sync:
 * - the trash (`.rclonesync-trash/`, or SYNC_TRASH_PATHn inside the folder) and the state folder
 *   are not watched at all, and rclone's partial uploads (`*.partial`) are dropped on arrival;
 * - everything else is collected, and when a run is due the collected paths are checked against
 *   the pair's committed snapshot (own-changes.ts): what matches it is in sync already — files the
 *   run itself copied in, renamed or removed — and starts nothing. A person's edit during a run
 *   differs from the snapshot (its time changed after rclone's copy), so it still gets its
 *   follow-up run. The timing (debounce, one follow-up, back-off after failures) is debounce.ts.
 * - A run that started covers what was collected before it (its listing comes after); when it does
 *   not succeed, those paths are put back, so the follow-up retries them.
 *
 * A file that SYNC_FILTERS_FILE excludes is not in the snapshot either: its changes start a run
 * that finds nothing to do (one listing), never more than one per burst.
 *
 * When watching is impossible (the inotify limit, fs.inotify.max_user_watches, is reached) the
 * watcher says so once, with the fix, and the pair keeps its schedule. On a network file system
 * (NFS, SMB, FUSE) inotify sees only the changes made through this machine: it says that once too.
 */
import { statfs } from 'node:fs/promises';
import { basename, isAbsolute, relative, resolve, sep } from 'node:path';
import watcher, { type AsyncSubscription, type Event } from '@parcel/watcher';
import type { Logger } from '../log.ts';
import { parseRclonePath } from '../rclone/paths.ts';
import { pairId, pairPaths } from '../state/pair.ts';
import { TRASH_FOLDER } from '../sync/trash.ts';
import type { Side } from '../model.ts';
import { ChangeDebouncer } from './debounce.ts';
import { unexplainedChanges } from './own-changes.ts';

/** What the watcher needs of a pair's settings. */
export interface WatchedPair {
  readonly path1: string;
  readonly path2: string;
  readonly stateDir: string;
  readonly trashPaths: { readonly path1: string | undefined; readonly path2: string | undefined };
}

export interface PairWatchOptions {
  readonly delayMs: number;
  readonly logger: Logger;
  /**
   * Start the pair's run now (the daemon's run function). Whatever starts a run, the daemon tells
   * the watcher through runStarted() and runEnded().
   */
  readonly startRun: () => void;
}

export interface PairWatch {
  /** The sides being watched (none when neither is a local folder, or watching failed). */
  readonly sides: readonly Side[];
  runStarted(): void;
  runEnded(result: { readonly succeeded: boolean }): void;
  close(): Promise<void>;
}

/** Past this many changed paths per side, the check is skipped: a run is simply needed. */
const MAX_COLLECTED = 50_000;
/** rclone writes uploads to `name.XXXXXXXX.partial` (1.63 and later) and renames them when done. */
const PARTIAL = /\.partial$/;

interface Collected {
  paths: Record<Side, Set<string>>;
  overflow: boolean;
}

const nothingCollected = (): Collected => ({ paths: { path1: new Set(), path2: new Set() }, overflow: false });

export async function watchPair(pair: WatchedPair, options: PairWatchOptions): Promise<PairWatch> {
  const log = options.logger;
  const snapshotFile = pairPaths(pair.stateDir, pairId(pair.path1, pair.path2)).snapshot;
  const roots: { path1?: string; path2?: string } = {};
  let collected = nothingCollected();
  /** Collected before the running run started: that run covers them, unless it fails. */
  let claimed = nothingCollected();
  /** Seen while a run is going: judged after it, against the snapshot it commits. */
  let claimedDuringRun = nothingCollected();
  let running = false;
  let checking = false;
  let dueAgain = false;
  let limitReported = false;

  const due = async (): Promise<void> => {
    if (checking) {
      dueAgain = true;
      return;
    }
    checking = true;
    try {
      const batch = collected;
      collected = nothingCollected();
      const unexplained = batch.overflow ? batch.paths : await unexplainedChanges(batch.paths, snapshotFile, roots).catch(() => batch.paths);
      const count = unexplained.path1.size + unexplained.path2.size;
      if (count === 0 && !batch.overflow) {
        log.debug({ checked: batch.paths.path1.size + batch.paths.path2.size }, 'watch: the changes seen are in sync already (the last run wrote them): no run');
        return;
      }
      merge(running ? claimed : collected, { paths: unexplained, overflow: batch.overflow });
      if (running) return;
      log.info({ changed: { path1: unexplained.path1.size, path2: unexplained.path2.size }, sample: [...unexplained.path1, ...unexplained.path2].slice(0, 3) }, 'local changes: starting a run');
      options.startRun();
    } finally {
      checking = false;
      if (dueAgain) {
        dueAgain = false;
        void due();
      }
    }
  };
  const debouncer = new ChangeDebouncer({ delayMs: options.delayMs, onDue: () => void due() });

  const reportLimit = (side: Side, error: Error) => {
    if (limitReported) return;
    limitReported = true;
    log.warn(
      { side, err: error.message },
      `cannot watch ${side} for changes: the inotify limit is reached (fs.inotify.max_user_watches). ` +
        'Raise it on the host: `sysctl fs.inotify.max_user_watches=1048576` (and in /etc/sysctl.conf to keep it). Syncing goes on by the schedule',
    );
  };

  const onEvents = (side: Side, root: string) => (error: Error | null, events: Event[]) => {
    if (error) {
      if (isWatchLimit(error)) reportLimit(side, error);
      else log.warn({ side, err: error.message }, `watching ${side} reported an error; syncing goes on by the schedule`);
    }
    let relevant = false;
    for (const event of events) {
      const path = relativePath(root, event.path);
      if (path === undefined || PARTIAL.test(basename(path))) continue;
      relevant = true;
      const target = running ? claimedDuringRun : collected;
      if (target.paths[side].size >= MAX_COLLECTED) target.overflow = true;
      else target.paths[side].add(path);
    }
    if (relevant) debouncer.changed();
  };
  const subscriptions: AsyncSubscription[] = [];
  const sides: Side[] = [];
  for (const side of ['path1', 'path2'] as const) {
    const parsed = parseRclonePath(pair[side]);
    if (parsed.kind !== 'local') continue;
    const root = resolve(parsed.path);
    const ignore = ignoredFolders(root, pair, side);
    try {
      subscriptions.push(await watcher.subscribe(root, onEvents(side, root), { ignore }));
    } catch (error) {
      if (isWatchLimit(error as Error)) reportLimit(side, error as Error);
      else log.warn({ side, root, err: (error as Error).message }, `cannot watch ${side} for changes; syncing goes on by the schedule`);
      continue;
    }
    roots[side] = root;
    sides.push(side);
    const network = await networkFileSystem(root);
    if (network) {
      log.warn(
        { side, root, fileSystem: network },
        `${side} is on a network file system (${network}): the watcher sees only changes made through this machine; changes made elsewhere sync by the schedule`,
      );
    }
  }
  if (sides.length > 0) log.info({ sides, delay: `${options.delayMs / 1000}s` }, `watching ${sides.join(' and ')} for changes`);

  return {
    sides,
    runStarted() {
      running = true;
      // The run's listing comes after everything collected so far.
      claimed = collected;
      collected = nothingCollected();
      claimedDuringRun = nothingCollected();
      debouncer.runStarted();
    },
    runEnded(result) {
      running = false;
      merge(collected, claimedDuringRun);
      claimedDuringRun = nothingCollected();
      // What the run did not sync (it failed, or another process held the lock) is tried again.
      const retry = !result.succeeded && (claimed.overflow || claimed.paths.path1.size + claimed.paths.path2.size > 0);
      if (!result.succeeded) merge(collected, claimed);
      claimed = nothingCollected();
      debouncer.runEnded(result);
      if (retry) debouncer.changed();
    },
    async close() {
      debouncer.close();
      await Promise.all(subscriptions.map((s) => s.unsubscribe().catch(() => {})));
    },
  };
}

function merge(into: Collected, from: Collected): void {
  into.overflow ||= from.overflow;
  for (const side of ['path1', 'path2'] as const) {
    for (const path of from.paths[side]) {
      if (into.paths[side].size >= MAX_COLLECTED) {
        into.overflow = true;
        break;
      }
      into.paths[side].add(path);
    }
  }
}

/** The root-relative, '/'-separated path of an event; undefined for the root itself or outside it. */
function relativePath(root: string, absolute: string): string | undefined {
  const path = relative(root, absolute);
  if (path === '' || path.startsWith('..') || isAbsolute(path)) return undefined;
  return sep === '/' ? path : path.split(sep).join('/');
}

/** Folders inside the watched root that hold the sync's own files: the trash and the state folder. */
function ignoredFolders(root: string, pair: WatchedPair, side: Side): string[] {
  const folders = [resolve(root, TRASH_FOLDER), resolve(pair.stateDir)];
  const configured = pair.trashPaths[side];
  if (configured && parseRclonePath(configured).kind === 'local') folders.push(resolve(configured));
  return folders.filter((folder) => relativePath(root, folder) !== undefined);
}

export function isWatchLimit(error: Error): boolean {
  return /ENOSPC|no space left on device|max_user_watches|inotify.*limit/i.test(error.message);
}

/** Magic numbers of statfs(2) for file systems whose changes may come from other machines. */
const NETWORK_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x6969, 'NFS'],
  [0x517b, 'SMB'],
  [0xff534d42, 'SMB (CIFS)'],
  [0xfe534d42, 'SMB2'],
  [0x65735546, 'FUSE'],
  [0x01021997, '9p'],
  [0x00c36400, 'Ceph'],
]);

async function networkFileSystem(root: string): Promise<string | undefined> {
  try {
    return NETWORK_FILE_SYSTEMS.get((await statfs(root)).type);
  } catch {
    return undefined;
  }
}
