/**
 * An in-memory model of the two sides of a pair, for testing reconciliation without rclone.
 *
 * A side is a Map from path to { content, mtime }. From it the helpers derive what the real
 * engine would see (FileMeta listings, snapshots, ChangeSets via `changedOnSide`), simulate the
 * content check rclone performs for `pathsNeedingContentCheck`, and carry out a Plan exactly as
 * propagation does (src/sync/propagate.ts):
 *   1. the conflict renames: with a winner, the loser's file at `path` is renamed to `loserCopy`
 *      on the loser's side; with winner 'none', on path1 path -> path1Copy and on path2
 *      path -> path2Copy;
 *   2. the copies (a copy preserves mtime): for a conflict with a winner, the loser copy to the
 *      winner's side and the winner's file to `path` on the loser's side; with winner 'none',
 *      each conflict copy to the other side; then every plain copy;
 *   3. the deletes.
 * The model is strict: it throws on anything propagation could not do or should never do
 * (a copy from a side that lacks the file, a rename or conflict copy onto an existing file,
 * deleting a missing file, an action whose recorded metadata does not match the side), so a
 * faulty plan fails loudly instead of silently "working" in memory.
 */
import { createHash } from 'node:crypto';
import { changedOnSide, type CrossSideCompare } from '../../src/sync/compare.ts';
import { pathsNeedingContentCheck, reconcile, type ReconcileInput } from '../../src/sync/reconcile.ts';
import { type ChangeSet, type Plan } from '../../src/sync/types.ts';
import { otherSide, SIDES, type ConflictResolve, type FileMeta, type Listing, type Side } from '../../src/model.ts';

export interface ModelFile {
  readonly content: string;
  readonly mtime: number;
}
export type ModelSide = Map<string, ModelFile>;
export interface ModelSides {
  readonly path1: ModelSide;
  readonly path2: ModelSide;
}
export interface Listings {
  readonly path1: Listing;
  readonly path2: Listing;
}

export const file = (content: string, mtime: number): ModelFile => ({ content, mtime });

export function sideOf(entries: Iterable<readonly [string, ModelFile]> = []): ModelSide {
  return new Map(entries);
}

export function cloneSides(sides: ModelSides): ModelSides {
  return { path1: new Map(sides.path1), path2: new Map(sides.path2) };
}

export const hashOf = (content: string): string => createHash('md5').update(content, 'utf8').digest('hex');

/** What a listing reports for a file: size is the content length; a hash only in checksum mode. */
export function metaOf(f: ModelFile, withHash = false): FileMeta {
  return { size: f.content.length, mtime: f.mtime, hash: withHash ? hashOf(f.content) : '' };
}

export function listingOf(side: ModelSide, withHash = false): Listing {
  const listing: Listing = new Map();
  for (const [path, f] of side) listing.set(path, metaOf(f, withHash));
  return listing;
}

export function listingsOf(sides: ModelSides, withHash = false): Listings {
  return { path1: listingOf(sides.path1, withHash), path2: listingOf(sides.path2, withHash) };
}

/** A snapshot is the listing saved at the end of a successful run. */
export const snapshotOf = listingOf;
export const snapshotsOf = listingsOf;
export const emptyListings = (): Listings => ({ path1: new Map(), path2: new Map() });

/** Update detection: a listing against the same side's snapshot. */
export function detectChanges(snapshot: Listing, listing: Listing, useHash: boolean): ChangeSet {
  const changes: ChangeSet = new Map();
  for (const [path, now] of listing) {
    const before = snapshot.get(path);
    if (!before) changes.set(path, { kind: 'new', now });
    else if (changedOnSide(before, now, useHash)) changes.set(path, { kind: 'modified', now, before });
  }
  for (const [path, before] of snapshot) if (!listing.has(path)) changes.set(path, { kind: 'deleted', before });
  return changes;
}

