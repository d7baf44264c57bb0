/**
 * The vocabulary shared by the three phases of a sync:
 * update detection (listing vs snapshot -> ChangeSet), reconciliation (two ChangeSets -> Plan)
 * and propagation (Plan -> rclone calls).
 */

export type Side = 'path1' | 'path2';
export const SIDES: readonly Side[] = ['path1', 'path2'];
export const otherSide = (side: Side): Side => (side === 'path1' ? 'path2' : 'path1');

/**
 * What we remember of one file on one side. Kept deliberately small: one of these exists per file
 * per side per listing, so a 1M-file tree holds millions of them. `hash` is '' when not listed,
 * so every instance has the same shape (V8 keeps monomorphic objects compact).
 */
export interface FileMeta {
  readonly size: number;
  /** Milliseconds since the epoch, as the backend reported it. */
  readonly mtime: number;
  /** The one hash type chosen for this pair (see HashChoice), or ''. */
  readonly hash: string;
}

/** Relative path (as rclone prints it, '/'-separated) -> metadata. */
export type Listing = Map<string, FileMeta>;

/** How a path changed on one side since the last successful run. Only changed paths are stored. */
export type Change =
  | { readonly kind: 'new'; readonly now: FileMeta }
  | { readonly kind: 'modified'; readonly now: FileMeta; readonly before: FileMeta }
  | { readonly kind: 'deleted'; readonly before: FileMeta };
export type ChangeSet = Map<string, Change>;

/** The state of a path on one side as reconciliation sees it: a Change, or one of the two quiet states. */
export type SideState = Change | { readonly kind: 'unchanged'; readonly now: FileMeta } | { readonly kind: 'absent' };

export type ConflictResolve = 'none' | 'newer' | 'older' | 'path1' | 'path2';

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
       * A file on `side` and a folder of the same name on the other side, both to be kept: the
       * folder keeps the name, the file is renamed to `to` on its side and copied across.
       */
      readonly kind: 'file-folder-clash';
      readonly side: Side;
      readonly path: string;
      readonly to: string;
      readonly meta: FileMeta;
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

export interface PlanCounts {
  copiesToPath1: number;
  copiesToPath2: number;
  deletesOnPath1: number;
  deletesOnPath2: number;
  conflicts: number;
  bytesToPath1: number;
  bytesToPath2: number;
}

export const emptyCounts = (): PlanCounts => ({
  copiesToPath1: 0,
  copiesToPath2: 0,
  deletesOnPath1: 0,
  deletesOnPath2: 0,
  conflicts: 0,
  bytesToPath1: 0,
  bytesToPath2: 0,
});

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
      case 'conflict':
      case 'file-folder-clash':
        counts.conflicts++;
        break;
    }
  }
  return counts;
}
