/**
 * Rename detection (SYNC_TRACK_RENAMES). Pure: the engine supplies the change sets and, for the
 * candidates, the contents' hashes it read (from the listings, or by a batched `rclone hashsum`).
 *
 * On one side, a path gone since the last run and a path new on that side with the same size and
 * modification time (and hash, where both were listed with one) are a rename *candidate*. Only
 * renames the other side can follow are candidates: there the old path is still the synced,
 * unchanged version and the new path is free. A candidate is *confirmed* only when the new file's
 * content equals the other side's copy of the old path (by hash). Several files with the same size
 * and time are paired only by those hashes. Whatever is not confirmed is planned as today: a copy
 * of the new path and a deletion of the old.
 */
import { otherSide, type Listing, type Side } from '../model.ts';
import type { ChangeSet } from './types.ts';

/** Files on `side` that may be renames of each other: gone `from`s and new `to`s of one size and time. */
export interface CandidateGroup {
  readonly side: Side;
  readonly from: readonly string[];
  readonly to: readonly string[];
}

/** One side's confirmed renames: new path -> old path. */
export type Renames = ReadonlyMap<string, string>;

/**
 * The candidate groups of `side`. `other`: the other side's changes and current listing, where the
 * old path must be unchanged and the new path free.
 */
export function renameCandidates(side: Side, changes: ChangeSet, other: { readonly changes: ChangeSet; readonly current: Listing }): CandidateGroup[] {
  const gone = new Map<string, string[]>();
  for (const [path, change] of changes) {
    if (change.kind !== 'deleted') continue;
    // The other side must still hold the version this side had: that is what it will move.
    if (other.changes.has(path) || !other.current.has(path)) continue;
    const key = keyOf(change.before.size, change.before.mtime);
    const paths = gone.get(key);
    if (paths) paths.push(path);
    else gone.set(key, [path]);
  }
  if (gone.size === 0) return [];
  const groups = new Map<string, { from: string[]; to: string[] }>();
  for (const [path, change] of changes) {
    if (change.kind !== 'new') continue;
    if (other.changes.has(path) || other.current.has(path)) continue;
    const key = keyOf(change.now.size, change.now.mtime);
    const from = gone.get(key);
    if (!from) continue;
    const group = groups.get(key) ?? { from, to: [] };
    group.to.push(path);
    groups.set(key, group);
  }
  const result: CandidateGroup[] = [];
  for (const { from, to } of groups.values()) {
    // A listed hash on both ends that differs rules the pair out; groups keep their paths sorted.
    result.push({ side, from: [...from].sort(), to: to.sort() });
  }
  return result;
}

const keyOf = (size: number, mtime: number) => `${size}:${mtime}`;

/** What a confirmation needs read: the new paths on the renaming side, the old paths on the other. */
export function pathsToHash(groups: readonly CandidateGroup[]): { readonly renamed: Record<Side, string[]>; readonly kept: Record<Side, string[]> } {
  const renamed: Record<Side, string[]> = { path1: [], path2: [] };
  const kept: Record<Side, string[]> = { path1: [], path2: [] };
  for (const group of groups) {
    renamed[group.side].push(...group.to);
    kept[otherSide(group.side)].push(...group.from);
  }
  return { renamed, kept };
}

/**
 * Pairs each group's new paths with its old ones by content: `hashOf(side, path)` is the content
 * hash of a file on a side ('' or undefined: unknown, never confirmed). Files of equal content are
 * interchangeable, so several alike are paired in name order. Returns, per renaming side, new -> old.
 */
