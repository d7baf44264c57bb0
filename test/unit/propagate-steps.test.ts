import { describe, expect, it } from 'vitest';
import { effectsOf } from '../../src/sync/effects.ts';
import { stepsOf } from '../../src/sync/propagate.ts';
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

});

describe('effectsOf', () => {
  const meta = { size: 1, mtime: 1, hash: '' };
  const none = { path1: new Map(), path2: new Map() };
  const listed = { path1: new Map([['a', meta]]), path2: new Map() };
  const paths = (written: { path1: ReadonlyMap<string, unknown>; path2: ReadonlyMap<string, unknown> }) => ({ path1: [...written.path1.keys()], path2: [...written.path2.keys()] });

  it("a copy writes its source's listed version on the other side; a delete removes on its side", () => {
    const copied = effectsOf(copy('path1', 'a'), listed);
    expect(paths(copied.written)).toEqual({ path1: [], path2: ['a'] });
    expect(copied.written.path2.get('a')).toBe(meta);
    expect(copied.removed).toEqual({ path1: [], path2: [] });
    const deleted = effectsOf(del('path2', 'b'), none);
    expect(paths(deleted.written)).toEqual({ path1: [], path2: [] });
    expect(deleted.removed).toEqual({ path1: [], path2: ['b'] });
  });

  it('a conflict with a winner: the loser side holds both names, the winner side gains the conflict copy', () => {
    const older = { size: 2, mtime: 1, hash: '' };
    const action: Action = { kind: 'conflict', path: 'r.txt', outcome: { winner: 'path1', loserCopy: 'r.c2.txt' }, path1: meta, path2: older };
    const effects = effectsOf(action, none);
    expect(paths(effects.written)).toEqual({ path1: ['r.c2.txt'], path2: ['r.c2.txt', 'r.txt'] });
    expect(effects.written.path2.get('r.txt')).toBe(meta);
    expect(effects.written.path1.get('r.c2.txt')).toBe(older);
    expect(effects.removed).toEqual({ path1: [], path2: [] });
  });

  it('a conflict without a winner: the original name goes, both conflict copies are on both sides', () => {
    const action: Action = { kind: 'conflict', path: 'r.txt', outcome: { winner: 'none', path1Copy: 'r.c1.txt', path2Copy: 'r.c2.txt' }, path1: meta, path2: meta };
    const effects = effectsOf(action, none);
    expect(paths(effects.written)).toEqual({ path1: ['r.c1.txt', 'r.c2.txt'], path2: ['r.c1.txt', 'r.c2.txt'] });
    expect(effects.removed).toEqual({ path1: ['r.txt'], path2: ['r.txt'] });
  });
});
