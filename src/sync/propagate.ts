/**
 * Propagation: carries a plan out with as few rclone processes as the plan allows — one per
 * direction for copies, one per side for removals; only conflict renames go one file at a time.
 * Order matters: conflict renames first (so no copy lands on a version we must keep), then copies,
 * then removals (so an interrupted run has lost nothing it had not already carried across) —
 * except removals that free a name a copy needs, where a file became a folder or a folder a file.
 *
 * People keep working while a run copies. So nothing is removed or overwritten unless it still is
 * the version that was listed: destinations are listed again just before the copies, the files to
 * remove just before they are removed, and whatever changed since is left alone for the next run
 * (which then sees the change). What is removed goes to the side's trash; what a copy overwrites
 * too (rclone's --backup-dir, in the same process). A version someone wrote at a destination in
 * the instant between that check and rclone's write is recognised in the trash afterwards and put
 * back beside the file under a conflict name. With the trash off (SYNC_TRASH_DAYS=0) removals and
 * overwrites are final, and that last instant is not covered.
 */
import { RcloneError, type Rclone } from '../rclone/rclone.ts';
import { directionTo, otherSide, SIDES, type Direction, type FileMeta, type Listing, type Side, type TransferProgress } from '../model.ts';
import type { FolderPlan } from './folders.ts';
import { foldersAbove, groupFolderMoves, type MoveStep } from './renames.ts';
import { type Action, type Plan } from './types.ts';

export interface PropagationSteps {
  readonly renames: Record<Side, { from: string; to: string }[]>;
  /** Renames and moves carried over from the other side, one file at a time. */
  readonly moves: Record<Side, MoveStep[]>;
  /** Whole folders moved in one call: `files` are the file moves each one stands for. */
  readonly folderMoves: Record<Side, (MoveStep & { readonly files: readonly MoveStep[] })[]>;
  /**
   * Deletions that must come before the copies: a file whose name a copied folder needs (`x`
   * before `x/a`), or the files of a folder whose name a copied file needs (`y/a` before `y`).
   */
  readonly deletesFirst: Record<Side, string[]>;
  /** Folders emptied by `deletesFirst` that must go too, so a file can take their name. */
  readonly foldersToRemove: Record<Side, string[]>;
  /** Keyed by the side the files are copied FROM. */
  readonly copies: Record<Side, string[]>;
  readonly deletes: Record<Side, string[]>;
}

/**
 * Lowers plan actions into the primitive steps each side needs. Pure. `folders` are the folders each
 * side holds: a copy whose name is an (empty) folder there must have that folder removed first.
 * With `listings` (each side's current files), moves that take a whole folder to a new one become
 * one folder move.
 */
export function stepsOf(plan: Plan, folders?: Record<Side, ReadonlySet<string>>, listings?: Record<Side, Listing>): PropagationSteps {
  const steps: PropagationSteps = {
    renames: { path1: [], path2: [] },
    moves: { path1: [], path2: [] },
    folderMoves: { path1: [], path2: [] },
    deletesFirst: { path1: [], path2: [] },
    foldersToRemove: { path1: [], path2: [] },
    copies: { path1: [], path2: [] },
    deletes: { path1: [], path2: [] },
  };
  for (const action of plan.actions) lower(action, steps);
  for (const side of SIDES) orderTypeChanges(side, steps);
  if (folders && listings) {
    for (const side of SIDES) {
      const grouped = groupFolderMoves(steps.moves[side], listings[side], folders[side]);
      if (grouped.folders.length === 0) continue;
      const covered = (folder: MoveStep) => steps.moves[side].filter((m) => m.from.startsWith(`${folder.from}/`));
      steps.folderMoves[side].push(...grouped.folders.map((folder) => ({ ...folder, files: covered(folder) })));
      steps.moves[side].splice(0, steps.moves[side].length, ...grouped.files);
    }
  }
  if (folders) {
    for (const from of SIDES) {
      const to = otherSide(from);
      const targets = [...steps.copies[from], ...steps.moves[to].map((m) => m.to)];
      for (const path of targets) if (folders[to].has(path) && !steps.foldersToRemove[to].includes(path)) steps.foldersToRemove[to].push(path);
    }
  }
  return steps;
}

