/**
 * The engine's own vocabulary, between its phases: detection turns a listing and its snapshot into
 * a ChangeSet, reconciliation two ChangeSets into a Plan of Actions, propagation a Plan into rclone
 * calls. What other layers share too (Side, FileMeta, Listing, PlanCounts) is in ../model.ts.
 */
import { emptyCounts, otherSide, type FileMeta, type PlanCounts, type Side } from '../model.ts';

/** How a path changed on one side since the last successful run. Only changed paths are stored. */
export type Change =
  | { readonly kind: 'new'; readonly now: FileMeta }
  | { readonly kind: 'modified'; readonly now: FileMeta; readonly before: FileMeta }
  | { readonly kind: 'deleted'; readonly before: FileMeta };
export type ChangeSet = Map<string, Change>;

/** The state of a path on one side as reconciliation sees it: a Change, or one of the two quiet states. */
export type SideState = Change | { readonly kind: 'unchanged'; readonly now: FileMeta } | { readonly kind: 'absent' };

/**
 * How a conflict ends. Both versions always survive on both sides; what differs is who keeps the
 * original name. With a winner, the loser's version is renamed on its own side to `loserCopy` and
 * then copied to the winner's side; the winner's version is copied to the original name on the
 * loser's side. With no winner, each side's version is renamed to its own conflict name and both
 * are copied across; the original name is left empty, so the conflict cannot go unnoticed.
 */
export type ConflictOutcome =
  | { readonly winner: Side; readonly loserCopy: string }
  | { readonly winner: 'none'; readonly path1Copy: string; readonly path2Copy: string };

export type CopyReason = 'new' | 'modified' | 'restored' | 'resync';

export type Action =
  | { readonly kind: 'copy'; readonly from: Side; readonly path: string; readonly reason: CopyReason; readonly size: number }
  | { readonly kind: 'delete'; readonly side: Side; readonly path: string }
  | {
      /**
       * A file renamed or moved on the other side, moved the same way on `side` (server-side, no
       * bytes transferred): `from` becomes `path`. `meta` is `from` as `side` listed it.
       */
      readonly kind: 'move';
      readonly side: Side;
      readonly from: string;
      readonly path: string;
      readonly meta: FileMeta;
    }
  | {
      /**
       * A file on `side` and a folder of the same name on the other side, both to be kept: the
       * folder keeps the name, the file is renamed to `to` on its side and copied across.
       */
      readonly kind: 'file-folder-clash';
      readonly side: Side;
      readonly path: string;
      readonly to: string;
      readonly meta: FileMeta;
      /**
       * Set when the clash is with a file whose name differs only in case or unicode normalization,
       * on a side whose backend takes the two for one name: that other name.
       */
      readonly sameNameAs?: string;
    }
  | {
      readonly kind: 'conflict';
      readonly path: string;
      readonly outcome: ConflictOutcome;
      readonly path1: FileMeta;
      readonly path2: FileMeta;
    };

export interface Plan {
  readonly actions: readonly Action[];
}

export function countPlan(plan: Plan): PlanCounts {
  const counts = emptyCounts();
  for (const action of plan.actions) {
    switch (action.kind) {
      case 'copy':
        if (action.from === 'path1') {
          counts.copiesToPath2++;
          counts.bytesToPath2 += action.size;
        } else {
          counts.copiesToPath1++;
          counts.bytesToPath1 += action.size;
        }
        break;
      case 'delete':
        if (action.side === 'path1') counts.deletesOnPath1++;
        else counts.deletesOnPath2++;
        break;
      case 'move':
        if (action.side === 'path1') counts.movesOnPath1++;
        else counts.movesOnPath2++;
        break;
      case 'file-folder-clash':
        counts.conflicts++;
        // The renamed file crosses over.
        addBytes(counts, otherSide(action.side), action.meta.size);
        break;
      case 'conflict': {
        counts.conflicts++;
        // Each version that is not yet on a side crosses over (see lower() in propagate.ts).
        const { outcome } = action;
        if (outcome.winner === 'none') {
          addBytes(counts, 'path2', action.path1.size);
          addBytes(counts, 'path1', action.path2.size);
        } else {
          const loser = otherSide(outcome.winner);
          addBytes(counts, outcome.winner, action[loser].size);
          addBytes(counts, loser, action[outcome.winner].size);
        }
        break;
      }
    }
  }
  return counts;
}

function addBytes(counts: PlanCounts, to: Side, size: number): void {
  if (to === 'path1') counts.bytesToPath1 += size;
  else counts.bytesToPath2 += size;
}
