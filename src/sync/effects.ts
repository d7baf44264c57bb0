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

/** `current`: the listings the plan was made from (a copy writes its source's listed version). */
export function effectsOf(action: Action, current: Record<Side, Listing>): ActionEffects {
  const written = { path1: new Map<string, FileMeta | undefined>(), path2: new Map<string, FileMeta | undefined>() };
  const removed: Record<Side, string[]> = { path1: [], path2: [] };
  switch (action.kind) {
    case 'copy':
      written[otherSide(action.from)].set(action.path, current[action.from].get(action.path));
      break;
    case 'delete':
      removed[action.side].push(action.path);
      break;
    case 'file-folder-clash':
      for (const side of SIDES) written[side].set(action.to, action.meta);
      removed[action.side].push(action.path);
      break;
    case 'conflict': {
      const { outcome, path } = action;
      if (outcome.winner === 'none') {
        for (const side of SIDES) {
          written[side].set(outcome.path1Copy, action.path1);
          written[side].set(outcome.path2Copy, action.path2);
          removed[side].push(path);
        }
      } else {
        // The loser's side gets the winner's version at the original name and keeps its own as the
        // conflict copy; the winner's side gets that conflict copy.
        const loser = otherSide(outcome.winner);
        for (const side of SIDES) written[side].set(outcome.loserCopy, action[loser]);
        written[loser].set(path, action[outcome.winner]);
      }
      break;
    }
  }
  return { written, removed };
}