function orderTypeChanges(side: Side, steps: PropagationSteps): void {
  const deletes = steps.deletes[side];
  if (deletes.length === 0) return;
  const incoming = new Set([...steps.copies[otherSide(side)], ...steps.moves[side].map((m) => m.to)]);
  const incomingFolders = new Set<string>();
  for (const path of incoming) for (const folder of foldersAbove(path)) incomingFolders.add(folder);
  const later: string[] = [];
  const folders = new Set<string>();
  for (const path of deletes) {
    let first = incomingFolders.has(path);
    for (const folder of foldersAbove(path)) {
      if (incoming.has(folder)) {
        first = true;
        folders.add(folder);
      }
    }
    (first ? steps.deletesFirst[side] : later).push(path);
  }
  deletes.splice(0, deletes.length, ...later);
  steps.foldersToRemove[side].push(...folders);
}

function lower(action: Action, steps: PropagationSteps): void {
  switch (action.kind) {
    case 'copy':
      steps.copies[action.from].push(action.path);
      return;
    case 'delete':
      steps.deletes[action.side].push(action.path);
      return;
    case 'move':
      steps.moves[action.side].push({ from: action.from, to: action.path });
      return;
    case 'file-folder-clash':
      steps.renames[action.side].push({ from: action.path, to: action.to });
      steps.copies[action.side].push(action.to);
      return;
    case 'conflict': {
      const { outcome, path } = action;
      if (outcome.winner === 'none') {
        steps.renames.path1.push({ from: path, to: outcome.path1Copy });
        steps.renames.path2.push({ from: path, to: outcome.path2Copy });
        steps.copies.path1.push(outcome.path1Copy);
        steps.copies.path2.push(outcome.path2Copy);
      } else {
        const loser = otherSide(outcome.winner);
        steps.renames[loser].push({ from: path, to: outcome.loserCopy });
        steps.copies[loser].push(outcome.loserCopy);
        steps.copies[outcome.winner].push(path);
      }
      return;
    }
  }
}

export interface PropagateOptions {
  readonly rclone: Rclone;
  readonly roots: Record<Side, string>;
  readonly checksum: boolean;
  /** What the listing showed at a path (undefined: absent): it is removed or overwritten only while it holds this. */
  readonly listedVersion: (side: Side, path: string) => FileMeta | undefined;
  /** The hash type of those listings ('' for none), so that a relisting compares like with like. */
  readonly hashType: string;
  /** How many files each side held when listed (see WALK_DESTINATION_SHARE). */
  readonly listedFiles: Record<Side, number>;
  /** This run's trash folder on each side (full rclone paths); undefined: the trash is off, removals are final. */
  readonly trash: Record<Side, string> | undefined;
  /** Called once the copies that will really be made are known, before the first one starts. */
  readonly beforeCopying?: (copies: Record<Side, readonly string[]>) => Promise<void>;
  /** The name beside `path` on `side` for a version found overwritten by mistake. */
  readonly rescueName: (side: Side, path: string) => string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (direction: Direction, progress: TransferProgress) => void;
  readonly onStep?: (step: string) => void;
  /** A removal, copy or move left out because its target changed after the listing. */
  readonly onSkipped?: (side: Side, path: string, what: 'copy' | 'removal' | 'move') => void;
  /** The folders each side held when listed: a folder a move empties goes only if the other side has none of that name. */
  readonly folders?: Record<Side, ReadonlySet<string>>;
  /** SYNC_EMPTY_DIRS: folders to make and remove once the files are done (see folders.ts). */
  readonly folderPlan?: FolderPlan;
  /** Removals leave the folders they empty (the folder plan decides what goes). */
  readonly keepEmptyFolders?: boolean;
  readonly onFolder?: (side: Side, path: string, done: 'made' | 'removed') => void;
  /** A file move rclone reported done (one of a folder's too): the commit need not list it again. */
  readonly onMoved?: (side: Side, move: MoveStep) => void;
  /** Files a removal took off `side` (rclone reported the whole call done): the commit need not list them again. */
  readonly onRemoved?: (side: Side, paths: readonly string[]) => void;
  /**
   * What the paths a copy wrote into `side` hold, listed once that copy ended (done or failed):
   * nothing in this run writes them after that, so the commit need not list them again. Listed
   * beside the trash check and the removals.
   */
  readonly onListedAfterCopy?: (side: Side, paths: readonly string[], now: Listing) => void;
  /** A version written at a destination during the copy, kept beside it as `to`. */
  readonly onRescued?: (side: Side, path: string, to: string) => void;
  /** Copies rclone would skip as identical by size and time, though their contents differ. */
  readonly mustForce?: (from: Side, path: string) => boolean;
}

