/**
 * The no-change shortcut (listing-blocks.ts, listing-digests.ts): a run whose listings hold exactly
 * the folder blocks of the last run's, which changed nothing, reads neither the listings nor the
 * snapshot. What must hold: it is taken only then (a changed file, a changed setting, another
 * filters file each make a run read everything), and a side found unchanged is still read whole
 * when the other side changed, whichever side's listing ends first.
 *
 * And the change batch after such a run: only the folders whose blocks changed are read, the
 * snapshot stands for the rest (listing-overlay.ts). What must hold: every change is carried as a
 * run that reads everything would carry it (edits, deletions, a folder emptied or removed, new
 * folders, renames across folders, conflicts), and what it commits is right, so that the next run
 * finds nothing to do.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS, backendDetail, backendRunEnv, currentBackend, useBackend } from '../helpers/backends.ts';
import { actionsOf, copiesOf, deletesOf, expectSafetyStop, readInPart, summaryOf, tookShortcut } from '../helpers/logs.ts';
import type { CliResult } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { readTree, readTreeFile, removeFile, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-unchanged-', { runEnv: backendRunEnv, failureDetail: backendDetail });

const expectNothingDone = (result: CliResult) =>
  expect(summaryOf(result.logs)).toMatchObject({ outcome: 'success', copiesToPath1: 0, copiesToPath2: 0, deletesOnPath1: 0, deletesOnPath2: 0, conflicts: 0 });

function treeOf(folders: number, perFolder: number): Record<string, string> {
  const tree: Record<string, string> = { 'top.txt': 'at the root' };
  for (let d = 0; d < folders; d++) for (let f = 0; f < perFolder; f++) tree[`d${d}/f${f}.txt`] = `file ${f} of folder ${d}`;
  tree['d1/sub/deeper.txt'] = 'two folders down';
  return tree;
}

describe.each(BACKENDS)('the no-change shortcut ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2);
  // s3rver gives folders no modification time of their own, so every listing is the same as long
  // as the files are; on disk a folder's time changes with what it holds. Either way, the run
  // right after a change run reads everything (its digests went with the old snapshot).

  it('is taken only when nothing changed since a run that changed nothing; every change is still carried', { timeout: 240_000 }, async () => {
    const tree = treeOf(12, 50);
    await writeTree(sb.path1, tree);
    await ok();
    // The first run after the copies reads everything and records its listings.
    const recording = await ok();
    expect(tookShortcut(recording)).toBe(false);
    expectNothingDone(recording);
    const idle = await ok();
    expect(tookShortcut(idle)).toBe(true);
    expectNothingDone(idle);

    // An edit in place on path2 (its folder keeps its time on disk): carried to path1.
    await currentBackend().side2.writeTree({ 'd7/f3.txt': 'edited on path2, longer than before' });
    const edit = await ok();
    expect(tookShortcut(edit)).toBe(false);
    expect(copiesOf(edit.logs).map((l) => `${l.from}:${l.path}`)).toEqual(['path2:d7/f3.txt']);
    expect(await readTreeFile(sb.path1, 'd7/f3.txt')).toBe('edited on path2, longer than before');
    expect(tookShortcut(await ok())).toBe(false);
    expect(tookShortcut(await ok())).toBe(true);

    // A deletion on path1: carried, and nothing else goes.
    await removeFile(sb.path1, 'd2/f10.txt');
    const deletion = await ok();
    expect(deletesOf(deletion.logs).map((l) => `${l.side}:${l.path}`)).toEqual(['path2:d2/f10.txt']);
    const expected: Record<string, string> = { ...tree, 'd7/f3.txt': 'edited on path2, longer than before' };
    delete expected['d2/f10.txt'];
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await currentBackend().side2.readTree()).toEqual(expected);
    await ok();
    expect(tookShortcut(await ok())).toBe(true);

    // A new file two folders down on path1.
    await writeTreeFile(sb.path1, 'd1/sub/new.txt', 'new down there');
    const added = await ok();
    expect(copiesOf(added.logs).map((l) => `${l.from}:${l.path}`)).toEqual(['path1:d1/sub/new.txt']);
    expect((await currentBackend().side2.readTree())['d1/sub/new.txt']).toBe('new down there');
  });

  it('is not taken with other settings, and a changed filters file still stops the run', { timeout: 120_000 }, async () => {
    const filters = join(sb.scratch, 'filters.txt');
    await writeFile(filters, '- *.tmp\n');
    await writeTree(sb.path1, treeOf(3, 5));
    await ok({ SYNC_FILTERS_FILE: filters });
    await ok({ SYNC_FILTERS_FILE: filters });
    expect(tookShortcut(await ok({ SYNC_FILTERS_FILE: filters }))).toBe(true);
    // Another setting: everything is read once (and the gates see it), then the shortcut is back.
    expect(tookShortcut(await ok({ SYNC_FILTERS_FILE: filters, SYNC_MAX_DELETE: '75' }))).toBe(false);
    expect(tookShortcut(await ok({ SYNC_FILTERS_FILE: filters, SYNC_MAX_DELETE: '75' }))).toBe(true);
    // An access check file that is not there: the gate stops the run, shortcut or not.
    expectSafetyStop(await sb.run({ ...backendRunEnv(), SYNC_FILTERS_FILE: filters, SYNC_MAX_DELETE: '75', SYNC_CHECK_ACCESS: 'true' }), 'check-access');
    // Other filters, with the listings as they were: the filters-changed stop.
    await writeFile(filters, '- *.tmp\n- *.log\n');
    expectSafetyStop(await sb.run({ ...backendRunEnv(), SYNC_FILTERS_FILE: filters, SYNC_MAX_DELETE: '75' }), 'filters-changed');
  });

  it('after it, a change batch reads only the folders that changed, and carries each change', { timeout: 240_000 }, async () => {
    const tree = treeOf(12, 20);
    await writeTree(sb.path1, tree);
    await ok();
    await ok();
    expect(tookShortcut(await ok())).toBe(true);
    const side2 = currentBackend().side2;

    // One side only: path2 holds the last run's blocks and is not read at all.
    await writeTreeFile(sb.path1, 'd3/f1.txt', 'edited on path1, longer than it was');
    const oneSide = await ok();
    expect(readInPart(oneSide)).toEqual(['path1', 'path2']);
    expect(copiesOf(oneSide.logs).map((l) => `${l.from}:${l.path}`)).toEqual(['path1:d3/f1.txt']);
    expectNothingDone(await ok());
    expect(tookShortcut(await ok())).toBe(true);

    // A batch on both sides: edits, deletions, a folder emptied, new files and folders, a file
    // moved to another folder, and a conflict.
    await writeTreeFile(sb.path1, 'd4/f2.txt', 'edited on path1');
    await removeFile(sb.path1, 'd5/f3.txt');
    for (let f = 0; f < 20; f++) await removeFile(sb.path1, `d6/f${f}.txt`);
    await writeTreeFile(sb.path1, 'new/deep/er.txt', 'a new folder two down');
    // s3rver leaves a prefix that holds only prefixes out of its listings (backends.ts): not a file of ours.
    await writeTreeFile(sb.path1, 'new/here.txt', 'beside it');
    await rename(join(sb.path1, 'd7/f7.txt'), join(sb.path1, 'd1/sub/moved.txt'));
    await writeTreeFile(sb.path1, 'd8/f8.txt', 'path1 changed it');
    await side2.writeTree({ 'd8/f8.txt': 'path2 changed it, too', 'd9/f0.txt': 'edited on path2', 'd9/added.txt': 'new on path2' });
    await side2.remove(['d10/f10.txt']);
    const batch = await ok();
    expect(readInPart(batch)).toEqual(['path1', 'path2']);
    const done = actionsOf(batch.logs).map((l) => `${String(l.action)}:${String(l.path)}`).sort();
    expect(done).toEqual(
      [
        'conflict:d8/f8.txt',
        'copy:d4/f2.txt',
        'copy:d9/added.txt',
        'copy:d9/f0.txt',
        'copy:new/deep/er.txt',
        'copy:new/here.txt',
        'delete:d10/f10.txt',
        'delete:d5/f3.txt',
        ...Array.from({ length: 20 }, (_, f) => `delete:d6/f${f}.txt`),
        'move:d1/sub/moved.txt',
      ].sort(),
    );
    const one = await readTree(sb.path1);
    const two = await side2.readTree();
    expect(one).toEqual(two);
    for (const path of ['d5/f3.txt', 'd7/f7.txt', 'd10/f10.txt', 'd6/f0.txt']) expect(one[path]).toBeUndefined();
    expect(one['d4/f2.txt']).toBe('edited on path1');
    expect(one['d9/f0.txt']).toBe('edited on path2');
    expect(one['new/deep/er.txt']).toBe('a new folder two down');
    expect(one['d1/sub/moved.txt']).toBe(tree['d7/f7.txt']);
    expect(Object.values(one).filter((text) => text.startsWith('path1 changed it') || text.startsWith('path2 changed it, too'))).toHaveLength(2);
    expect(one['d0/f0.txt']).toBe(tree['d0/f0.txt']);
    // Gone: d5/f3, d6's 20, d7/f7, d10/f10; come: new/deep/er, new/here, d1/sub/moved, d9/added, a conflict copy.
    expect(Object.keys(one)).toHaveLength(Object.keys(tree).length - 23 + 5);
    // What it committed is right: the next run finds nothing to do, and the one after takes the
    // shortcut. On S3 one run later: d6 went from the bucket with its last file, but the snapshot
    // keeps the folders a run listed (a bucket can hold a folder marker), so the next run's folders
    // differ from it and are committed.
    expectNothingDone(await ok());
    if (kind === 's3') expectNothingDone(await ok());
    expect(tookShortcut(await ok())).toBe(true);
  });
});