/** What rclone's content check answers: the paths whose two current versions are byte-identical. */
export function contentCheck(paths: Iterable<string>, sides: ModelSides): Set<string> {
  const same = new Set<string>();
  for (const path of paths) {
    const a = sides.path1.get(path);
    const b = sides.path2.get(path);
    if (a && b && a.content === b.content) same.add(path);
  }
  return same;
}

export interface ModelOptions {
  /** Checksum mode: listings carry content hashes, change detection and cross-side comparison use them. */
  readonly checksum: boolean;
  readonly mtimeToleranceMs: number;
  readonly conflictResolve: ConflictResolve;
  readonly stamp: string;
  readonly resync: boolean;
}

export const compareFor = (options: Pick<ModelOptions, 'checksum' | 'mtimeToleranceMs'>): CrossSideCompare => ({
  mtimeToleranceMs: options.mtimeToleranceMs,
  commonHash: options.checksum,
});

export interface ModelRun {
  readonly listings: Listings;
  readonly changes: { readonly path1: ChangeSet; readonly path2: ChangeSet };
  readonly needCheck: readonly string[];
  readonly verifiedSame: ReadonlySet<string>;
  readonly input: ReconcileInput;
  readonly plan: Plan;
}

/** Detection, content check and reconciliation, as one run of the engine would do them. */
export function planRun(sides: ModelSides, snapshots: Listings, options: ModelOptions): ModelRun {
  const listings = listingsOf(sides, options.checksum);
  const changes = {
    path1: detectChanges(snapshots.path1, listings.path1, options.checksum),
    path2: detectChanges(snapshots.path2, listings.path2, options.checksum),
  };
  const base = {
    changes,
    current: listings,
    compare: compareFor(options),
    conflictResolve: options.conflictResolve,
    stamp: options.stamp,
    resync: options.resync,
  };
  const needCheck = pathsNeedingContentCheck(base);
  const verifiedSame = contentCheck(needCheck, sides);
  const input: ReconcileInput = { ...base, verifiedSame };
  return { listings, changes, needCheck, verifiedSame, input, plan: reconcile(input) };
}

/** One primitive operation of propagation. `copy` copies `side`'s file at `path` to the same path on the other side. */
export type Step =
  | { readonly kind: 'rename'; readonly side: Side; readonly from: string; readonly to: string }
  | { readonly kind: 'copy'; readonly from: Side; readonly path: string; readonly mustNotExist: boolean }
  | { readonly kind: 'delete'; readonly side: Side; readonly path: string };

/**
 * The plan as primitive steps, in the three phases propagation runs one after the other: all
 * conflict renames (path1's, then path2's), then all copies (conflict copies and plain copies, in
 * plan order; the engine runs the two directions at once, so any subset of them may be done when
 * a run dies), then all deletions (path1's, then path2's).
 */
export function planPhases(plan: Plan): [renames: Step[], copies: Step[], deletes: Step[]] {
  const renames: Record<Side, Step[]> = { path1: [], path2: [] };
  const copies: Step[] = [];
  const deletes: Record<Side, Step[]> = { path1: [], path2: [] };
  for (const action of plan.actions) {
    switch (action.kind) {
      case 'conflict': {
        const { path, outcome } = action;
        if (outcome.winner === 'none') {
          renames.path1.push({ kind: 'rename', side: 'path1', from: path, to: outcome.path1Copy });
          renames.path2.push({ kind: 'rename', side: 'path2', from: path, to: outcome.path2Copy });
          copies.push(
            { kind: 'copy', from: 'path1', path: outcome.path1Copy, mustNotExist: true },
            { kind: 'copy', from: 'path2', path: outcome.path2Copy, mustNotExist: true },
          );
        } else {
          const loser = otherSide(outcome.winner);
          renames[loser].push({ kind: 'rename', side: loser, from: path, to: outcome.loserCopy });
          copies.push(
            { kind: 'copy', from: loser, path: outcome.loserCopy, mustNotExist: true },
            // The loser's file was renamed away: nothing is at `path` on the loser's side any more.
            { kind: 'copy', from: outcome.winner, path, mustNotExist: true },
          );
        }
        break;
      }
      case 'copy':
        copies.push({ kind: 'copy', from: action.from, path: action.path, mustNotExist: false });
        break;
      case 'delete':
        deletes[action.side].push({ kind: 'delete', side: action.side, path: action.path });
        break;
    }
  }
  return [[...renames.path1, ...renames.path2], copies, [...deletes.path1, ...deletes.path2]];
}

