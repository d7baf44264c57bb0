/**
 * Safety gates: each one looks at what a run is about to do and refuses (exit 3) when it looks like
 * a mistake rather than an intention. All of them run before anything changes on either side.
 */
import { SafetyStop } from '../errors.ts';
import type { Listing, PlanCounts, Side } from '../model.ts';

/** A side that had files at the last run and now lists as missing or empty is a vanished mount, not a mass deletion. */
export function checkSideNotVanished(side: Side, root: string, state: 'missing' | 'empty', previousCount: number): void {
  if (previousCount === 0) return;
  throw new SafetyStop(
    state === 'missing' ? 'side-missing' : 'side-empty',
    `${side} (${root}) is ${state === 'missing' ? 'missing' : 'empty'} but had ${previousCount} files at the last run; ` +
      `refusing to treat that as deleting everything. Look first: is the folder or mount there? rclonesync run --dry-run lists what a run would do. ` +
      `If it is intended, run once with SYNC_RESYNC=true: it copies the other side's files back and deletes nothing.`,
  );
}

export function checkAccessFiles(filename: string, path1: Listing, path2: Listing): void {
  const found = (listing: Listing) => {
    const paths = new Set<string>();
    for (const path of listing.keys()) if (path === filename || path.endsWith(`/${filename}`)) paths.add(path);
    return paths;
  };
  const in1 = found(path1);
  const in2 = found(path2);
  if (in1.size === 0 && in2.size === 0) {
    throw new SafetyStop('check-access', `access check failed: no ${filename} file on either side (SYNC_CHECK_ACCESS is on; create one at the same path on both sides)`);
  }
  const only1 = [...in1].filter((p) => !in2.has(p));
  const only2 = [...in2].filter((p) => !in1.has(p));
  if (only1.length || only2.length) {
    const parts = [];
    if (only1.length) parts.push(`only on path1: ${only1.slice(0, 5).join(', ')}`);
    if (only2.length) parts.push(`only on path2: ${only2.slice(0, 5).join(', ')}`);
    throw new SafetyStop('check-access', `access check failed: ${filename} files differ between the sides (${parts.join('; ')})`);
  }
}

export function checkMaxDelete(counts: PlanCounts, previous: { path1: number; path2: number }, maxPercent: number, force: boolean): void {
  if (force) return;
  for (const side of ['path1', 'path2'] as const) {
    const deletes = side === 'path1' ? counts.deletesOnPath1 : counts.deletesOnPath2;
    const total = previous[side];
    if (deletes === 0 || total === 0) continue;
    const percent = (deletes / total) * 100;
    if (percent > maxPercent) {
      throw new SafetyStop(
        'max-delete',
        `this run would delete ${deletes} of ${total} files (${percent.toFixed(1)}%) on ${side}, more than SYNC_MAX_DELETE=${maxPercent}%. ` +
          `Look first: rclonesync run --dry-run lists every action. Then either run once with SYNC_FORCE=true to carry the deletions out, ` +
          `or once with SYNC_RESYNC=true to restore the deleted files from the other side (a resync deletes nothing)`,
      );
    }
  }
}

export function checkFiltersUnchanged(previousHash: string, currentHash: string): void {
  if (previousHash === currentHash) return;
  throw new SafetyStop(
    'filters-changed',
    `the filters (SYNC_FILTERS_FILE) changed since the last run; files newly included or excluded would look created or deleted. ` +
      `Run once with SYNC_RESYNC=true to accept the new filters.`,
  );
}
