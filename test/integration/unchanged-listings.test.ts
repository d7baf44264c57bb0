/**
 * The no-change shortcut (listing-blocks.ts, listing-digests.ts): a run whose listings hold exactly
 * the folder blocks of the last run's, which changed nothing, reads neither the listings nor the
 * snapshot. What must hold: it is taken only then (a changed file, a changed setting, another
 * filters file each make a run read everything), and a side found unchanged is still read whole
 * when the other side changed, whichever side's listing ends first.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS, backendDetail, backendRunEnv, currentBackend, useBackend } from '../helpers/backends.ts';
import { copiesOf, deletesOf, expectSafetyStop, summaryOf, tookShortcut } from '../helpers/logs.ts';
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
});