/** All the steps of a plan, in the order propagation performs them. */
export function planSteps(plan: Plan): Step[] {
  return planPhases(plan).flat();
}

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

/** Carries out primitive steps on a copy of `sides` (the argument is left untouched). */
export function applySteps(steps: readonly Step[], sides: ModelSides): ModelSides {
  const result = cloneSides(sides);
  for (const step of steps) {
    switch (step.kind) {
      case 'rename': {
        const side = result[step.side];
        const f = side.get(step.from);
        if (!f) throw new ModelError(`rename on ${step.side}: ${step.from} does not exist`);
        if (side.has(step.to)) throw new ModelError(`rename on ${step.side}: ${step.from} -> ${step.to} would overwrite`);
        side.delete(step.from);
        side.set(step.to, f);
        break;
      }
      case 'copy': {
        const f = result[step.from].get(step.path);
        if (!f) throw new ModelError(`copy from ${step.from}: ${step.path} does not exist`);
        const target = result[otherSide(step.from)];
        if (step.mustNotExist && target.has(step.path)) {
          throw new ModelError(`conflict copy to ${otherSide(step.from)}: ${step.path} would overwrite`);
        }
        target.set(step.path, f);
        break;
      }
      case 'delete': {
        const side = result[step.side];
        if (!side.delete(step.path)) throw new ModelError(`delete on ${step.side}: ${step.path} does not exist`);
        break;
      }
    }
  }
  return result;
}

/** Checks that each action's recorded metadata matches the sides it was planned against. */
export function checkPlanAgainst(plan: Plan, sides: ModelSides): void {
  const seen = new Set<string>();
  for (const action of plan.actions) {
    if (seen.has(action.path)) throw new ModelError(`two actions for ${action.path}`);
    seen.add(action.path);
    if (action.kind === 'copy') {
      const f = sides[action.from].get(action.path);
      if (!f) throw new ModelError(`copy from ${action.from}: ${action.path} does not exist`);
      if (f.content.length !== action.size) throw new ModelError(`copy ${action.path}: size ${action.size}, file has ${f.content.length}`);
    } else if (action.kind === 'conflict') {
      for (const side of SIDES) {
        const f = sides[side].get(action.path);
        const meta = action[side];
        if (!f) throw new ModelError(`conflict ${action.path}: missing on ${side}`);
        if (f.content.length !== meta.size || f.mtime !== meta.mtime) throw new ModelError(`conflict ${action.path}: ${side} metadata is stale`);
      }
    }
  }
}

/** Carries out a Plan on a copy of `sides` exactly as propagation will. */
export function applyPlan(plan: Plan, sides: ModelSides): ModelSides {
  checkPlanAgainst(plan, sides);
  return applySteps(planSteps(plan), sides);
}

/** Both sides hold the same paths with the same contents (mtimes may differ: a verified touch). */
export function sidesDiffer(sides: ModelSides): string[] {
  const problems: string[] = [];
  const paths = new Set([...sides.path1.keys(), ...sides.path2.keys()]);
  for (const path of [...paths].sort()) {
    const a = sides.path1.get(path);
    const b = sides.path2.get(path);
    if (!a) problems.push(`${path}: only on path2`);
    else if (!b) problems.push(`${path}: only on path1`);
    else if (a.content !== b.content) problems.push(`${path}: ${JSON.stringify(a.content)} vs ${JSON.stringify(b.content)}`);
  }
  return problems;
}

export function contentsOf(side: ModelSide): Map<string, string[]> {
  const byContent = new Map<string, string[]>();
  for (const [path, f] of side) {
    const paths = byContent.get(f.content);
    if (paths) paths.push(path);
    else byContent.set(f.content, [path]);
  }
  return byContent;
}
