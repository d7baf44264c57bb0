/**
 * The snapshot a run commits, worked out from what each side really holds afterwards. Pure: the
 * engine passes in the listings and the relisting of every path the plan touched.
 */
import { sameVersion, type CrossSideCompare } from './compare.ts';
import { effectsOf, visitEffects, type ActionEffects, type EffectVisitor } from './effects.ts';
import type { MoveStep } from './renames.ts';
import { type Action } from './types.ts';
import { otherSide, SIDES, type FileMeta, type Listing, type Side } from '../model.ts';

/** Every path the actions write or remove, per side: what must be listed again after propagation. */
export function touchedPaths(actions: readonly Action[], current: Record<Side, Listing>): Record<Side, Set<string>> {
  const touched = { path1: new Set<string>(), path2: new Set<string>() };
  const visit: EffectVisitor = { written: (side, path) => void touched[side].add(path), removed: (side, path) => void touched[side].add(path) };
  for (const action of actions) visitEffects(action, current, visit);
  return touched;
}

/**
 * What the moves rclone reported done leave on each side, known without listing again: the new
 * name holds the version that was moved (as this side listed it; propagation moved it only while
 * it still was that version), the old name holds nothing (undefined). Paths that another action
 * also touches are left out: those are listed. Should a person edit the file in the instant
 * between that check and the move, the next run finds the edit as a change and carries it.
 */
export function knownAfterMoves(
  moved: Record<Side, readonly MoveStep[]>,
  current: Record<Side, Listing>,
  touchedOtherwise: Record<Side, ReadonlySet<string>>,
): Record<Side, Map<string, FileMeta | undefined>> {
  const known = { path1: new Map<string, FileMeta | undefined>(), path2: new Map<string, FileMeta | undefined>() };
  for (const side of SIDES) {
    // A name two moves share (one's new name the other's old) is listed: their order is not known here.
    const uses = new Map<string, number>();
    for (const { from, to } of moved[side]) for (const path of [from, to]) uses.set(path, (uses.get(path) ?? 0) + 1);
    const alone = (path: string) => uses.get(path) === 1 && !touchedOtherwise[side].has(path);
    for (const { from, to } of moved[side]) {
      const version = current[side].get(from);
      if (!version || !alone(from) || !alone(to)) continue;
      known[side].set(from, undefined);
      known[side].set(to, version);
    }
  }
  return known;
}

/** What propagation learned of each side as it went, so that the commit need not list it again. */
export interface LearnedInPropagation {
  /** The file moves rclone reported done. */
  readonly moved: Record<Side, readonly MoveStep[]>;
  /** The files removals took off (each removal call rclone reported done). */
  readonly removedFiles: Record<Side, readonly string[]>;
  /**
   * The paths copies wrote, as listed once the copy into that side ended (undefined: absent).
   * knownAfterPropagation makes its result in these maps (after a first run, a million entries a
   * side): the caller hands them over.
   */
  readonly listedAfterCopies: Record<Side, Map<string, FileMeta | undefined>>;
}

/**
 * Everything known after propagation without listing, in the order it happened on a side: moves
 * (knownAfterMoves), then removals (the name holds nothing, unless a planned move also names it:
 * their order is not known here), then the copies' listing (nothing writes those paths after the copy).
 * Should a person write one of these names after it was learned, the next run finds the file as
 * a change against the snapshot and carries it across.
 */
export function knownAfterPropagation(
  learned: LearnedInPropagation,
  current: Record<Side, Listing>,
  touched: { readonly otherwise: Record<Side, ReadonlySet<string>>; readonly byMoves: Record<Side, ReadonlySet<string>> },
): Record<Side, Map<string, FileMeta | undefined>> {
  const beforeCopies = knownAfterMoves(learned.moved, current, touched.otherwise);
  for (const side of SIDES) {
    for (const path of learned.removedFiles[side]) if (!touched.byMoves[side].has(path)) beforeCopies[side].set(path, undefined);
  }
  // The copies came last, so their listing stands where it names a path: what moves and removals
  // left is added to it, rather than the copies' listing to a second map of every copied path.
  const known = learned.listedAfterCopies;
  for (const side of SIDES) for (const [path, meta] of beforeCopies[side]) if (!known[side].has(path)) known[side].set(path, meta);
  return known;
}

export interface SnapshotAfterInput {
  readonly actions: readonly Action[];
  /**
   * The listings the plan was made from. The snapshot is made in these very maps (a copy of a
   * million entries a side cost a second and a map's memory): the caller hands them over. A
   * listing may be `base`'s own map (a side listed exactly as its snapshot), or the map `base` is
   * seen through (a side read in part, listing-overlay.ts): `base` is read only before anything
   * is edited.
   */
  readonly current: Record<Side, Listing>;
  /** The previous snapshot (empty maps on a resync). */
  readonly base: Record<Side, ReadonlyMap<string, FileMeta>>;
  /**
   * Each side's touched paths as listed after propagation (absent: not there), and perhaps a few
   * of the paths `current` holds. A side that listed nothing has its snapshot made in this map
   * (after a first run onto an empty side, a million entries): the caller hands it over too.
   */
  readonly relisted: Record<Side, Listing>;
  readonly compare: CrossSideCompare;
  /**
   * rclone reported every transfer done. Then a written path that matches its source counts as
   * written. After a failure we trust only what cannot be the old version: see `written` below.
   */
  readonly propagationSucceeded: boolean;
}

