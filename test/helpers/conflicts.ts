/**
 * Conflict copies as the tests recognise them: names built by the engine's own `conflictName`, so
 * a change of the naming scheme changes what the tests expect with it.
 */
import { expect } from 'vitest';
import { conflictName } from '../../src/sync/reconcile.ts';
import type { Side } from '../../src/model.ts';
import type { LogLine } from './logs.ts';

/** The run's stamp in a conflict copy's name (`20261125T143200Z`) and the counter a taken name gets (`-2`). */
const CONFLICT_STAMP = String.raw`\d{8}T\d{6}Z(-\d+)?`;

/** Paths that look like conflict copies (`name.conflict-path1-<stamp>.ext`). */
export const conflictCopies = (paths: Iterable<string>): string[] => {
  const pattern = new RegExp(String.raw`\.conflict-path[12]-${CONFLICT_STAMP}`);
  return [...paths].filter((p) => pattern.test(p));
};

/** Stands for the stamp while the engine's own `conflictName` builds the name; NUL is in no file name. */
const STAMP_PLACEHOLDER = '\0';

/** Matches a conflict copy of `path` made for `side`, named as the engine names it (`.ext` stays last). */
export function conflictCopyPattern(path: string, side: Side): RegExp {
  const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const name = quote(conflictName(path, side, STAMP_PLACEHOLDER));
  return new RegExp(`^${name.replace(STAMP_PLACEHOLDER, CONFLICT_STAMP)}$`);
}

/**
 * Checks the one conflict log line of a file edited on both sides, the remote (path2) edit being the
 * newer, and returns the tree both sides should then hold. With SYNC_CONFLICT_RESOLVE=none both
 * versions are kept as conflict copies; with `newer` the remote version keeps the name and the local
 * one becomes the loser's copy. The copies' names must match `conflictCopyPattern`.
 */
export function expectedTreeAfterConflict(
  conflict: LogLine | undefined,
  resolve: 'none' | 'newer',
  file: { path: string; local: string; remote: string },
  untouched: Record<string, string>,
): Record<string, string> {
  if (resolve === 'none') {
    expect(conflict!.path1Copy).toMatch(conflictCopyPattern(file.path, 'path1'));
    expect(conflict!.path2Copy).toMatch(conflictCopyPattern(file.path, 'path2'));
    return { ...untouched, [String(conflict!.path1Copy)]: file.local, [String(conflict!.path2Copy)]: file.remote };
  }
  expect(conflict).toMatchObject({ winner: 'path2' });
  expect(conflict!.loserCopy).toMatch(conflictCopyPattern(file.path, 'path1'));
  return { ...untouched, [file.path]: file.remote, [String(conflict!.loserCopy)]: file.local };
}
