/**
 * Propagation: carries a plan out with as few rclone processes as the plan allows — one per
 * direction for copies, one per side for deletions; only conflict renames go one file at a time.
 * Order matters: conflict renames first (so no copy lands on a version we must keep), then copies,
 * then deletions (so an interrupted run has lost nothing it had not already carried across) —
 * except deletions that free a name a copy needs, where a file became a folder or a folder a file.
 */
import type { Rclone, TransferProgress } from '../rclone/rclone.ts';
import { otherSide, SIDES, type Action, type Plan, type Side } from './types.ts';

export interface PropagationSteps {
  readonly renames: Record<Side, { from: string; to: string }[]>;
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

/** Lowers plan actions into the primitive steps each side needs. Pure. */
export function stepsOf(plan: Plan): PropagationSteps {
  const steps = {
    renames: { path1: [], path2: [] },
    deletesFirst: { path1: [], path2: [] },
    foldersToRemove: { path1: [], path2: [] },
    copies: { path1: [], path2: [] },
    deletes: { path1: [], path2: [] },
  } satisfies PropagationSteps;
  for (const action of plan.actions) lower(action, steps);
  for (const side of SIDES) orderTypeChanges(side, steps);
  return steps;
}

/** Every folder above a path: `a/b/c` -> `a`, `a/b`. */
function* foldersAbove(path: string): Generator<string> {
  for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) yield path.slice(0, slash);
}

function orderTypeChanges(side: Side, steps: PropagationSteps): void {
  const deletes = steps.deletes[side];
  if (deletes.length === 0) return;
  const incoming = new Set(steps.copies[otherSide(side)]);
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

/** What one action leaves on each side once done: the paths it writes, and the paths it removes. */
export interface ActionEffects {
  readonly written: Record<Side, readonly string[]>;
  readonly removed: Record<Side, readonly string[]>;
}

export function effectsOf(action: Action): ActionEffects {
  switch (action.kind) {
    case 'copy': {
      const to = otherSide(action.from);
      return { written: { path1: [], path2: [], [to]: [action.path] }, removed: { path1: [], path2: [] } };
    }
    case 'delete':
      return { written: { path1: [], path2: [] }, removed: { path1: [], path2: [], [action.side]: [action.path] } };
    case 'file-folder-clash':
      return { written: { path1: [action.to], path2: [action.to] }, removed: { path1: [], path2: [], [action.side]: [action.path] } };
    case 'conflict': {
      const { outcome, path } = action;
      if (outcome.winner === 'none') {
        const copies = [outcome.path1Copy, outcome.path2Copy];
        return { written: { path1: copies, path2: copies }, removed: { path1: [path], path2: [path] } };
      }
      // The loser's side gets the winner's version at the original name and keeps its own as the
      // conflict copy; the winner's side gets that conflict copy.
      const loser = otherSide(outcome.winner);
      return {
        written: { [loser]: [outcome.loserCopy, path], [outcome.winner]: [outcome.loserCopy] } as Record<Side, string[]>,
        removed: { path1: [], path2: [] },
      };
    }
  }
}

export interface PropagateOptions {
  readonly rclone: Rclone;
  readonly roots: Record<Side, string>;
  readonly checksum: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (direction: 'toPath1' | 'toPath2', progress: TransferProgress) => void;
  readonly onStep?: (step: string) => void;
  /** Copies rclone would skip as identical by size and time, though their contents differ. */
  readonly mustForce?: (from: Side, path: string) => boolean;
}

const RENAME_CONCURRENCY = 4;

export async function propagate(steps: PropagationSteps, options: PropagateOptions): Promise<void> {
  const { rclone, roots } = options;
  for (const side of ['path1', 'path2'] as const) {
    const renames = steps.renames[side];
    if (renames.length === 0) continue;
    options.onStep?.(`renaming ${renames.length} conflicting files on ${side}`);
    await inParallel(renames, RENAME_CONCURRENCY, ({ from, to }) => rclone.rename(roots[side], from, to), options.signal);
  }
  for (const side of ['path1', 'path2'] as const) {
    const paths = steps.deletesFirst[side];
    if (paths.length === 0) continue;
    options.onStep?.(`deleting ${paths.length} files on ${side} whose names change between file and folder`);
    await rclone.deleteFiles(roots[side], paths);
    // One rclone call per folder that became a file: rare, and rmdirs takes one path.
    for (const folder of steps.foldersToRemove[side]) await rclone.removeEmptyFolders(roots[side], folder);
  }
  // Both directions at once: they touch different destinations. A copy that fails (rclone goes on
  // with the other files and then reports) does not hold back the deletions, which never depend
  // on a copy; only a failed conflict rename stops everything, since its copies would overwrite
  // the version the rename was to keep.
  const copying = Promise.all(
    (['path1', 'path2'] as const).map(async (from) => {
      const paths = steps.copies[from];
      if (paths.length === 0) return;
      const to = otherSide(from);
      options.onStep?.(`copying ${paths.length} files ${from} -> ${to}`);
      const forced: string[] = [];
      const normal: string[] = [];
      for (const path of paths) (options.mustForce?.(from, path) ? forced : normal).push(path);
      const onProgress = (p: TransferProgress) => options.onProgress?.(to === 'path1' ? 'toPath1' : 'toPath2', p);
      if (forced.length > 0) {
        await rclone.copyFiles(roots[from], roots[to], forced, { checksum: options.checksum, ignoreTimes: true, onProgress });
      }
      if (normal.length > 0) await rclone.copyFiles(roots[from], roots[to], normal, { checksum: options.checksum, onProgress });
    }),
  );
  const copyFailure = await copying.then(
    () => undefined,
    (error: unknown) => ({ error }),
  );
  options.signal?.throwIfAborted();
  for (const side of ['path1', 'path2'] as const) {
    const paths = steps.deletes[side];
    if (paths.length === 0) continue;
    options.onStep?.(`deleting ${paths.length} files on ${side}`);
    await rclone.deleteFiles(roots[side], paths);
  }
  if (copyFailure) throw copyFailure.error;
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
