/**
 * Update detection: what changed on one side since the last successful run. Pure: the listing and
 * the snapshot come in, only the changed paths come out (unchanged files cost nothing further).
 */
import { changedOnSide } from './compare.ts';
import type { ChangeSet, FileMeta, Listing } from './types.ts';

export function detectChanges(snapshot: Listing, current: Listing, useHash: boolean, mtimeToleranceMs = 0): ChangeSet {
  const changes: ChangeSet = new Map();
  for (const [path, now] of current) {
    const before = snapshot.get(path);
    if (!before) changes.set(path, { kind: 'new', now });
    else if (changedOnSide(before, now, useHash, mtimeToleranceMs)) changes.set(path, { kind: 'modified', now, before });
  }
  for (const [path, before] of snapshot) {
    if (!current.has(path)) changes.set(path, { kind: 'deleted', before });
  }
  return changes;
}

/**
 * After a run died mid-propagation (see state/journal.ts), a destination file it was writing may be
 * half-written. Such a file is recognised — the journal names it, its source has not changed since,
 * it does not match the source, and it was last written while the dead run was alive — and is
 * treated as not changed by the user, so the copy is simply made again instead of raising a conflict.
 */
export function discountInterruptedCopies(
  changes: ChangeSet,
  current: Listing,
  sourceCurrent: Listing,
  journalCopies: ReadonlyMap<string, FileMeta>,
  keyOf: (path: string) => string,
  window: { readonly from: number; readonly to: number },
): string[] {
  const discounted: string[] = [];
  for (const [path, change] of changes) {
    if (change.kind === 'deleted') continue;
    const source = journalCopies.get(keyOf(path));
    if (!source) continue;
    const sourceNow = sourceCurrent.get(path);
    if (!sourceNow || sourceNow.size !== source.size || sourceNow.mtime !== source.mtime) continue;
    const written = change.now.mtime;
    if (written < window.from || written > window.to) continue;
    discounted.push(path);
    changes.delete(path);
    // A half-written new file is as good as absent; a half-overwritten one as its old self.
    if (change.kind === 'new') current.delete(path);
  }
  return discounted;
}
