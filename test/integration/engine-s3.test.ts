/**
 * The engine against S3 semantics: s3rver (an S3 server in Node) on loopback, reached through a
 * remote defined only by RCLONE_CONFIG_<NAME>_* variables (TYPE=s3, PROVIDER=Other, ENDPOINT, keys,
 * FORCE_PATH_STYLE), with RCLONE_CONFIG pointing at a file that does not exist. path1 is a local
 * folder, path2 `<remote>:<bucket>/<prefix>`, a prefix of its own per test. The remote side is read
 * and changed through the S3 API (rclone), not behind the server's back.
 *
 * What differs from a file system: no directories (a "folder" is a key prefix, gone with its last
 * object), modtimes kept by rclone in object metadata (nanoseconds) and changed by a server-side
 * copy, md5 as the ETag, renames as copy + delete, and no way to tell an empty prefix from a
 * missing one (only a missing bucket is "missing").
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nsOf } from '../helpers/backends.ts';
import { actionsOf, copiesOf, deletesOf, expectSafetyStop, failureOf, summaryOf } from '../helpers/logs.ts';
import { cleanEnv, dump, type Env, runCli } from '../helpers/processes.ts';
import { type S3Server, startS3Server } from '../helpers/remotes/s3-server.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import {
  digestTree,
  listFiles,
  minutesAgo,
  readTree,
  removeFile,
  statTree,
  TRASH_FOLDER,
  writeTree,
  writeTreeFile,
} from '../helpers/trees.ts';

const REMOTE = 'its3';
let server: S3Server;
beforeAll(async () => {
  server = await startS3Server({ remoteName: REMOTE, bucket: 'rclonesync-it' });
});
afterAll(async () => {
  await server?.stop();
});

/** This test's prefix in the bucket, and the environment that points path2 at it. */
let prefix: string;
let remoteEnv: Env;
const { sandbox: sb, ok } = useSandbox('rs-s3-', { runEnv: () => remoteEnv, failureDetail: () => `--- s3rver ---\n${server.log().slice(-4000)}` });
let counter = 0;
beforeEach(() => {
  prefix = `pair-${++counter}`;
  remoteEnv = { ...server.clientEnv(), SYNC_PATH2: server.remote(prefix) };
});

const remoteTree = () => server.readTree(prefix);



const snapshotBytes = async () => readFile(join(await sb.pairDir(), 'snapshot.jsonl'));

