/**
 * What one action leaves on each side once it is done: the paths it writes (each with the version
 * it must hold) and the paths it removes. `propagate` lays out its steps by it, the engine journals
 * the versions before the copies start, and `commit` decides from it whether an action is done.
 */
import { otherSide, SIDES, type FileMeta, type Listing, type Side } from '../model.ts';
import type { Action } from './types.ts';

export interface ActionEffects {
  /** Path -> the version it must hold afterwards (undefined only for a copy whose source vanished from the listing). */
  readonly written: Record<Side, ReadonlyMap<string, FileMeta | undefined>>;
  readonly removed: Record<Side, readonly string[]>;
}

/** Receives one action's effects, one path at a time. */
export interface EffectVisitor {
  written(side: Side, path: string, version: FileMeta | undefined): void;
  removed(side: Side, path: string): void;
}

/**
 * The action's effects handed to `visit` one by one, allocating nothing: the plan, the folders'
 * plan, the journal and the commit each walk every action's effects, a million on a first run
 * of a big tree. `current`: the listings the plan was made from (a copy writes its source's listed version).
 */
export function visitEffects(action: Action, current: Record<Side, Listing>, visit: EffectVisitor): void {
  switch (action.kind) {
    case 'copy':
      visit.written(otherSide(action.from), action.path, current[action.from].get(action.path));
      return;
    case 'delete':
      visit.removed(action.side, action.path);
      return;
    case 'move':
      visit.written(action.side, action.path, action.meta);
      visit.removed(action.side, action.from);
      return;
    case 'file-folder-clash':
      for (const side of SIDES) visit.written(side, action.to, action.meta);
      visit.removed(action.side, action.path);
      return;
    case 'conflict': {
      const { outcome, path } = action;
      if (outcome.winner === 'none') {
        for (const side of SIDES) {
          visit.written(side, outcome.path1Copy, action.path1);
          visit.written(side, outcome.path2Copy, action.path2);
          visit.removed(side, path);
        }
      } else {
        // The loser's side gets the winner's version at the original name and keeps its own as the
        // conflict copy; the winner's side gets that conflict copy.
        const loser = otherSide(outcome.winner);
        for (const side of SIDES) visit.written(side, outcome.loserCopy, action[loser]);
        visit.written(loser, path, action[outcome.winner]);
      }
      return;
    }
  }
}

/** The action's effects gathered per side (for the few places that look a path up in them). */
export function effectsOf(action: Action, current: Record<Side, Listing>): ActionEffects {
  const written = { path1: new Map<string, FileMeta | undefined>(), path2: new Map<string, FileMeta | undefined>() };
  const removed: Record<Side, string[]> = { path1: [], path2: [] };
  visitEffects(action, current, {
    written: (side, path, version) => void written[side].set(path, version),
    removed: (side, path) => void removed[side].push(path),
  });
  return { written, removed };
}
