/**
 * The engine against a real network remote: `rclone serve sftp` on loopback, reached through a
 * remote defined only by RCLONE_CONFIG_<NAME>_* variables, with RCLONE_CONFIG pointing at a file
 * that does not exist. path1 is a local folder, path2 the remote; the remote's files are checked
 * directly in the folder the server serves.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectedTreeAfterConflict } from '../helpers/conflicts.ts';
import { actionsOf, conflictsOf, copiesOf, deletesOf, summaryOf } from '../helpers/logs.ts';
import { dump, runCli } from '../helpers/processes.ts';
import { type SftpServer, startSftpServer } from '../helpers/remotes/sftp-server.ts';
import { makeSandbox, type Sandbox, useSandbox } from '../helpers/sandbox.ts';
import { minutesAgo, readTree, readTreeFile, removeFile, setMtime, statTree, writeTree, writeTreeFile } from '../helpers/trees.ts';

let server: SftpServer;
let servedRoot: Sandbox;
beforeAll(async () => {
  servedRoot = await makeSandbox('rs-sftp-served-');
  server = await startSftpServer(servedRoot.root, { remoteName: 'itsftp' });
});
afterAll(async () => {
  await server?.stop();
  await servedRoot?.cleanup();
});

/** The folder the server serves for this test's path2. */
let remoteDir: string;
let remoteEnv: Record<string, string>;
const { sandbox: sb, ok } = useSandbox('rs-sftp-', { runEnv: () => remoteEnv, failureDetail: () => `--- server ---\n${server.log()}` });
let counter = 0;
beforeEach(async () => {
  const name = `pair-${++counter}`;
  remoteDir = join(servedRoot.root, name);
  await mkdir(remoteDir);
  remoteEnv = { ...server.clientEnv(), SYNC_PATH2: server.remote(name) };
});

/** sftp keeps modtimes to the second: whole-second times cross over unchanged. */
const toTheSecond = { wholeSeconds: true };

