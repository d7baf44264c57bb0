import { describe, expect, it } from 'vitest';
import { effectsOf, stepsOf } from '../../src/sync/propagate.ts';
import type { Action } from '../../src/sync/types.ts';

const copy = (from: 'path1' | 'path2', path: string): Action => ({ kind: 'copy', from, path, reason: 'new', size: 1 });
const del = (side: 'path1' | 'path2', path: string): Action => ({ kind: 'delete', side, path });

describe('stepsOf', () => {
  it('deletes after copying, so an interrupted run has lost nothing it had not carried across', () => {
    const steps = stepsOf({ actions: [copy('path1', 'a'), del('path2', 'b')] });
    expect(steps.deletesFirst.path2).toEqual([]);
    expect(steps.deletes.path2).toEqual(['b']);
  });

  it('a file that became a folder: the file is deleted before the folder is copied in', () => {
    const steps = stepsOf({ actions: [copy('path1', 'x/a'), copy('path1', 'x/deep/b'), del('path2', 'x'), del('path2', 'other')] });
    expect(steps.deletesFirst.path2).toEqual(['x']);
    expect(steps.deletes.path2).toEqual(['other']);
    expect(steps.foldersToRemove.path2).toEqual([]);
  });

  it('a folder that became a file: its files are deleted and the folder removed before the file is copied in', () => {
    const steps = stepsOf({ actions: [copy('path2', 'y'), del('path1', 'y/a'), del('path1', 'y/z/b'), del('path1', 'yy/c')] });
    expect(steps.deletesFirst.path1).toEqual(['y/a', 'y/z/b']);
    expect(steps.deletes.path1).toEqual(['yy/c']);
    expect(steps.foldersToRemove.path1).toEqual(['y']);
  });

  it('only the destination side is concerned: a copy the other way does not reorder deletions', () => {
    const steps = stepsOf({ actions: [copy('path2', 'x/a'), del('path2', 'x')] });
    expect(steps.deletesFirst.path2).toEqual([]);
  });

  it('effects count early deletions as removed', () => {
    const steps = stepsOf({ actions: [copy('path1', 'x/a'), del('path2', 'x')] });
    const { written, removed } = effectsOf(steps);
    expect([...written.path2]).toEqual(['x/a']);
    expect([...removed.path2]).toEqual(['x']);
  });
});
