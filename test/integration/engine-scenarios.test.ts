/**
 * The engine's everyday scenarios, written once and run on every backend path2 can be (local
 * folder, SFTP, S3; see helpers/backends.ts): the first run's merge and a quiet second run, one-sided
 * changes both ways, a conflict, checksum comparison, `status`, and the two safety gates a remote
 * side trips most (most files deleted over there, everything gone over there).
 *
 * path1 is always a local folder. path2 is read and changed only the way its backend allows
 * (`side2`: on disk, or through the S3 API), and times are whole seconds, which every backend keeps
 * (SFTP keeps no more). What only one backend can show stays in that backend's own file:
 * engine-basics (local), engine-sftp, engine-s3.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS, backendDetail, backendRunEnv, currentBackend, useBackend, type BackendTraits } from '../helpers/backends.ts';
import { expectedTreeAfterConflict } from '../helpers/conflicts.ts';
import { actionsOf, conflictsOf, copiesOf, deletesOf, expectSafetyStop, summaryOf } from '../helpers/logs.ts';
import { dump, runCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { digestTree, minutesAgo, readTree, readTreeFile, removeFile, statTree, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-scenario-', { runEnv: backendRunEnv, failureDetail: backendDetail });

/** A time `minutes` ago, to the second: every backend keeps it unchanged. */
const at = (minutes: number) => minutesAgo(minutes, { wholeSeconds: true });
const side2 = () => currentBackend().side2;
const snapshotBytes = async () => readFile(join(await sb.pairDir(), 'snapshot.jsonl'));
const FOUR = { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'sub/d.txt': 'd' };

/** Both sides hold `tree`, and the pair has a snapshot of it (written on path1, then a run). */
async function synced(tree: Record<string, string>): Promise<void> {
  await writeTree(sb.path1, tree);
  await ok();
  expect(await side2().readTree()).toEqual(tree);
}

async function expectBothSides(tree: Record<string, string>): Promise<void> {
  expect(await readTree(sb.path1)).toEqual(tree);
  expect(await side2().readTree()).toEqual(tree);
}