export function confirmRenames(groups: readonly CandidateGroup[], hashOf: (side: Side, path: string) => string | undefined): Record<Side, Map<string, string>> {
  const confirmed = { path1: new Map<string, string>(), path2: new Map<string, string>() };
  for (const group of groups) {
    const other = otherSide(group.side);
    // hash -> the old paths of that content not paired yet (taken from the front: name order)
    const oldByHash = new Map<string, { paths: string[]; next: number }>();
    for (const from of group.from) {
      const hash = hashOf(other, from);
      if (!hash) continue;
      const olds = oldByHash.get(hash);
      if (olds) olds.paths.push(from);
      else oldByHash.set(hash, { paths: [from], next: 0 });
    }
    for (const to of group.to) {
      const hash = hashOf(group.side, to);
      const olds = hash ? oldByHash.get(hash) : undefined;
      if (!olds || olds.next >= olds.paths.length) continue;
      confirmed[group.side].set(to, olds.paths[olds.next++]!);
    }
  }
  return confirmed;
}

/** A move on one side as propagation carries it out: a file, or a whole folder in one call. */
export interface MoveStep {
  readonly from: string;
  readonly to: string;
}

/**
 * Groups the moves to make on one side into folder moves: a folder all of whose files (as that
 * side lists them) move into one new folder under the same relative names, where the new folder
 * does not exist there yet, is moved in one call. The topmost such folder wins; the other moves
 * stay file moves. `listing`: the side's current files; `folders`: its current folders.
 */
export function groupFolderMoves(moves: readonly MoveStep[], listing: Listing, folders: ReadonlySet<string>): { folders: MoveStep[]; files: MoveStep[] } {
  if (moves.length < 2) return { folders: [], files: [...moves] };
  // folder pair "A\0B" -> how many moves from A/... to B/... under equal relative names
  const support = new Map<string, number>();
  for (const { from, to } of moves) {
    for (const [a, b] of folderPairs(from, to)) support.set(`${a}\0${b}`, (support.get(`${a}\0${b}`) ?? 0) + 1);
  }
  const filesUnder = new Map<string, number>();
  for (const path of listing.keys()) for (const folder of foldersAbove(path)) filesUnder.set(folder, (filesUnder.get(folder) ?? 0) + 1);
  const valid = new Map<string, string>();
  for (const [pair, count] of support) {
    const [a, b] = pair.split('\0') as [string, string];
    if (count !== filesUnder.get(a)) continue;
    if (filesUnder.has(b) || folders.has(b) || listing.has(b)) continue;
    if (b.startsWith(`${a}/`) || a.startsWith(`${b}/`)) continue;
    // A file where the new folder's parent must be: leave it to the file moves (which fail loudly).
    if ([...foldersAbove(`${b}/x`)].some((parent) => listing.has(parent))) continue;
    valid.set(a, b);
  }
  const folderMoves: MoveStep[] = [];
  const files: MoveStep[] = [];
  for (const move of moves) {
    const top = topmostValid(move, valid);
    if (!top) files.push(move);
    else if (!folderMoves.some((m) => m.from === top.from)) folderMoves.push(top);
  }
  return { folders: folderMoves, files };
}

function topmostValid(move: MoveStep, valid: ReadonlyMap<string, string>): MoveStep | undefined {
  let found: MoveStep | undefined;
  for (const [a, b] of folderPairs(move.from, move.to)) if (valid.get(a) === b) found = { from: a, to: b };
  return found;
}

/** `a/b/c.txt` -> `x/b/c.txt`: (a/b, x/b), (a, x) — deepest first; each keeps the same relative rest. */
function* folderPairs(from: string, to: string): Generator<[string, string]> {
  let i = from.length;
  let j = to.length;
  // Walk back over the common tail, stopping at each '/' both share at the same offset from the end.
  while (i > 0 && j > 0 && from[i - 1] === to[j - 1]) {
    i--;
    j--;
    if (from[i] === '/' && i > 0 && j > 0) yield [from.slice(0, i), to.slice(0, j)];
  }
}

/** Every folder above a path: `a/b/c` -> `a`, `a/b`. */
export function* foldersAbove(path: string): Generator<string> {
  for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) yield path.slice(0, slash);
}