describe('sftp remote configured only through RCLONE_CONFIG_* variables', () => {
  it('the environment defines the remote, and no config file exists', async () => {
    const env = sb.env(remoteEnv);
    expect(env.RCLONE_CONFIG).toMatch(/no-rclone\.conf$/);
    await expect(readFile(env.RCLONE_CONFIG!)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(Object.keys(remoteEnv).filter((k) => k.startsWith('RCLONE_CONFIG_ITSFTP_')).sort()).toEqual(
      ['RCLONE_CONFIG_ITSFTP_HOST', 'RCLONE_CONFIG_ITSFTP_KEY_USE_AGENT', 'RCLONE_CONFIG_ITSFTP_PASS', 'RCLONE_CONFIG_ITSFTP_PORT', 'RCLONE_CONFIG_ITSFTP_TYPE', 'RCLONE_CONFIG_ITSFTP_USER'],
    );
    // The password is obscured, not in clear.
    expect(remoteEnv.RCLONE_CONFIG_ITSFTP_PASS).not.toMatch(/^pw-/);
  });

  it('first run merges both sides; a second run rewrites nothing', async () => {
    await writeTree(sb.path1, { 'local.txt': 'from local', 'dir/deep/l.txt': 'deep local', 'both.txt': 'same' });
    await writeTree(remoteDir, { 'remote.txt': 'from remote', 'dir/r.txt': 'remote in dir', 'both.txt': 'same' });
    await setMtime(sb.path1, 'both.txt', minutesAgo(10, toTheSecond));
    await setMtime(remoteDir, 'both.txt', minutesAgo(10, toTheSecond));

    const first = await ok();
    expect(summaryOf(first.logs)).toMatchObject({ resync: true, copiesToPath1: 2, copiesToPath2: 2, conflicts: 0, deletesOnPath1: 0, deletesOnPath2: 0 });
    const union = {
      'both.txt': 'same',
      'dir/deep/l.txt': 'deep local',
      'dir/r.txt': 'remote in dir',
      'local.txt': 'from local',
      'remote.txt': 'from remote',
    };
    expect(await readTree(sb.path1)).toEqual(union);
    expect(await readTree(remoteDir)).toEqual(union);

    const stat1 = await statTree(sb.path1);
    const stat2 = await statTree(remoteDir);
    const second = await ok();
    expect(actionsOf(second.logs), dump(second)).toEqual([]);
    expect(await statTree(sb.path1)).toEqual(stat1);
    expect(await statTree(remoteDir)).toEqual(stat2);
  });

  it('new, modified and deleted files propagate both ways', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd', 'e.txt': 'e' });
    await ok();
    expect(await readTree(remoteDir)).toEqual(await readTree(sb.path1));

    const editedAt = minutesAgo(3, toTheSecond);
    await writeTreeFile(sb.path1, 'new-local.txt', 'n1');
    await writeTreeFile(sb.path1, 'a.txt', 'a edited locally', editedAt);
    await removeFile(sb.path1, 'c.txt');
    await writeTreeFile(remoteDir, 'sub/new-remote.txt', 'n2');
    await writeTreeFile(remoteDir, 'b.txt', 'b edited on the remote', minutesAgo(3, toTheSecond));
    await removeFile(remoteDir, 'd.txt');

    const result = await ok({ SYNC_MAX_DELETE: '100' });
    expect(deletesOf(result.logs).map((l) => `${l.side}:${l.path}`).sort()).toEqual(['path1:d.txt', 'path2:c.txt']);
    expect(copiesOf(result.logs).map((l) => `${l.from}:${l.path}`).sort()).toEqual(['path1:a.txt', 'path1:new-local.txt', 'path2:b.txt', 'path2:sub/new-remote.txt']);
    const expected = { 'a.txt': 'a edited locally', 'b.txt': 'b edited on the remote', 'e.txt': 'e', 'new-local.txt': 'n1', 'sub/new-remote.txt': 'n2' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(remoteDir)).toEqual(expected);
    // Modtimes crossed over (to the remote's one-second precision).
    expect((await statTree(remoteDir))['a.txt']!.mtimeMs).toBe(editedAt.getTime());
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('a deletion on the remote reaches the local side, and the reverse', async () => {
    await writeTree(sb.path1, { 'keep.txt': 'k', 'drop-remote.txt': 'x', 'drop-local.txt': 'y', 'sub/z.txt': 'z' });
    await ok();
    await removeFile(remoteDir, 'drop-remote.txt');
    await removeFile(sb.path1, 'drop-local.txt');
    const result = await ok({ SYNC_MAX_DELETE: '100' });
    expect(summaryOf(result.logs)).toMatchObject({ deletesOnPath1: 1, deletesOnPath2: 1 });
    expect(await readTree(sb.path1)).toEqual({ 'keep.txt': 'k', 'sub/z.txt': 'z' });
    expect(await readTree(remoteDir)).toEqual({ 'keep.txt': 'k', 'sub/z.txt': 'z' });
  });

  it.each(['none', 'newer'] as const)('a conflict keeps both versions on both sides (SYNC_CONFLICT_RESOLVE=%s)', async (resolve) => {
    await writeTree(sb.path1, { 'doc.txt': 'base', 'other.txt': 'o' });
    await ok();
    await writeTreeFile(sb.path1, 'doc.txt', 'local edit', minutesAgo(20, toTheSecond));
    await writeTreeFile(remoteDir, 'doc.txt', 'remote edit, newer', minutesAgo(10, toTheSecond));

    const result = await ok({ SYNC_CONFLICT_RESOLVE: resolve });
    const [conflict, ...more] = conflictsOf(result.logs);
    expect(more).toEqual([]);
    const expected = expectedTreeAfterConflict(conflict, resolve, { path: 'doc.txt', local: 'local edit', remote: 'remote edit, newer' }, { 'other.txt': 'o' });
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(remoteDir)).toEqual(expected);
    expect(actionsOf((await ok({ SYNC_CONFLICT_RESOLVE: resolve })).logs)).toEqual([]);
  });

  it('checksum compare uses a hash both sides have (md5 over sftp) and sees a same-size, same-mtime edit on the remote', async () => {
    const when = minutesAgo(30, toTheSecond);
    await writeTreeFile(sb.path1, 'data.txt', 'AAAA-original', when);
    await ok({ SYNC_COMPARE: 'checksum' });
    const snapshot = await readFile(join(await sb.pairDir(), 'snapshot.jsonl'), 'utf8');
    expect(JSON.parse(snapshot.split('\n')[0]!)).toMatchObject({ hashType: 'md5' });

    await writeTreeFile(remoteDir, 'data.txt', 'BBBB-replaced', when);
    const result = await ok({ SYNC_COMPARE: 'checksum' });
    expect(copiesOf(result.logs).map((l) => `${l.from}:${l.path}`)).toEqual(['path2:data.txt']);
    expect(await readTreeFile(sb.path1, 'data.txt')).toBe('BBBB-replaced');
  });

  it('status works for a remote pair', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    const status = await runCli(['status', '--json'], sb.env(remoteEnv));
    expect(status.exitCode, dump(status)).toBe(0);
    const parsed = JSON.parse(status.stdout) as { pairs: { pair: string; runs: { outcome: string }[] }[] };
    expect(parsed.pairs[0]!.pair).toMatch(/_path1__itsftp_pair-\d+-[0-9a-f]{12}$/);
    expect(parsed.pairs[0]!.runs.map((r) => r.outcome)).toEqual(['success']);
  });
});
