/**
 * Folders (SYNC_EMPTY_DIRS). Pure: from the folders each side holds now and held at the last run,
 * and the plan for the files, which folders to make and which to remove on each side.
 *
 * - A folder on one side only that is new there (or that the other side never had) is made on the
 *   other side — unless a file the plan writes there makes it anyway, or that side's backend has no
 *   real folders (S3 without directory markers: a folder exists there only while it holds files).
 * - A folder gone from one side and still unchanged on the other is removed there, once the run's
 *   deletions and moves have emptied it: the removal is an rmdir, which leaves a folder that still
 *   holds anything (a file or folder the other side does not know, a filtered-out file) alone.
 * - A folder the run's own deletions or moves empty on a side goes too, when the other side has no
 *   folder of that name.
 * Without a previous record of folders (a snapshot from before folders were tracked, a resync),
 * folders are only made, never removed.
 */
import { addFoldersAbove, otherSide, SIDES, type Listing, type Side } from '../model.ts';
import { visitEffects, type EffectVisitor } from './effects.ts';
import { foldersAbove } from './renames.ts';
import type { Action } from './types.ts';

export interface FolderPlan {
  /** Folders to make on each side (parents first). */
  readonly create: Record<Side, string[]>;
  /** Folders to remove on each side if empty by then (deepest first). */
  readonly remove: Record<Side, string[]>;
}

export interface FolderInput {
  readonly current: Record<Side, ReadonlySet<string>>;
  /** The folders recorded at the last run; undefined: not known (create only). */
  readonly base: Record<Side, ReadonlySet<string>> | undefined;
  /** The files each side holds now (a file where a folder would go blocks it). */
  readonly files: Record<Side, Listing>;
  readonly actions: readonly Action[];
  /** The backend can hold an empty folder (rclone's CanHaveEmptyDirectories). */
  readonly canHaveEmpty: Record<Side, boolean>;
  readonly resync: boolean;
}

export function planFolders(input: FolderInput): FolderPlan {
  const create: Record<Side, string[]> = { path1: [], path2: [] };
  const remove: Record<Side, string[]> = { path1: [], path2: [] };
  const base = input.resync ? undefined : input.base;
  // What the plan writes and removes on each side, and so the folders it fills and may empty.
  const filled = { path1: new Set<string>(), path2: new Set<string>() };
  const written = { path1: new Set<string>(), path2: new Set<string>() };
  const emptied = { path1: new Set<string>(), path2: new Set<string>() };
  const removed = { path1: new Set<string>(), path2: new Set<string>() };
  const visit: EffectVisitor = {
    written(side, path) {
      written[side].add(path);
      addFoldersAbove(filled[side], path);
    },
    removed(side, path) {
      removed[side].add(path);
      addFoldersAbove(emptied[side], path);
    },
  };
  for (const action of input.actions) visitEffects(action, input.files, visit);
  // A file stays (or is written) where the folder or one above it would go.
  const blocked = (side: Side, folder: string) =>
    [folder, ...foldersAbove(folder)].some((path) => (input.files[side].has(path) && !removed[side].has(path)) || written[side].has(path));

  for (const side of SIDES) {
    const other = otherSide(side);
    for (const folder of input.current[side]) {
      if (input.current[other].has(folder)) continue;
      const goneThere = base?.[other].has(folder) === true;
      const keptHere = base?.[side].has(folder) === true;
      // On a backend without real folders a folder vanishes when its files go: no one removed it.
      if (goneThere && keptHere && input.canHaveEmpty[other]) {
        // A folder that becomes a file here (or lies under one) is removed by the file plan already.
        if (![folder, ...foldersAbove(folder)].some((path) => written[side].has(path))) remove[side].push(folder);
        continue;
      }
      if (goneThere && keptHere) continue;
      if (filled[other].has(folder) || !input.canHaveEmpty[other] || blocked(other, folder)) continue;
      create[other].push(folder);
    }
    if (!base) continue;
    const removing = new Set(remove[side]);
    for (const folder of emptied[side]) {
      if (input.current[other].has(folder) || filled[side].has(folder) || !input.current[side].has(folder)) continue;
      if ([folder, ...foldersAbove(folder)].some((path) => written[side].has(path))) continue;
      if (!removing.has(folder)) remove[side].push(folder);
    }
  }
  for (const side of SIDES) {
    create[side].sort((a, b) => depth(a) - depth(b) || compare(a, b));
    remove[side].sort((a, b) => depth(b) - depth(a) || compare(a, b));
  }
  return { create, remove };
}

const depth = (path: string) => path.split('/').length;

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The folders a side holds after the run: as listed, with the folders made and removed, and every
 * folder above a file it now holds.
 */
export function foldersAfter(listed: ReadonlySet<string>, made: Iterable<string>, removed: Iterable<string>, files: Listing): Set<string> {
  const result = new Set(listed);
  for (const folder of made) result.add(folder);
  for (const folder of removed) result.delete(folder);
  for (const path of files.keys()) for (const folder of foldersAbove(path)) result.add(folder);
  return result;
}
