/**
 * Runs that collide, die or lose their remote: the lock (exit 4, no waiting), recovery after a
 * SIGKILL in the middle of a transfer (stale lock, half-written files), a remote that goes away
 * (exit 1, snapshot untouched) and SIGTERM (prompt exit 1, lock released).
 */
import { readFileSync } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { conflictCopies } from '../helpers/conflicts.ts';
import { actionsOf, conflictsOf, failureOf, type LogLine, summaryOf } from '../helpers/logs.ts';
import { dump, freePort, sleep, spawnCli } from '../helpers/processes.ts';
import { sftpClientEnv, startSftpServer } from '../helpers/remotes/sftp-server.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { digestTree, listFiles, minutesAgo, randomBytesSeeded, readTree, sha256, statTree, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-robust-');

const exists = (path: string) => access(path).then(() => true, () => false);
const MB = 1024 * 1024;
/** Logged (at debug) when propagation starts copying in one direction. */
const copyingStarted = (line: LogLine) => /^copying \d+ files/.test(line.msg);

describe('the lock', () => {
  it('of two runs started at once, one exits 4 at once (without waiting) and the other succeeds', async () => {
    // ~5 s of transfer: long enough that both processes are surely up while the first holds the lock.
    await writeTreeFile(sb.path1, 'big.bin', randomBytesSeeded(1.5 * MB, 1));
    await writeTreeFile(sb.path1, 'small.txt', 'small');
    const env = sb.env({ SYNC_RCLONE_ARGS: '--bwlimit 300k' });
    const a = spawnCli(['run'], env);
    const b = spawnCli(['run'], env);
    const [ra, rb] = await Promise.all([a.result, b.result]);
    const codes = [ra.exitCode, rb.exitCode].sort();
    expect(codes, `${dump(ra)}\n${dump(rb)}`).toEqual([0, 4]);
    const [winner, loser] = ra.exitCode === 0 ? [ra, rb] : [rb, ra];

    // The loser did not wait for the lock: it was done long before the winner's transfer was.
    expect(loser.endedAt, `loser took ${loser.durationMs} ms, winner ${winner.durationMs} ms`).toBeLessThan(winner.endedAt - 1500);
    expect(failureOf(loser.logs)).toMatchObject({ outcome: 'locked' });
    expect(failureOf(loser.logs)!.msg).toMatch(/another run holds the lock for this pair \(pid \d+/);
    expect(actionsOf(loser.logs)).toEqual([]);

    expect(await digestTree(sb.path2)).toEqual(await digestTree(sb.path1));
    // The winner released the lock: the next run gets it and has nothing to do.
    const next = await ok();
    expect(actionsOf(next.logs)).toEqual([]);
  });
});

describe('a run killed with SIGKILL in the middle of a transfer', () => {
  /** Starts a run that transfers slowly, kills its whole process group once copying is under way. */
  async function killMidTransfer(extra: Record<string, string> = {}) {
    const running = spawnCli(['run'], sb.env({ SYNC_RCLONE_ARGS: '--bwlimit 200k', LOG_LEVEL: 'debug', SYNC_MAX_DELETE: '100', ...extra }), { detached: true });
    const started = await running.waitForLog(copyingStarted, 15_000);
    // Let some bytes land (or, had the log line never come, give it ~1.5 s as a fallback).
    await sleep(started ? 1200 : 1500);
    running.killGroup('SIGKILL');
    const killed = await running.result;
    expect(killed.exitCode, dump(killed)).not.toBe(0);
    expect(started, dump(killed)).toBeDefined();
    return killed;
  }

  const bigFiles = {
    'big/one.bin': randomBytesSeeded(3 * MB, 11),
    'big/two.bin': randomBytesSeeded(3 * MB, 12),
    'big/three.bin': randomBytesSeeded(2 * MB, 13),
  };
  const digests = Object.fromEntries(Object.entries(bigFiles).map(([p, b]) => [p, sha256(b)]));

  it('after a normal run: the next run takes the stale lock over, redoes the copies, loses nothing and makes no conflict copies', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b' });
    await writeTree(sb.path2, { 'c.txt': 'c' });
    await ok();
    const snapshotBefore = await readFile(join(await sb.pairDir(), 'snapshot.jsonl'));

    await writeTree(sb.path1, bigFiles);
    // Work in the other direction too, and a deletion.
    await writeTreeFile(sb.path2, 'from2.txt', 'from path2', minutesAgo(1));
    await writeTreeFile(sb.path2, 'a.txt', 'a, edited on path2', minutesAgo(1));
    await killMidTransfer();
    const pairDir = await sb.pairDir();
    // It really died mid-way: its lock and journal are still there, its snapshot was not committed,
    // and path2 holds at most part of the big files.
    expect(await exists(join(pairDir, 'run.lock'))).toBe(true);
    expect(await exists(join(pairDir, 'journal.jsonl'))).toBe(true);
    expect((await readFile(join(pairDir, 'snapshot.jsonl'))).equals(snapshotBefore)).toBe(true);
    const partial = await statTree(sb.path2);
    const bigBytes = Object.keys(bigFiles).reduce((n, p) => n + (partial[p]?.size ?? 0), 0);
    expect(bigBytes).toBeLessThan(8 * MB);

    const again = await ok();
    expect(conflictsOf(again.logs), dump(again)).toEqual([]);
    // The half-written files were recognised from the journal, not mistaken for edits.
    expect(again.logs.some((l) => l.level === 'warn' && /interrupted while copying/.test(l.msg)), dump(again)).toBe(true);
    const tree1 = await digestTree(sb.path1);
    const tree2 = await digestTree(sb.path2);
    expect(tree2).toEqual(tree1);
    expect(conflictCopies(Object.keys(tree1))).toEqual([]);
    for (const [path, digest] of Object.entries(digests)) expect(tree1[path], path).toBe(digest);
    expect(await readTree(sb.path1).then((t) => [t['a.txt'], t['from2.txt'], t['b.txt'], t['c.txt']])).toEqual([
      'a, edited on path2',
      'from path2',
      'b',
      'c',
    ]);
    expect(await exists(join(pairDir, 'journal.jsonl'))).toBe(false);
    expect(await exists(join(pairDir, 'run.lock'))).toBe(false);
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('during the very first run (a resync): the next run still ends with equal sides and no conflict copies', async () => {
    await writeTree(sb.path1, { ...bigFiles, 'x.txt': 'x' });
    await writeTree(sb.path2, { 'y.txt': 'y' });
    await killMidTransfer();
    expect(await listFiles(await sb.pairDir())).toContain('journal.jsonl');

    const again = await ok();
    expect(conflictsOf(again.logs), dump(again)).toEqual([]);
    const tree1 = await digestTree(sb.path1);
    expect(await digestTree(sb.path2)).toEqual(tree1);
    expect(conflictCopies(Object.keys(tree1))).toEqual([]);
    for (const [path, digest] of Object.entries(digests)) expect(tree1[path], path).toBe(digest);
    expect(Object.keys(tree1).sort()).toEqual([...Object.keys(bigFiles), 'x.txt', 'y.txt'].sort());
  });
});

describe('rclonesync alone killed with SIGKILL (not its process group)', () => {
  it('takes its rclone child down with it, so no orphan copies on while the next run takes over', async () => {
    await writeTree(sb.path1, { 'big/one.bin': randomBytesSeeded(3 * MB, 21), 'a.txt': 'a' });
    await writeTree(sb.path2, {});
    const running = spawnCli(['run'], sb.env({ SYNC_RCLONE_ARGS: '--bwlimit 200k', LOG_LEVEL: 'debug' }), { detached: true });
    expect(await running.waitForLog(copyingStarted, 15_000)).toBeDefined();
    // "copying" is logged just before rclone is started.
    let rclonePids: number[] = [];
    for (let i = 0; i < 50 && rclonePids.length === 0; i++) {
      await sleep(100);
      rclonePids = await childRclonePids(running.pid);
    }
    expect(rclonePids.length).toBeGreaterThan(0);
    running.kill('SIGKILL');
    await running.result;
    // PR_SET_PDEATHSIG (through setpriv) delivers SIGKILL to rclone as soon as its parent dies.
    await sleep(500);
    for (const pid of rclonePids) expect(isAlive(pid), `rclone ${pid} outlived its parent`).toBe(false);
    const again = await ok();
    expect(conflictsOf(again.logs), dump(again)).toEqual([]);
    expect(await digestTree(sb.path2)).toEqual(await digestTree(sb.path1));
  });
});

async function childRclonePids(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the command name in parentheses: state, ppid, ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === parent && stat.includes('(rclone)')) pids.push(Number(entry));
  }
  return pids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers; it is dead for our purpose.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('a remote that fails', () => {
  // Fail fast instead of rclone's ten low-level retries with back-off (~11 s per connection).
  const fastFail = { RCLONE_LOW_LEVEL_RETRIES: '1', RCLONE_CONTIMEOUT: '5s' };

  it('nothing listening from the start: exit 1, no snapshot', async () => {
    const port = await freePort();
    await writeTree(sb.path1, { 'a.txt': 'a' });
    const result = await sb.run({ ...(await sftpClientEnv('down', port, 'test', 'pw')), ...fastFail, SYNC_PATH2: 'down:dir' });
    expect(result.exitCode, dump(result)).toBe(1);
    expect(failureOf(result.logs), dump(result)).toMatchObject({ outcome: 'failed' });
    expect(failureOf(result.logs)!.msg).toMatch(/connect|refused/i);
    expect(await listFiles(sb.stateDir).then((files) => files.filter((f) => f.endsWith('snapshot.jsonl')))).toEqual([]);
  });

  it('a remote that went away after a good run: exit 1, snapshot untouched, lock released; it works again once back', async () => {
    const served = join(sb.root, 'served');
    await writeTree(served, {});
    let server = await startSftpServer(served, { remoteName: 'flaky', password: 'secret-pw' });
    const port = server.port;
    try {
      const env = { ...server.clientEnv(), ...fastFail, SYNC_PATH2: 'flaky:data' };
      await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b' });
      await ok(env);
      expect(await readTree(join(served, 'data'))).toEqual({ 'a.txt': 'a', 'b.txt': 'b' });
      const pairDir = await sb.pairDir();
      const snapshot = await readFile(join(pairDir, 'snapshot.jsonl'));

      await server.stop();
      await writeTreeFile(sb.path1, 'c.txt', 'c');
      const failed = await sb.run(env);
      expect(failed.exitCode, dump(failed)).toBe(1);
      expect(failureOf(failed.logs)).toMatchObject({ outcome: 'failed' });
      expect((await readFile(join(pairDir, 'snapshot.jsonl'))).equals(snapshot)).toBe(true);
      expect(await exists(join(pairDir, 'run.lock'))).toBe(false);
      expect(await readTree(sb.path1)).toEqual({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' });

      server = await startSftpServer(served, { remoteName: 'flaky', password: 'secret-pw', port });
      await ok(env);
      expect(await readTree(join(served, 'data'))).toEqual({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' });
    } finally {
      await server.stop();
    }
  });
});

describe('SIGTERM', () => {
  /** A pair with a snapshot and two big files to copy, and a slow run of it that SIGTERM hits mid-transfer. */
  async function terminateMidTransfer() {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    const pairDir = await sb.pairDir();
    const snapshot = await readFile(join(pairDir, 'snapshot.jsonl'));
    await writeTreeFile(sb.path1, 'big1.bin', randomBytesSeeded(2 * MB, 21));
    await writeTreeFile(sb.path1, 'big2.bin', randomBytesSeeded(2 * MB, 22));

    const running = spawnCli(['run'], sb.env({ SYNC_RCLONE_ARGS: '--bwlimit 200k', LOG_LEVEL: 'debug' }));
    expect(await running.waitForLog(copyingStarted, 15_000)).toBeDefined();
    await sleep(500);
    expect(await exists(join(pairDir, 'run.lock'))).toBe(true);
    const signalledAt = Date.now();
    running.kill('SIGTERM');
    const result = await running.result;
    return { result, tookMs: result.endedAt - signalledAt, pairDir, snapshot };
  }

  it('stops a running run promptly with exit 1, records it as cancelled, releases the lock and leaves the snapshot as it was', async () => {
    const { result, tookMs, pairDir, snapshot } = await terminateMidTransfer();
    expect(result.exitCode, dump(result)).toBe(1);
    expect(tookMs, 'exit after SIGTERM').toBeLessThan(5000);
    expect(result.logs.some((l) => l.signal === 'SIGTERM')).toBe(true);
    expect(failureOf(result.logs), dump(result)).toMatchObject({ outcome: 'cancelled' });
    expect(summaryOf(result.logs)).toMatchObject({ outcome: 'cancelled', exitCode: 1 });
    const history = (await readFile(join(pairDir, 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { outcome: string });
    expect(history.at(-1)).toMatchObject({ outcome: 'cancelled', exitCode: 1 });
    expect(await exists(join(pairDir, 'run.lock'))).toBe(false);
    expect((await readFile(join(pairDir, 'snapshot.jsonl'))).equals(snapshot)).toBe(true);

    // The next run gets the lock and finishes the job without conflicts.
    const again = await ok();
    expect(conflictsOf(again.logs), dump(again)).toEqual([]);
    expect(await digestTree(sb.path2)).toEqual(await digestTree(sb.path1));
  });
});