describe('s3 remote configured only through RCLONE_CONFIG_* variables', () => {
  it('the environment defines the remote, no config file exists, and no AWS_* variable of ours reaches rclone', async () => {
    const env = sb.env(remoteEnv);
    expect(env.RCLONE_CONFIG).toMatch(/no-rclone\.conf$/);
    await expect(readFile(env.RCLONE_CONFIG!)).rejects.toMatchObject({ code: 'ENOENT' });
    const prefixVars = `RCLONE_CONFIG_${REMOTE.toUpperCase()}_`;
    expect(Object.entries(remoteEnv).filter(([k]) => k.startsWith(prefixVars))).toEqual(
      expect.arrayContaining([
        [`${prefixVars}TYPE`, 's3'],
        [`${prefixVars}PROVIDER`, 'Other'],
        [`${prefixVars}ENDPOINT`, `http://127.0.0.1:${server.port}`],
        [`${prefixVars}ACCESS_KEY_ID`, 'S3RVER'],
        [`${prefixVars}SECRET_ACCESS_KEY`, 'S3RVER'],
        [`${prefixVars}FORCE_PATH_STYLE`, 'true'],
      ]),
    );
    expect(Object.keys(remoteEnv).filter((k) => k.startsWith(prefixVars))).toHaveLength(6);
    // e.g. AWS_CA_BUNDLE, which breaks every call of rclone 1.60's AWS SDK: the CLI (and so rclone) sees none.
    expect(Object.keys(cleanEnv(env)).filter((k) => k.startsWith('AWS_'))).toEqual([]);
    expect(remoteEnv.SYNC_PATH2).toBe(`${REMOTE}:rclonesync-it/${prefix}`);
  });

  it('a touched file (same content, new modtime) on one side only is carried over S3 without a content check, and keeps its bytes', async () => {
    await writeTree(sb.path1, { 'same.txt': 'unchanged bytes', 'other.txt': 'o' });
    await ok();
    const objects = await server.list(prefix);
    const touchedAt = minutesAgo(1, { wholeSeconds: true });
    await writeTreeFile(sb.path1, 'same.txt', 'unchanged bytes', touchedAt);

    const result = await ok();
    // Changed on one side only, times apart: copied whatever the contents, so they are not compared first.
    expect(result.logs.find((l) => /comparing contents/.test(l.msg))).toBeUndefined();
    // The sides must not keep different times forever (issue 6 item 10): the time is carried, the bytes are the same.
    expect(copiesOf(result.logs).map((l) => l.path), dump(result)).toEqual(['same.txt']);
    const after = await server.list(prefix);
    expect(after['same.txt']!.md5).toBe(objects['same.txt']!.md5);
    expect(Date.parse(after['same.txt']!.modTime)).toBe(touchedAt.getTime());
    expect(after['other.txt']).toEqual(objects['other.txt']);
    // The next run neither checks nor copies.
    const next = await ok();
    expect(next.logs.find((l) => /comparing contents/.test(l.msg))).toBeUndefined();
    expect(actionsOf(next.logs)).toEqual([]);
  });

  it('tricky names survive both ways: spaces, #, unicode (NFC and NFD apart), brackets, URL-significant characters', async () => {
    const nfc = 'caf\u00e9.txt';
    const nfd = 'cafe\u0301.txt';
    const fromLocal = {
      'with space.txt': 'l1',
      '#leading hash.txt': 'l2',
      'dir with space/[brackets] (parens) {braces}.txt': 'l3',
      [nfc]: 'nfc',
      [nfd]: 'nfd',
      'plus+and%20percent.txt': 'l4',
      'q?mark&amp=eq;semi.txt': 'l5',
      ' leading and trailing space .txt': 'l6',
    };
    const fromRemote = {
      'Ünïcödé/日本語 ファイル.txt': 'r1',
      'emoji 🎉/star*quote\'s "dq".txt': 'r2',
      '#dir/#file#.txt': 'r3',
      'back\\slash~tilde`tick.txt': 'r4',
    };
    await writeTree(sb.path1, fromLocal);
    await server.writeTree(prefix, fromRemote);

    const first = await ok();
    expect(summaryOf(first.logs)).toMatchObject({ copiesToPath1: 4, copiesToPath2: 8 });
    const all = { ...fromLocal, ...fromRemote };
    expect(await readTree(sb.path1)).toEqual(all);
    expect(await remoteTree()).toEqual(all);
    expect(Object.keys(await server.list(prefix)).sort()).toEqual(Object.keys(all).sort());
    expect(actionsOf((await ok()).logs)).toEqual([]);

    // Changes to such names travel too.
    await writeTreeFile(sb.path1, nfd, 'nfd edited', minutesAgo(2));
    await server.writeTree(prefix, { '#dir/#file#.txt': 'r3 edited' }, minutesAgo(2));
    await server.deleteFiles(prefix, ['emoji 🎉/star*quote\'s "dq".txt']);
    await removeFile(sb.path1, 'q?mark&amp=eq;semi.txt');
    // The trash is off here: s3rver decodes a server-side copy's source with decodeURI, which
    // leaves %3F %26 %3D %3B encoded, so it cannot copy (hence trash) "q?mark&amp=eq;semi.txt".
    // Real S3 can; the trash on S3 is tested with plainer names.
    const changed = await ok({ SYNC_MAX_DELETE: '100', SYNC_TRASH_DAYS: '0' });
    expect(actionsOf(changed.logs).map((l) => `${l.action}:${l.path}`).sort()).toEqual(
      [`copy:${nfd}`, 'copy:#dir/#file#.txt', 'delete:emoji 🎉/star*quote\'s "dq".txt', 'delete:q?mark&amp=eq;semi.txt'].sort(),
    );
    const after = { ...all, [nfd]: 'nfd edited', '#dir/#file#.txt': 'r3 edited' } as Record<string, string>;
    delete after['emoji 🎉/star*quote\'s "dq".txt'];
    delete after['q?mark&amp=eq;semi.txt'];
    expect(await readTree(sb.path1)).toEqual(after);
    expect(await remoteTree()).toEqual(after);
  });

  it('objects from other S3 clients: no rclone mtime metadata (LastModified stands in), and folder markers are no files', async () => {
    await writeTree(sb.path1, { 'keep.txt': 'k' });
    await ok();
    await server.putObject(prefix, 'upload.txt', 'uploaded by another client');
    await server.putObject(prefix, 'folder/', '');
    await server.putObject(prefix, 'folder/inside.txt', 'in a folder with a marker');
    await server.putObject(prefix, 'empty-folder/', '');

    const result = await ok();
    expect(copiesOf(result.logs).map((l) => `${l.from}:${l.path}`).sort()).toEqual(['path2:folder/inside.txt', 'path2:upload.txt']);
    expect(await readTree(sb.path1)).toEqual({ 'keep.txt': 'k', 'folder/inside.txt': 'in a folder with a marker', 'upload.txt': 'uploaded by another client' });
    // The local copy took the object's LastModified (whole seconds), and that is stable: nothing moves again.
    const objects = await server.list(prefix);
    expect(objects['upload.txt']!.modTime).toMatch(/T\d\d:\d\d:\d\d(\.0+)?Z$/);
    expect((await statTree(sb.path1))['upload.txt']!.mtimeNs).toBe(nsOf(objects['upload.txt']!.modTime));
    expect(actionsOf((await ok()).logs)).toEqual([]);

    // Deleting the file under a marker locally deletes that object; the markers stay, still no files.
    await removeFile(sb.path1, 'folder/inside.txt');
    const deleted = await ok({ SYNC_MAX_DELETE: '100' });
    expect(deletesOf(deleted.logs).map((l) => `${l.side}:${l.path}`)).toEqual(['path2:folder/inside.txt']);
    expect(Object.keys(await server.list(prefix)).sort()).toEqual(['keep.txt', 'upload.txt']);
    // (rclone 1.60's recursive listings skip marker objects; a listing of one level shows them as folders.)
    const top = await server.rclone(['lsjson', '--dirs-only', server.remote(prefix)]);
    expect((JSON.parse(top.stdout) as { Path: string }[]).map((d) => d.Path).sort(), top.stderr).toEqual(['empty-folder', 'folder']);
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('a deleted "directory" (every object under a prefix) propagates, and only that prefix', async () => {
    const tree = {
      'photos/2024/a.jpg': 'a',
      'photos/2024/b.jpg': 'b',
      'photos/x.jpg': 'x',
      'photos-old/y.jpg': 'y',
      'photos.txt': 'p',
      'docs/d1.txt': 'd1',
      'docs/sub/d2.txt': 'd2',
      'keep.txt': 'k',
    };
    await writeTree(sb.path1, tree);
    await ok();

    // On S3: delete every object under photos/ (there is no directory to remove).
    await server.deleteFiles(prefix, ['photos/2024/a.jpg', 'photos/2024/b.jpg', 'photos/x.jpg']);
    const fromS3 = await ok({ SYNC_MAX_DELETE: '100' });
    expect(deletesOf(fromS3.logs).map((l) => `${l.side}:${l.path}`).sort()).toEqual(['path1:photos/2024/a.jpg', 'path1:photos/2024/b.jpg', 'path1:photos/x.jpg']);
    expect(await listFiles(sb.path1)).toEqual(['docs/d1.txt', 'docs/sub/d2.txt', 'keep.txt', 'photos-old/y.jpg', 'photos.txt']);

    // Locally: remove a whole folder; its objects go, the prefix with them.
    await rm(join(sb.path1, 'docs'), { recursive: true });
    const fromLocal = await ok({ SYNC_MAX_DELETE: '100' });
    expect(deletesOf(fromLocal.logs).map((l) => `${l.side}:${l.path}`).sort()).toEqual(['path2:docs/d1.txt', 'path2:docs/sub/d2.txt']);
    expect(await remoteTree()).toEqual({ 'keep.txt': 'k', 'photos-old/y.jpg': 'y', 'photos.txt': 'p' });
    expect(await listFiles(server.storeDir(`${prefix}/docs`))).toEqual([]);
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });
});

describe('safety gates against S3', () => {
  const FOUR = { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'sub/d.txt': 'd' };

  it('a deleted bucket is a missing side: the run stops, deleting nothing locally', async () => {
    const bucket = `rs-vanishing-${counter}`;
    expect((await server.rclone(['mkdir', `${REMOTE}:${bucket}`])).exitCode).toBe(0);
    const env = { ...remoteEnv, SYNC_PATH2: `${REMOTE}:${bucket}/${prefix}` };
    await writeTree(sb.path1, FOUR);
    await ok(env);
    const purged = await server.rclone(['purge', `${REMOTE}:${bucket}`]);
    expect(purged.exitCode, purged.stderr).toBe(0);
    const before1 = await digestTree(sb.path1);

    expectSafetyStop(await sb.run({ ...env, SYNC_MAX_DELETE: '100', SYNC_FORCE: 'true' }), 'side-missing', /path2 .* is missing but had 4 files/);
    expect(await digestTree(sb.path1)).toEqual(before1);
  });

  it('a key that is also a prefix ("x" and "x/y.txt", legal on S3) cannot be mirrored locally: exit 1 naming it, nothing deleted, the rest keeps syncing', async () => {
    await writeTree(sb.path1, { 'keep.txt': 'k' });
    await ok();
    // (No local folder can hold both, so not uploaded from one.)
    await server.putObject(prefix, 'x', 'a file named x');
    await server.putObject(prefix, 'x/y.txt', 'a file under x/');
    await server.putObject(prefix, 'other.txt', 'o');
    const objects = await server.list(prefix);

    // rclone's `copy --files-from-raw --no-traverse` skips x/y.txt without an error (exit 0) once x is
    // a file; the engine's relisting of what it wrote catches that.
    const failed = await sb.run(remoteEnv);
    expect(failed.exitCode, dump(failed)).toBe(1);
    expect(failureOf(failed.logs), dump(failed)).toMatchObject({ outcome: 'failed' });
    expect(failureOf(failed.logs)!.msg).toMatch(/x\/y\.txt/);
    expect(await readTree(sb.path1)).toEqual({ 'keep.txt': 'k', 'other.txt': 'o', 'x': 'a file named x' });
    expect(await server.list(prefix)).toEqual(objects);

    // It does not clear up by itself and still deletes nothing; but what was done is recorded, so
    // only the impossible file is tried again.
    const again = await sb.run(remoteEnv);
    expect(again.exitCode, dump(again)).toBe(1);
    expect(copiesOf(again.logs).map((c) => c.path), dump(again)).toEqual(['x/y.txt']);
    expect(await server.list(prefix)).toEqual(objects);
    expect(await listFiles(sb.path1)).toEqual(['keep.txt', 'other.txt', 'x']);

    // Meanwhile the pair keeps syncing everything else, and a deletion is not undone by the
    // failing file (a run that recorded nothing would copy a.txt back from S3).
    await writeTree(sb.path1, { 'a.txt': 'new' });
    expect((await sb.run(remoteEnv)).exitCode).toBe(1);
    expect(Object.keys(await server.list(prefix))).toContain('a.txt');
    await rm(join(sb.path1, 'a.txt'));
    const deletion = await sb.run({ ...remoteEnv, SYNC_MAX_DELETE: '100' });
    expect(deletion.exitCode, dump(deletion)).toBe(1);
    expect(deletesOf(deletion.logs).map((d) => d.path), dump(deletion)).toEqual(['a.txt']);
    expect(await listFiles(sb.path1)).toEqual(['keep.txt', 'other.txt', 'x']);
    expect(Object.keys(await server.list(prefix))).not.toContain('a.txt');
  });

  it('the server stopped: exit 1, nothing changed, the snapshot untouched; once it is back the next run carries the change', async () => {
    // A server of its own (the shared one stays up for the other tests), keeping its objects in the sandbox.
    const dataDir = join(sb.scratch, 's3-data');
    await mkdir(dataDir);
    let own = await startS3Server({ remoteName: REMOTE, bucket: 'stopping', dataDir });
    try {
      const fast = { RCLONE_LOW_LEVEL_RETRIES: '1', RCLONE_RETRIES: '1' };
      const envOf = (s: S3Server) => ({ ...s.clientEnv(), SYNC_PATH2: s.remote(prefix), ...fast });
      await writeTree(sb.path1, FOUR);
      await ok(envOf(own));
      const snapshot = await snapshotBytes();
      const remoteBefore = await own.readTree(prefix);

      await own.stop();
      await writeTreeFile(sb.path1, 'new.txt', 'made while the server was down');
      await removeFile(sb.path1, 'a.txt');
      const before1 = await digestTree(sb.path1);
      const failed = await sb.run(envOf(own));
      expect(failed.exitCode, dump(failed)).toBe(1);
      expect(failureOf(failed.logs), dump(failed)).toMatchObject({ outcome: 'failed' });
      expect(failureOf(failed.logs)!.msg).toMatch(/connection refused/);
      expect(summaryOf(failed.logs)).toMatchObject({ outcome: 'failed', exitCode: 1 });
      expect(failed.durationMs).toBeLessThan(15_000);
      expect(await snapshotBytes()).toEqual(snapshot);
      expect(await digestTree(sb.path1)).toEqual(before1);

      // The same objects served again (on another port: the remote's endpoint changes, its name and path do not).
      own = await startS3Server({ remoteName: REMOTE, bucket: 'stopping', dataDir });
      expect(await own.readTree(prefix)).toEqual(remoteBefore);
      const recovered = await ok(envOf(own));
      expect(actionsOf(recovered.logs).map((l) => `${l.action}:${l.path}`).sort()).toEqual(['copy:new.txt', 'delete:a.txt']);
      expect(await own.readTree(prefix)).toEqual(await readTree(sb.path1));
    } finally {
      await own.stop();
    }
  });
});

describe('the trash on S3 (a move is a server-side copy plus delete; folders do not exist)', () => {
  const STAMP = /^\d{8}T\d{6}Z$/;
  const trashTree = () => server.readTree(`${prefix}/${TRASH_FOLDER}`);

  it('a carried deletion and an overwritten version go to the trash prefix; retention purges by stamp; restore brings one back', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b v1', 'dir/c.txt': 'c', 'keep.txt': 'k' });
    await ok();
    await server.writeTree(prefix, { [`${TRASH_FOLDER}/20200101T000000Z/expired.txt`]: 'old run', [`${TRASH_FOLDER}/not-a-stamp/mine.txt`]: 'mine' });
    await removeFile(sb.path1, 'a.txt');
    await removeFile(sb.path1, 'dir/c.txt');
    await writeTreeFile(sb.path1, 'b.txt', 'b v2', minutesAgo(1));
    const run = await ok({ SYNC_MAX_DELETE: '100' });
    expect(summaryOf(run.logs)).toMatchObject({ trashedOnPath2: 3 });
    expect(await remoteTree()).toEqual({ 'b.txt': 'b v2', 'keep.txt': 'k' });
    const trash = await trashTree();
    const stamps = [...new Set(Object.keys(trash).map((p) => p.split('/')[0]!))].sort();
    expect(stamps).toHaveLength(2);
    const [own, other] = [stamps.find((s) => STAMP.test(s))!, stamps.find((s) => !STAMP.test(s))];
    expect(other).toBe('not-a-stamp');
    expect(trash).toEqual({ [`${own}/a.txt`]: 'a', [`${own}/b.txt`]: 'b v1', [`${own}/dir/c.txt`]: 'c', 'not-a-stamp/mine.txt': 'mine' });
    // The trash never reaches the other side, and the next run has nothing to do.
    expect(actionsOf((await ok()).logs)).toEqual([]);

    const restored = await runCli(['trash', 'restore', 'dir/c.txt'], sb.env(remoteEnv));
    expect(restored.exitCode, dump(restored)).toBe(0);
    expect((await remoteTree())['dir/c.txt']).toBe('c');
    const carried = await ok();
    expect(copiesOf(carried.logs).map((l) => `${l.from}:${l.path}`)).toEqual(['path2:dir/c.txt']);
    expect(await readTree(sb.path1)).toEqual({ 'b.txt': 'b v2', 'keep.txt': 'k', 'dir/c.txt': 'c' });
  });
});