/** Conflict renames and moves in flight at once: calls to the run's one rcd, not processes. */
const RENAME_CONCURRENCY = 16;
/**
 * A copy (both of a direction's rclone calls, taken together) of at least this share of the files
 * its destination held walks the destination's folders instead of looking each file up there
 * (rclone's --no-traverse). 100,000 files onto an empty local side (tmpfs): walking 5.0-5.1 s and
 * 8.7-8.9 s of CPU (2 runs), looking up 5.8-7.1 s and 10.3-13.0 s (4 runs), a plain `rclone copy`
 * 4.8-6.2 s (8 runs). For a few files into a large tree, looking up is rclone's own advice; the
 * share at which walking starts to pay on a remote was not measured.
 */
const WALK_DESTINATION_SHARE = 1 / 8;

type FolderMove = PropagationSteps['folderMoves'][Side][number];

/** The same version of a file on the same side (or absent both times): exact, as a side lists itself. */
export function unchangedSince(listed: FileMeta | undefined, now: FileMeta | undefined): boolean {
  if (!listed || !now) return listed === now;
  if (listed.size !== now.size || listed.mtime !== now.mtime) return false;
  return listed.hash === '' || now.hash === '' || listed.hash === now.hash;
}

export async function propagate(steps: PropagationSteps, options: PropagateOptions): Promise<void> {
  const { rclone, roots } = options;
  const keep = (side: Side, paths: readonly string[], now: Listing, what: 'copy' | 'removal') =>
    paths.filter((path) => {
      if (unchangedSince(options.listedVersion(side, path), now.get(path))) return true;
      options.onSkipped?.(side, path, what);
      return false;
    });

  // Before anything changes: which copy destinations, early removals and moves still hold what was listed.
  const copies: Record<Side, string[]> = { path1: [], path2: [] };
  const deletesFirst: Record<Side, string[]> = { path1: [], path2: [] };
  const moves: Record<Side, MoveStep[]> = { path1: [], path2: [] };
  const folderMoves: Record<Side, FolderMove[]> = { path1: [], path2: [] };
  await Promise.all(
    SIDES.map(async (side) => {
      const incoming = steps.copies[otherSide(side)];
      const fileMoves = [...steps.moves[side], ...steps.folderMoves[side].flatMap((folder) => folder.files)];
      const now = await relist(options, side, [...incoming, ...steps.deletesFirst[side], ...fileMoves.flatMap((m) => [m.from, m.to])]);
      copies[otherSide(side)] = keep(side, incoming, now, 'copy');
      deletesFirst[side] = keep(side, steps.deletesFirst[side], now, 'removal');
      // A move goes ahead only while its file is the version listed and its new name is still free.
      const movable = (m: MoveStep) => {
        const ok = unchangedSince(options.listedVersion(side, m.from), now.get(m.from)) && !now.has(m.to);
        return ok;
      };
      for (const folder of steps.folderMoves[side]) {
        if (folder.files.every(movable)) folderMoves[side].push(folder);
        else moves[side].push(...folder.files);
      }
      moves[side].push(...steps.moves[side]);
      moves[side] = moves[side].filter((m) => {
        if (movable(m)) return true;
        options.onSkipped?.(side, m.from, 'move');
        return false;
      });
    }),
  );
  await options.beforeCopying?.(copies);

  for (const side of SIDES) {
    const renames = steps.renames[side];
    if (renames.length === 0) continue;
    options.onStep?.(`renaming ${renames.length} conflicting files on ${side}`);
    await inParallel(renames, RENAME_CONCURRENCY, ({ from, to }) => rclone.moveFile(roots[side], from, roots[side], to), options.signal);
  }
  for (const side of SIDES) {
    const paths = deletesFirst[side];
    if (paths.length > 0) {
      options.onStep?.(`removing ${paths.length} files on ${side} whose names change between file and folder`);
      await remove(options, side, paths);
    }
    // One rclone call per folder in a file's way: rare, and rmdirs takes one path.
    for (const folder of steps.foldersToRemove[side]) await rclone.removeEmptyFolders(roots[side], folder);
  }
  const moveFailure = await carryMoves(options, moves, folderMoves);
  // Both directions at once: they touch different destinations. A copy that fails (rclone goes on
  // with the other files and then reports) does not hold back the removals, which never depend
  // on a copy; only a failed conflict rename stops everything, since its copies would overwrite
  // the version the rename was to keep.
  // allSettled: one direction failing must not leave the other copying on while the run moves on
  // (it would be stopped mid-file, and its half-written file taken for a person's).
  /** Settles when the bytes copied into a side have moved (or failed to), before the trash is checked. */
  const copiedInto: Partial<Record<Side, Promise<unknown>>> = {};
  const copying = Promise.allSettled(
    SIDES.map(async (from) => {
      const paths = copies[from];
      if (paths.length === 0) return;
      const to = otherSide(from);
      const copy = copyAcross(options, from, paths);
      copiedInto[to] = copy.catch(() => {});
      try {
        await copy;
      } finally {
        if (!options.signal?.aborted) {
          // A listing that fails leaves the commit to list them. Not merged with the removals'
          // listing: behind 10 ms each way that held the removals back by its own length (~6 s).
          const listing = options.onListedAfterCopy && relist(options, to, paths).then((now) => options.onListedAfterCopy!(to, paths, now), () => {});
          // allSettled: a failed trash check must not leave the listing running on.
          const [rescue] = await Promise.allSettled([options.trash && rescueOverwritten(options, options.trash[to], to, paths), listing]);
          if (rescue.status === 'rejected') throw rescue.reason;
        }
      }
    }),
  );
  // Each side's removals once the copy into it is done (a file renamed as a copy plus a removal is
  // never gone from a side before its new name is there), while that copy's overwritten versions
  // are checked in the trash; both sides at once. allSettled, so that one side failing does not
  // leave the other's removal running on while the run moves on.
  const removing = Promise.allSettled(
    SIDES.map(async (side) => {
      if (steps.deletes[side].length === 0) return;
      await copiedInto[side];
      options.signal?.throwIfAborted();
      const paths = keep(side, steps.deletes[side], await relist(options, side, steps.deletes[side]), 'removal');
      if (paths.length === 0) return;
      options.onStep?.(`removing ${paths.length} deleted files on ${side}`);
      await remove(options, side, paths);
    }),
  );
  const [copied, removed] = await Promise.all([copying, removing]);
  const failed = copied.find((result) => result.status === 'rejected');
  const copyFailure = failed ? { error: failed.reason as unknown } : undefined;
  options.signal?.throwIfAborted();
  const removalFailed = removed.find((result) => result.status === 'rejected');
  if (removalFailed) throw removalFailed.reason;
  if (options.folderPlan) await carryFolders(options, options.folderPlan);
  if (moveFailure) throw moveFailure.error;
  if (copyFailure) throw copyFailure.error;
}

