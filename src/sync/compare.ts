import type { FileMeta } from '../model.ts';

/**
 * What "the same file" means across the two sides, which may be different backends.
 * Within one side we compare a listing with that side's own snapshot, so exact equality is right;
 * across sides, modification times only agree to the coarser backend's precision.
 */
export interface CrossSideCompare {
  /** Larger of the two backends' modtime precisions, in milliseconds (at least 1). */
  readonly mtimeToleranceMs: number;
  /** True when both listings carry the same hash type, so hashes may be compared. */
  readonly commonHash: boolean;
}

export type Sameness = 'same' | 'different' | 'unknown';

/**
 * 'unknown' means size agrees but nothing cheap proves the contents agree: the caller may ask
 * rclone to compare contents, and must treat a file it could not check as different (a conflict
 * keeps both versions, so guessing "different" never loses data).
 */
export function sameVersion(a: FileMeta, b: FileMeta, compare: CrossSideCompare): Sameness {
  if (a.size !== b.size) return 'different';
  if (compare.commonHash && a.hash !== '' && b.hash !== '') return a.hash === b.hash ? 'same' : 'different';
  if (Math.abs(a.mtime - b.mtime) <= compare.mtimeToleranceMs) return 'same';
  return 'unknown';
}

/**
 * Did a file change on its own side since the snapshot? A modtime counts as changed only beyond
 * the backend's precision (`mtimeToleranceMs`, 0 for exact), which is all the backend can tell.
 */
export function changedOnSide(before: FileMeta, now: FileMeta, useHash: boolean, mtimeToleranceMs = 0): boolean {
  if (before.size !== now.size || Math.abs(before.mtime - now.mtime) > mtimeToleranceMs) return true;
  return useHash && before.hash !== '' && now.hash !== '' && before.hash !== now.hash;
}

/** Hashes we would rather compare, cheapest and most common first. */
const HASH_PREFERENCE = ['md5', 'sha1', 'crc32', 'sha256', 'dropbox', 'quickxor', 'whirlpool', 'hidrive', 'mailru'];

/** The one hash type both backends list (rclone's names: `md5`, `sha1`, ...), or '' for none. */
export function chooseHash(hashes1: readonly string[], hashes2: readonly string[]): string {
  return HASH_PREFERENCE.find((h) => hashes1.includes(h) && hashes2.includes(h)) ?? '';
}
