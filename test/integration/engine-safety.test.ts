/**
 * The safety gates end to end: each stops the run with exit 3 before anything changes, says why in
 * the log, and lets the run through once a person has said so (SYNC_FORCE, SYNC_RESYNC) or fixed
 * the cause. Also: filters are honoured both ways.
 */
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionsOf, expectSafetyStop, summaryOf } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { digestTree, listFiles, readTree, removeFile, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-safety-');


const FOUR = { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'sub/d.txt': 'd' };

describe('max-delete', () => {
  it('stops a run that would delete more than SYNC_MAX_DELETE percent, deleting nothing; SYNC_FORCE lets it through', async () => {
    await writeTree(sb.path1, FOUR);
    await ok();
    for (const p of ['a.txt', 'b.txt', 'c.txt']) await removeFile(sb.path1, p);
    const before2 = await digestTree(sb.path2);

    const stopped = await sb.run({ SYNC_MAX_DELETE: '50' });
    expectSafetyStop(stopped, 'max-delete', /delete 3 of 4 files \(75\.0%\) on path2.*SYNC_FORCE=true/);
    expect(await digestTree(sb.path2)).toEqual(before2);

    // The default (50%) stops it too, and again on the next try: the gate does not wear off.
    expectSafetyStop(await sb.run(), 'max-delete');
    expect(await digestTree(sb.path2)).toEqual(before2);

    // SYNC_FORCE lets it through, once.
    const forced = await ok({ SYNC_FORCE: 'true' });
    expect(summaryOf(forced.logs)).toMatchObject({ deletesOnPath2: 3 });
    expect(await readTree(sb.path2)).toEqual({ 'sub/d.txt': 'd' });
  });

  it('lets a deletion within the limit through', async () => {
    await writeTree(sb.path1, FOUR);
    await ok();
    await removeFile(sb.path2, 'a.txt');
    await ok({ SYNC_MAX_DELETE: '25' });
    expect(await readTree(sb.path1)).toEqual({ 'b.txt': 'b', 'c.txt': 'c', 'sub/d.txt': 'd' });
  });
});

describe('check-access', () => {
  it('stops when the check file is missing on one side, passes when both have it at the same paths', async () => {
    await writeTree(sb.path1, { 'RCLONE_TEST': 'check', 'sub/RCLONE_TEST': 'check', 'data.txt': 'd' });
    await writeTree(sb.path2, { 'RCLONE_TEST': 'check', 'other.txt': 'o' });
    // First run (a resync) with the check on: sub/RCLONE_TEST only on path1.
    const stopped = await sb.run({ SYNC_CHECK_ACCESS: 'true' });
    expectSafetyStop(stopped, 'check-access', /only on path1: sub\/RCLONE_TEST/);
    expect(await listFiles(sb.path2)).toEqual(['RCLONE_TEST', 'other.txt']);
    expect(await listFiles(sb.path1)).toEqual(['RCLONE_TEST', 'data.txt', 'sub/RCLONE_TEST']);

    await writeTreeFile(sb.path2, 'sub/RCLONE_TEST', 'check');
    await ok({ SYNC_CHECK_ACCESS: 'true' });
    expect(await readTree(sb.path1)).toEqual(await readTree(sb.path2));

    // Later, one side loses its check file (an unmounted folder would): stop, change nothing.
    await removeFile(sb.path2, 'sub/RCLONE_TEST');
    await writeTreeFile(sb.path1, 'new.txt', 'n');
    expectSafetyStop(await sb.run({ SYNC_CHECK_ACCESS: 'true', SYNC_MAX_DELETE: '100' }), 'check-access', /only on path1/);
    expect(await listFiles(sb.path2)).not.toContain('new.txt');
    expect(await listFiles(sb.path1)).toContain('sub/RCLONE_TEST');
  });

  it('stops when neither side has a check file', async () => {
    await writeTree(sb.path1, { 'data.txt': 'd' });
    expectSafetyStop(await sb.run({ SYNC_CHECK_ACCESS: 'true' }), 'check-access', /no RCLONE_TEST file on either side/);
    expect(await listFiles(sb.path2)).toEqual([]);
  });

  it('uses SYNC_CHECK_FILENAME', async () => {
    await writeTree(sb.path1, { 'RCLONE_TEST': 'x', '.sync-ok': 'x', 'data.txt': 'd' });
    await writeTree(sb.path2, { 'RCLONE_TEST': 'x' });
    expectSafetyStop(await sb.run({ SYNC_CHECK_ACCESS: 'true', SYNC_CHECK_FILENAME: '.sync-ok' }), 'check-access', /\.sync-ok/);
    expect(await listFiles(sb.path2)).toEqual(['RCLONE_TEST']);
    await writeTreeFile(sb.path2, '.sync-ok', 'x');
    await ok({ SYNC_CHECK_ACCESS: 'true', SYNC_CHECK_FILENAME: '.sync-ok' });
    expect(await readTree(sb.path2)).toEqual({ '.sync-ok': 'x', 'RCLONE_TEST': 'x', 'data.txt': 'd' });
  });
});

describe('a side that vanished', () => {
  it('stops when a side folder was removed after a successful run, deleting nothing on the other side', async () => {
    await writeTree(sb.path1, FOUR);
    await ok();
    await rm(sb.path1, { recursive: true });
    const before2 = await digestTree(sb.path2);
    const stopped = await sb.run({ SYNC_MAX_DELETE: '100', SYNC_FORCE: 'true' });
    expectSafetyStop(stopped, 'side-missing', /path1 .* is missing but had 4 files.*SYNC_RESYNC=true/);
    expect(await digestTree(sb.path2)).toEqual(before2);
  });
  // An emptied side: engine-scenarios.test.ts, on every backend.
});

describe('filters', () => {
  it('honours the filters: excluded files are neither synced nor deleted', async () => {
    const filters = join(sb.scratch, 'filters.txt');
    await writeFile(filters, '- *.tmp\n- cache/**\n');
    await writeTree(sb.path1, { 'keep.txt': 'k', 'scratch.tmp': 'p1 temp', 'cache/big.bin': 'c1' });
    await writeTree(sb.path2, { 'other.txt': 'o', 'local.tmp': 'p2 temp' });
    await ok({ SYNC_FILTERS_FILE: filters });
    expect(await readTree(sb.path1)).toEqual({ 'keep.txt': 'k', 'other.txt': 'o', 'scratch.tmp': 'p1 temp', 'cache/big.bin': 'c1' });
    expect(await readTree(sb.path2)).toEqual({ 'keep.txt': 'k', 'other.txt': 'o', 'local.tmp': 'p2 temp' });

    // Deleting everything included on path1 deletes it on path2, and only that.
    await removeFile(sb.path1, 'keep.txt');
    await removeFile(sb.path1, 'scratch.tmp');
    const result = await ok({ SYNC_FILTERS_FILE: filters, SYNC_MAX_DELETE: '100' });
    expect(actionsOf(result.logs).map((l) => `${l.action}:${l.path}`)).toEqual(['delete:keep.txt']);
    expect(await readTree(sb.path1)).toEqual({ 'other.txt': 'o', 'cache/big.bin': 'c1' });
    expect(await readTree(sb.path2)).toEqual({ 'other.txt': 'o', 'local.tmp': 'p2 temp' });
  });

  it('stops when the filters file changed, until a run with SYNC_RESYNC=true', async () => {
    const filters = join(sb.scratch, 'filters.txt');
    await writeFile(filters, '- *.tmp\n');
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.log': 'log', 'c.tmp': 't' });
    await ok({ SYNC_FILTERS_FILE: filters });
    expect(await listFiles(sb.path2)).toEqual(['a.txt', 'b.log']);

    await writeFile(filters, '- *.tmp\n- *.log\n');
    const before1 = await digestTree(sb.path1);
    const before2 = await digestTree(sb.path2);
    expectSafetyStop(await sb.run({ SYNC_FILTERS_FILE: filters }), 'filters-changed', /SYNC_RESYNC=true/);
    expectSafetyStop(await sb.run({ SYNC_FILTERS_FILE: filters }), 'filters-changed');
    // Dropping the filters altogether is a change too.
    expectSafetyStop(await sb.run(), 'filters-changed');
    expect(await digestTree(sb.path1)).toEqual(before1);
    expect(await digestTree(sb.path2)).toEqual(before2);

    await ok({ SYNC_FILTERS_FILE: filters, SYNC_RESYNC: 'true' });
    // b.log is now excluded: it stays where it is (a resync deletes nothing) and is left alone.
    await removeFile(sb.path1, 'b.log');
    await writeTreeFile(sb.path1, 'd.txt', 'd');
    const after = await ok({ SYNC_FILTERS_FILE: filters, SYNC_MAX_DELETE: '100' });
    expect(actionsOf(after.logs).map((l) => `${l.action}:${l.path}`)).toEqual(['copy:d.txt']);
    expect(await listFiles(sb.path2)).toEqual(['a.txt', 'b.log', 'd.txt']);
  });
});

describe('a damaged snapshot', () => {
  it.each([
    { how: 'truncated mid-file', cut: (size: number) => Math.floor(size / 2) },
    { how: 'truncated to nothing', cut: () => 0 },
  ])('$how: exit 3 asking for a resync; the resync recovers', async ({ cut }) => {
    await writeTree(sb.path1, FOUR);
    await writeTree(sb.path2, { 'e.txt': 'e' });
    await ok();
    const snapshot = join(await sb.pairDir(), 'snapshot.jsonl');
    const size = (await readFile(snapshot)).length;
    await truncate(snapshot, cut(size));
    // Something changed meanwhile; nothing may move while the state is unreadable.
    await removeFile(sb.path1, 'a.txt');
    await writeTreeFile(sb.path2, 'f.txt', 'f');
    const before1 = await digestTree(sb.path1);
    const before2 = await digestTree(sb.path2);

    const stopped = await sb.run({ SYNC_MAX_DELETE: '100' });
    expectSafetyStop(stopped, 'state-corrupt', /snapshot.*unreadable.*SYNC_RESYNC=true/);
    expect(await digestTree(sb.path1)).toEqual(before1);
    expect(await digestTree(sb.path2)).toEqual(before2);
    expectSafetyStop(await sb.run(), 'state-corrupt');

    await ok({ SYNC_RESYNC: 'true' });
    // A resync deletes nothing: a.txt comes back from path2.
    const merged = { ...FOUR, 'e.txt': 'e', 'f.txt': 'f' };
    expect(await readTree(sb.path1)).toEqual(merged);
    expect(await readTree(sb.path2)).toEqual(merged);
    const next = await ok();
    expect(actionsOf(next.logs)).toEqual([]);
  });
});