describe.each(BACKENDS)('$name', (traits: BackendTraits) => {
  useBackend(traits.kind, () => sb.path2);

  /** The modification times of `paths` crossed over: the same on both sides, to the backend's precision. */
  async function expectModTimesCrossed(paths: readonly string[]): Promise<void> {
    const local = await statTree(sb.path1);
    const remote = await side2().modTimesNs();
    const atPrecision = (ns: string) => (BigInt(ns) / traits.precisionNs).toString();
    for (const path of paths) expect(atPrecision(remote[path]!), path).toBe(atPrecision(local[path]!.mtimeNs));
  }

  describe('first run and a quiet second run', () => {
    it('merges both sides without deleting anything, then a second run rewrites nothing, not even the snapshot', async () => {
      await writeTree(sb.path1, { 'a.txt': 'only on one', 'dir/b.txt': 'b from path1' });
      await side2().writeTree({ 'c.txt': 'only on two', 'dir/d.txt': 'd from path2', [traits.deepFile]: 'eee' });
      const when = at(10);
      await writeTree(sb.path1, { 'shared.txt': 'same on both' }, when);
      await side2().writeTree({ 'shared.txt': 'same on both' }, when);

      const first = await ok();
      expect(summaryOf(first.logs), dump(first)).toMatchObject({ outcome: 'success', resync: true, deletesOnPath1: 0, deletesOnPath2: 0, conflicts: 0, copiesToPath1: 3, copiesToPath2: 2 });
      expect(deletesOf(first.logs)).toEqual([]);
      const union = {
        'a.txt': 'only on one',
        'c.txt': 'only on two',
        [traits.deepFile]: 'eee',
        'dir/b.txt': 'b from path1',
        'dir/d.txt': 'd from path2',
        'shared.txt': 'same on both',
      };
      await expectBothSides(union);
      await expectModTimesCrossed(Object.keys(union));

      const before1 = await statTree(sb.path1);
      const before2 = await side2().fingerprint();
      const snapshot = await snapshotBytes();
      const second = await ok();
      expect(actionsOf(second.logs), dump(second)).toEqual([]);
      expect(summaryOf(second.logs)).toMatchObject({ resync: false, copiesToPath1: 0, copiesToPath2: 0, deletesOnPath1: 0, deletesOnPath2: 0, conflicts: 0 });
      // Nothing was rewritten: same inodes and nanosecond mtimes; on S3 not one object nor its metadata.
      expect(await statTree(sb.path1)).toEqual(before1);
      expect(await side2().fingerprint()).toEqual(before2);
      expect((await snapshotBytes()).equals(snapshot)).toBe(true);
    });
  });

  describe('one-sided changes', () => {
    it('propagates new, modified and deleted files from each side, with their modification times', async () => {
      await synced({ 'a.txt': 'a', 'b.txt': 'b', 'sub/c.txt': 'c', 'sub/d.txt': 'd', 'e.txt': 'e', 'f.txt': 'f' });

      const editedOn1 = at(3);
      const editedOn2 = at(2);
      await writeTreeFile(sb.path1, 'new/one.txt', 'created on path1');
      await writeTreeFile(sb.path1, 'a.txt', 'a modified on path1', editedOn1);
      await removeFile(sb.path1, 'sub/c.txt');
      // A new "folder" on path2 too: on S3 only a new key prefix.
      await side2().writeTree({ 'fresh/two.txt': 'created on path2' });
      await side2().writeTree({ 'b.txt': 'b modified on path2' }, editedOn2);
      await side2().remove(['sub/d.txt']);

      const result = await ok({ SYNC_MAX_DELETE: '100' });
      const expected = {
        'a.txt': 'a modified on path1',
        'b.txt': 'b modified on path2',
        'e.txt': 'e',
        'f.txt': 'f',
        'fresh/two.txt': 'created on path2',
        'new/one.txt': 'created on path1',
      };
      await expectBothSides(expected);
      const copies = copiesOf(result.logs).map((l) => `${l.from}:${l.path}:${l.reason}`).sort();
      expect(copies).toEqual(['path1:a.txt:modified', 'path1:new/one.txt:new', 'path2:b.txt:modified', 'path2:fresh/two.txt:new']);
      expect(deletesOf(result.logs).map((l) => `${l.side}:${l.path}`).sort()).toEqual(['path1:sub/d.txt', 'path2:sub/c.txt']);
      expect(conflictsOf(result.logs)).toEqual([]);
      expect(summaryOf(result.logs)).toMatchObject({ deletesOnPath1: 1, deletesOnPath2: 1 });

      await expectModTimesCrossed(Object.keys(expected));
      // (utimes takes float seconds: a millisecond time may land a few nanoseconds early.)
      const local = await statTree(sb.path1);
      expect(Math.abs(local['a.txt']!.mtimeMs - editedOn1.getTime())).toBeLessThanOrEqual(1);
      expect(Math.abs(local['b.txt']!.mtimeMs - editedOn2.getTime())).toBeLessThanOrEqual(1);

      // And the pair is settled: the next run has nothing to do.
      expect(actionsOf((await ok()).logs)).toEqual([]);
    });
  });

  describe('a conflict', () => {
    it.each(['none', 'newer'] as const)('keeps both versions on both sides (SYNC_CONFLICT_RESOLVE=%s)', async (resolve) => {
      await synced({ 'doc.txt': 'base', 'other.txt': 'o' });
      await writeTreeFile(sb.path1, 'doc.txt', 'local edit', at(20));
      await side2().writeTree({ 'doc.txt': 'remote edit, newer' }, at(10));

      const result = await ok({ SYNC_CONFLICT_RESOLVE: resolve });
      const [conflict, ...more] = conflictsOf(result.logs);
      expect(more).toEqual([]);
      const expected = expectedTreeAfterConflict(conflict, resolve, { path: 'doc.txt', local: 'local edit', remote: 'remote edit, newer' }, { 'other.txt': 'o' });
      await expectBothSides(expected);
      expect(actionsOf((await ok({ SYNC_CONFLICT_RESOLVE: resolve })).logs)).toEqual([]);
    });
  });

  describe('SYNC_COMPARE=checksum', () => {
    it(`uses a hash both sides have (${traits.checksumHash}) and sees same-size, same-mtime edits on either side`, async () => {
      const when = at(30);
      await writeTreeFile(sb.path1, 'data.txt', 'AAAA-original', when);
      await writeTreeFile(sb.path1, 'local.txt', 'LLLL-original', when);
      await ok({ SYNC_COMPARE: 'checksum' });
      const header = JSON.parse((await snapshotBytes()).toString('utf8').split('\n')[0]!) as { hashType?: string };
      expect(header).toMatchObject({ hashType: traits.checksumHash });
      expect(actionsOf((await ok({ SYNC_COMPARE: 'checksum' })).logs)).toEqual([]);

      // Other bytes of the same length, the same mtime: only the contents can tell.
      const before = (await statTree(sb.path1))['local.txt']!;
      await writeTreeFile(sb.path1, 'local.txt', 'MMMM-replaced', when);
      expect((await statTree(sb.path1))['local.txt']).toMatchObject({ size: before.size, mtimeNs: before.mtimeNs });
      await side2().writeTree({ 'data.txt': 'BBBB-replaced' }, when);

      const result = await ok({ SYNC_COMPARE: 'checksum' });
      expect(copiesOf(result.logs).map((l) => `${l.from}:${l.path}:${l.reason}`).sort()).toEqual(['path1:local.txt:modified', 'path2:data.txt:modified']);
      expect(await readTreeFile(sb.path1, 'data.txt')).toBe('BBBB-replaced');
      await expectBothSides({ 'data.txt': 'BBBB-replaced', 'local.txt': 'MMMM-replaced' });
      expect(actionsOf((await ok({ SYNC_COMPARE: 'checksum' })).logs)).toEqual([]);
    });
  });

  describe('status', () => {
    it('status --json lists the runs of the pair, and every pair of the state folder without one configured', async () => {
      await writeTree(sb.path1, { 'a.txt': 'a' });
      await ok();
      await side2().writeTree({ 'b.txt': 'b' });
      await ok();

      const status = await runCli(['status', '--json'], sb.env(backendRunEnv()));
      expect(status.exitCode, dump(status)).toBe(0);
      const parsed = JSON.parse(status.stdout) as { pairs: { pair: string; runs: Record<string, unknown>[] }[] };
      expect(parsed.pairs).toHaveLength(1);
      const runs = parsed.pairs[0]!.runs;
      expect(runs).toHaveLength(2);
      expect(runs[0]).toMatchObject({ outcome: 'success', exitCode: 0, resync: true, dryRun: false, counts: { copiesToPath2: 1, copiesToPath1: 0 } });
      expect(runs[1]).toMatchObject({ outcome: 'success', exitCode: 0, resync: false, counts: { copiesToPath1: 1, copiesToPath2: 0 } });
      expect(Date.parse(String(runs[1]!.startedAt))).toBeGreaterThanOrEqual(Date.parse(String(runs[0]!.startedAt)));
      expect(parsed.pairs[0]!.pair).toBe(basename(await sb.pairDir()));
      expect(parsed.pairs[0]!.pair).toMatch(traits.pairName);

      // Without a pair configured, status shows every pair in the state directory.
      const all = await runCli(['status', '--json'], { SYNC_STATE_DIR: sb.stateDir, LOG_FORMAT: 'json' });
      expect(all.exitCode, dump(all)).toBe(0);
      const allParsed = JSON.parse(all.stdout) as { pairs: { runs: unknown[] }[] };
      expect(allParsed.pairs).toHaveLength(1);
      expect(allParsed.pairs[0]!.runs).toHaveLength(2);
    });
  });

  describe('safety gates', () => {
    it('max-delete: most files deleted on path2 stops the run, deleting nothing on path1; SYNC_FORCE lets it through', async () => {
      await synced(FOUR);
      await side2().remove(['a.txt', 'b.txt', 'c.txt']);
      const before1 = await digestTree(sb.path1);
      const snapshot = await snapshotBytes();

      const stopped = await sb.run({ ...backendRunEnv(), SYNC_MAX_DELETE: '50' });
      expectSafetyStop(stopped, 'max-delete', /delete 3 of 4 files \(75\.0%\) on path1/);
      expect(await digestTree(sb.path1)).toEqual(before1);
      expect(await snapshotBytes()).toEqual(snapshot);

      const forced = await ok({ SYNC_FORCE: 'true' });
      expect(summaryOf(forced.logs)).toMatchObject({ deletesOnPath1: 3 });
      expect(await readTree(sb.path1)).toEqual({ 'sub/d.txt': 'd' });
    });

    // On S3 an emptied prefix and a missing one look the same (rclone lists both as empty).
    it('an emptied path2 stops the run, deleting nothing on path1 even with SYNC_FORCE; a resync restores it from path1', async () => {
      await side2().writeTree(FOUR);
      await ok();
      await side2().remove(Object.keys(FOUR));
      expect(await side2().readTree()).toEqual({});
      const before1 = await digestTree(sb.path1);
      const snapshot = await snapshotBytes();

      const stopped = await sb.run({ ...backendRunEnv(), SYNC_MAX_DELETE: '100', SYNC_FORCE: 'true' });
      expectSafetyStop(stopped, 'side-empty', /path2 .* is empty but had 4 files/);
      expect(await digestTree(sb.path1)).toEqual(before1);
      expect(await snapshotBytes()).toEqual(snapshot);
      expect(await side2().readTree()).toEqual({});

      await ok({ SYNC_RESYNC: 'true' });
      expect(await side2().readTree()).toEqual(FOUR);
    });
  });
});
