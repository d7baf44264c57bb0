/**
 * A remote that dies or stops answering in the middle of an upload (issue 6, item 9). rclone 1.60
 * does not give up on its own (its sftp backend waits forever in SetModTime, --timeout or not), so
 * the stall watchdog (SYNC_STALL_TIMEOUT) must stop it: the run fails with exit 1, releases the
 * lock, and once the server is back the next run finishes the job.
 *
 * The server is `rclone serve sftp` on loopback; SIGSTOP makes it a server that accepts
 * connections but never answers (the most reliable hang), SIGKILL one that is gone.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failureOf } from '../helpers/logs.ts';
import { type CliResult, dump, sleep, spawnCli } from '../helpers/processes.ts';
import { type SftpServer, startSftpServer } from '../helpers/remotes/sftp-server.ts';
import { makeSandbox, type Sandbox, useSandbox } from '../helpers/sandbox.ts';
import { digestTree, randomBytesSeeded, writeTree, writeTreeFile } from '../helpers/trees.ts';

const BIG = 'big.bin';
const BIG_SIZE = 24 * 1024 * 1024;
const STALL = { SYNC_STALL_TIMEOUT: '5s' };
/** How long a stalled run may take to end: the stall time plus rclone's SIGTERM grace, many times over. */
const ENDS_WITHIN_MS = 60_000;

let served: Sandbox;
let server: SftpServer;
const password = `pw-${Math.random().toString(36).slice(2)}`;
let remoteDir: string;
const { sandbox: sb, ok } = useSandbox('rs-stall-', {
  runEnv: () => ({ ...server.clientEnv(), SYNC_PATH2: server.remote('pair') }),
  failureDetail: () => `--- server ---\n${server.log()}`,
});

beforeEach(async () => {
  served = await makeSandbox('rs-stall-served-');
  remoteDir = join(served.root, 'pair');
  await mkdir(remoteDir);
  server = await startSftpServer(served.root, { remoteName: 'stallsftp', password });
});
afterEach(async () => {
  const pid = await serverPid(server.port);
  if (pid) process.kill(pid, 'SIGCONT');
  await server.stop();
  await served.cleanup();
});

/** The pid of the `rclone serve sftp` we started on `port` (the helper does not expose its child). */
async function serverPid(port: number): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (args.includes('serve') && args.includes('sftp') && args.includes(`127.0.0.1:${port}`)) return Number(entry);
  }
  return undefined;
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Starts a slow upload of a big file and returns the run once part of it reached the server. */
async function uploadUnderWay() {
  await writeTree(sb.path1, { 'small.txt': 'small' });
  await ok();
  await writeTreeFile(sb.path1, BIG, randomBytesSeeded(BIG_SIZE, 9));
  const run = spawnCli(['run'], sb.env({ ...server.clientEnv(), SYNC_PATH2: server.remote('pair'), SYNC_RCLONE_ARGS: '--bwlimit 2M', ...STALL }));
  await waitFor('the upload to start', async () => ((await stat(join(remoteDir, BIG)).catch(() => undefined))?.size ?? 0) > 1024 * 1024);
  return run;
}

async function endsWithin(result: Promise<CliResult>, ms: number): Promise<CliResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the run was still going ${ms / 1000}s after the remote stopped`)), ms);
  });
  try {
    return await Promise.race([result, late]);
  } finally {
    clearTimeout(timer);
  }
}

function expectStalled(result: CliResult): void {
  expect(result.exitCode, dump(result)).toBe(1);
  const failure = failureOf(result.logs);
  expect(failure?.msg, dump(result)).toMatch(/^no data moved for 5s (to|from|on|between) stallsftp:pair.*: stopped rclone \w+ \(SYNC_STALL_TIMEOUT\)/);
}

describe('a remote that stops in the middle of an upload', () => {
  it('stops answering (SIGSTOP): the run fails on the stall, frees the lock, and converges once the server is back', async () => {
    const run = await uploadUnderWay();
    const pid = (await serverPid(server.port))!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGSTOP');

    expectStalled(await endsWithin(run.result, ENDS_WITHIN_MS));

    // The lock is free: a run while the server still hangs fails the same way (not exit 4).
    expectStalled(await endsWithin(sb.run({ ...server.clientEnv(), SYNC_PATH2: server.remote('pair'), ...STALL }), ENDS_WITHIN_MS));

    process.kill(pid, 'SIGCONT');
    await ok(STALL);
    expect(await digestTree(remoteDir)).toEqual(await digestTree(sb.path1));
  }, 240_000);

  it('dies (SIGKILL): the run ends with exit 1, and the next run against the restarted server converges', async () => {
    const run = await uploadUnderWay();
    const { port } = server;
    process.kill((await serverPid(port))!, 'SIGKILL');

    const result = await endsWithin(run.result, ENDS_WITHIN_MS);
    expect(result.exitCode, dump(result)).toBe(1);

    await server.stop();
    server = await startSftpServer(served.root, { remoteName: 'stallsftp', password, port });
    await ok(STALL);
    expect(await digestTree(remoteDir)).toEqual(await digestTree(sb.path1));
  }, 240_000);
});