/** Folders last: removals deepest first, each only if empty by now; then the new ones, in parallel (mkdir makes parents). */
async function carryFolders(options: PropagateOptions, plan: FolderPlan): Promise<void> {
  for (const side of SIDES) {
    const root = options.roots[side];
    if (plan.remove[side].length > 0) options.onStep?.(`removing ${plan.remove[side].length} folders on ${side} (those still holding something stay)`);
    for (const folder of plan.remove[side]) {
      options.signal?.throwIfAborted();
      if (await options.rclone.removeFolder(root, folder)) options.onFolder?.(side, folder, 'removed');
    }
    if (plan.create[side].length > 0) options.onStep?.(`making ${plan.create[side].length} folders on ${side}`);
    await inParallel(
      plan.create[side],
      RENAME_CONCURRENCY,
      async (folder) => {
        await options.rclone.makeFolder(root, folder);
        options.onFolder?.(side, folder, 'made');
      },
      options.signal,
    );
  }
}

/**
 * Renames and moves from the other side, as server-side moves through the run's rcd: whole folders
 * first, then single files; then the folders they left empty go, unless the other side has them.
 * A move that fails holds nothing else back (the next run plans it again): its error is returned.
 */
async function carryMoves(options: PropagateOptions, moves: Record<Side, MoveStep[]>, folderMoves: Record<Side, FolderMove[]>): Promise<{ error: unknown } | undefined> {
  let failure: { error: unknown } | undefined;
  const attempt = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      if (options.signal?.aborted || (error instanceof RcloneError && error.cancelled)) throw error;
      failure ??= { error };
    }
  };
  for (const side of SIDES) {
    const root = options.roots[side];
    const folders = folderMoves[side];
    const files = moves[side];
    if (folders.length + files.length === 0) continue;
    options.onStep?.(`moving ${folders.length} folders and ${files.length} files on ${side}`);
    const moved = (m: MoveStep) => options.onMoved?.(side, m);
    await inParallel(folders, RENAME_CONCURRENCY, (m) => attempt(async () => {
      await options.rclone.moveFolder(root, m.from, m.to);
      m.files.forEach(moved);
    }), options.signal);
    await inParallel(files, RENAME_CONCURRENCY, (m) => attempt(async () => {
      await options.rclone.moveFile(root, m.from, root, m.to);
      moved(m);
    }), options.signal);
    // The folders the moves emptied, deepest first: each is removed only if empty now.
    const theirs = options.folders?.[otherSide(side)];
    const emptied = new Set<string>();
    for (const m of [...folders, ...files]) for (const folder of foldersAbove(m.from)) if (!theirs?.has(folder)) emptied.add(folder);
    for (const m of folders) if (!theirs?.has(m.from)) emptied.add(m.from);
    const deepestFirst = [...emptied].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? -1 : 1));
    await attempt(async () => {
      for (const folder of deepestFirst) await options.rclone.removeFolder(root, folder);
    });
  }
  return failure;
}