/**
 * An action is done when every path it writes holds the version it was to write (a path merely
 * being there proves nothing: it may still hold the old version) and every path it removes is gone;
 * done actions take the relisted metadata. Every path of an action that is not done keeps its
 * previous snapshot entries on both sides, so the next run sees the same change and plans the same
 * action again — which is what makes a partly failed run safe to commit.
 */
export function snapshotAfter(input: SnapshotAfterInput): { snapshot: Record<Side, Listing>; incomplete: string[]; done: Action[] } {
  const { relisted, base } = input;
  // Every action judged first, on the listings as they were, since they are then edited. Only the
  // verdicts are kept (a million effects at once would cost hundreds of megabytes); the second pass
  // takes each action's effects again for the paths alone, which do not depend on the listings.
  // The previous entries of the actions not done are taken now too, while `base` is as it was.
  const verdicts = new Uint8Array(input.actions.length);
  const before = { path1: new Map<string, FileMeta | undefined>(), path2: new Map<string, FileMeta | undefined>() };
  let done = true;
  const judge: EffectVisitor = {
    removed: (side, path) => void (done &&= !relisted[side].has(path)),
    written: (side, path, wanted) => void (done &&= written(relisted[side].get(path), wanted, input.current[side].get(path), input)),
  };
  input.actions.forEach((action, i) => {
    done = true;
    visitEffects(action, input.current, judge);
    verdicts[i] = done ? 1 : 0;
    if (!done) for (const path of namedPaths(action, effectsOf(action, input.current))) for (const side of SIDES) before[side].set(path, base[side].get(path));
  });
  // A side that listed nothing (a first run onto an empty side) ends as its relisting, which holds
  // only the paths written there: writing each of them into the empty listing would come to the
  // same map, built a second time beside the first. The pass below still restores what was not done.
  const startFrom = (side: Side) => (input.current[side].size === 0 ? relisted[side] : input.current[side]);
  const snapshot = { path1: startFrom('path1'), path2: startFrom('path2') };
  const incomplete: string[] = [];
  const doneActions: Action[] = [];
  // Removals before writes within an action, as before: a file-folder clash removes and writes the same side.
  const removals: EffectVisitor = { written: () => {}, removed: (side, path) => void snapshot[side].delete(path) };
  const writes: EffectVisitor = { written: (side, path) => void snapshot[side].set(path, relisted[side].get(path)!), removed: () => {} };
  for (const [i, action] of input.actions.entries()) {
    if (verdicts[i] === 1) {
      doneActions.push(action);
      visitEffects(action, snapshot, removals);
      visitEffects(action, snapshot, writes);
      continue;
    }
    const effect = effectsOf(action, snapshot);
    incomplete.push(action.path);
    // Every path the action names, on both sides: a move not made keeps its old name in the snapshot
    // of the side that renamed it, so the next run sees the same rename again.
    for (const path of namedPaths(action, effect)) {
      for (const side of SIDES) {
        const entry = before[side].get(path);
        if (entry) snapshot[side].set(path, entry);
        else snapshot[side].delete(path);
      }
    }
  }
  return { snapshot, incomplete, done: doneActions };
}

/** The action's own path and every path it writes or removes on either side. */
function namedPaths(action: Action, effect: ActionEffects): Set<string> {
  const paths = new Set([action.path]);
  for (const side of SIDES) for (const path of [...effect.written[side].keys(), ...effect.removed[side]]) paths.add(path);
  return paths;
}

/**
 * Up to `count` files of a listing that the plan does not touch, spread over the listing. Listed
 * again after propagation, they show whether the root is still the folder that was listed.
 */
export function pickSentinels(listing: Listing, touched: ReadonlySet<string>, count: number): string[] {
  const picked: string[] = [];
  if (listing.size === 0 || count <= 0) return picked;
  const step = Math.max(1, Math.floor(listing.size / count));
  let i = 0;
  for (const path of listing.keys()) {
    if (i++ % step === 0 && !touched.has(path)) picked.push(path);
    if (picked.length === count) break;
  }
  return picked;
}

/**
 * Is the root still the one listed? A person may delete or edit an untouched file during a run,
 * but a mount that went away (or a remote folder replaced) takes every one of them: the root is
 * taken as changed only when sentinels were picked and not one of them is there as listed.
 */
export function rootsStillListed(listing: Listing, sentinels: readonly string[], relisted: Listing): boolean {
  if (sentinels.length === 0) return true;
  return sentinels.some((path) => {
    const before = listing.get(path);
    const now = relisted.get(path);
    return before !== undefined && now !== undefined && before.size === now.size && before.mtime === now.mtime;
  });
}

/**
 * Does the destination hold the version the action was to write? After a failure, a match proves
 * nothing when the version there before the run matched just as well (same size, times within the
 * tolerance): such a path counts as not written, and the next run copies it again.
 */
function written(now: FileMeta | undefined, wanted: FileMeta | undefined, before: FileMeta | undefined, input: SnapshotAfterInput): boolean {
  if (!now || !wanted || sameVersion(now, wanted, input.compare) !== 'same') return false;
  return input.propagationSucceeded || !before || sameVersion(before, wanted, input.compare) !== 'same';
}