/** One direction's copies: those that must overwrite a same-looking destination first, then the rest. */
async function copyAcross(options: PropagateOptions, from: Side, paths: readonly string[]): Promise<void> {
  const { rclone, roots } = options;
  const to = otherSide(from);
  options.onStep?.(`copying ${paths.length} files ${from} -> ${to}`);
  const forced: string[] = [];
  const normal: string[] = [];
  for (const path of paths) (options.mustForce?.(from, path) ? forced : normal).push(path);
  const onProgress = (p: TransferProgress) => options.onProgress?.(directionTo(to), p);
  const walkDestination = paths.length >= WALK_DESTINATION_SHARE * options.listedFiles[to];
  const common = { checksum: options.checksum, ...(options.trash ? { backupDir: options.trash[to] } : {}), onProgress, walkDestination };
  if (forced.length > 0) await rclone.copyFiles(roots[from], roots[to], forced, { ...common, ignoreTimes: true });
  if (normal.length > 0) await rclone.copyFiles(roots[from], roots[to], normal, common);
}

/** Into this run's trash folder (folders the move empties go too), or for good when the trash is off. */
async function remove(options: PropagateOptions, side: Side, paths: readonly string[]): Promise<void> {
  if (options.trash) await options.rclone.moveFiles(options.roots[side], options.trash[side], paths, { keepEmptyFolders: options.keepEmptyFolders === true });
  else await options.rclone.deleteFiles(options.roots[side], paths);
  options.onRemoved?.(side, paths);
}

/** The listed paths as `side` holds them now (absent: not there). */
function relist(options: PropagateOptions, side: Side, paths: readonly string[]): Promise<Listing> {
  return options.rclone.listPaths(options.roots[side], paths, options.hashType);
}

/**
 * A copy's overwritten destination is in this run's trash. If that version is not the one listed
 * before the run (someone wrote it while the run was copying), it was never synced anywhere: put
 * it back beside the file under a conflict name, where the next run carries it across.
 */
async function rescueOverwritten(options: PropagateOptions, trash: string, side: Side, paths: readonly string[]): Promise<void> {
  const trashed = await options.rclone.listPaths(trash, paths);
  for (const [path, meta] of trashed) {
    const listed = options.listedVersion(side, path);
    if (listed && listed.size === meta.size && listed.mtime === meta.mtime) continue;
    const to = options.rescueName(side, path);
    await options.rclone.moveFile(trash, path, options.roots[side], to);
    options.onRescued?.(side, path, to);
  }
}

async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      signal?.throwIfAborted();
      await work(items[next++]!);
    }
  });
  await Promise.all(workers);
}
