/**
 * What a run reports: a dry run lists its whole plan even when a gate would stop the real run, and
 * names that gate; the counts of a run say what was done, not what was planned.
 */
import { spawn } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionsOf, copiesOf, deletesOf, failureOf, parseLogLines, summaryOf } from '../helpers/logs.ts';
import { cleanEnv, CLI, dump, REPO_ROOT, sleep } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { readTree, removeFile, writeTree } from '../helpers/trees.ts';
import { readHistory } from '../../src/state/history.ts';

const { sandbox: sb, ok } = useSandbox('rs-report-');

describe('a dry run past a gate', () => {
  it('lists every action a real run would take, then names the gate it would stop at (exit 3), changing nothing', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd' });
    await ok();
    for (const path of ['a.txt', 'b.txt', 'c.txt']) await removeFile(sb.path1, path);
    const dry = await sb.run({ SYNC_DRY_RUN: 'true' });
    expect(dry.exitCode, dump(dry)).toBe(3);
    expect(deletesOf(dry.logs).map((l) => l.path).sort()).toEqual(['a.txt', 'b.txt', 'c.txt']);
    expect(deletesOf(dry.logs).every((l) => l.dryRun === true && /^would /.test(l.msg))).toBe(true);
    expect(failureOf(dry.logs)).toMatchObject({ outcome: 'safety-stop', gate: 'max-delete' });
    expect(failureOf(dry.logs)!.msg).toMatch(/dry run.*real run would stop/);
    expect(dry.stderr).toMatch(/SYNC_FORCE=true/);
    expect(await readTree(sb.path2)).toEqual({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd' });
    // The real run stops there without listing actions it will not take.
    const real = await sb.run();
    expect(real.exitCode).toBe(3);
    expect(actionsOf(real.logs)).toEqual([]);
  });
});

describe('counts', () => {
  it('say what was done: copies rclone failed to make are not counted, in the summary or the history', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    await writeTree(sb.path1, { 'new1.txt': 'n1', 'new2.txt': 'n2' });
    await removeFile(sb.path1, 'a.txt');
    // An rclone whose copies all fail (as a full or read-only destination would make them).
    const wrapper = join(sb.scratch, 'rclone-no-copies.sh');
    await writeFile(wrapper, '#!/bin/sh\nif [ "$1" = copy ]; then echo "ERROR : refusing to copy" >&2; exit 1; fi\nexec rclone "$@"\n');
    await chmod(wrapper, 0o755);
    const failed = await sb.run({ SYNC_RCLONE_BINARY: wrapper, SYNC_MAX_DELETE: '100' });
    expect(failed.exitCode, dump(failed)).toBe(1);
    expect(summaryOf(failed.logs)).toMatchObject({ copiesToPath2: 0, deletesOnPath2: 1 });
    const last = (await readHistory(join(await sb.pairDir(), 'history.jsonl'))).at(-1)!;
    expect(last.counts).toMatchObject({ copiesToPath2: 0, deletesOnPath2: 1 });
    // The next run makes the copies it could not make, and counts them.
    const next = await ok();
    expect(summaryOf(next.logs)).toMatchObject({ copiesToPath2: 2, deletesOnPath2: 0 });
  });
});

describe('a plan of many actions, logged to a slow reader', () => {
  // The run waits for stdout to take its lines every 10,000 actions rather than holding them all
  // (src/log.ts, logCaughtUp). That wait comes before anything changes, so while nobody reads, the
  // run copies nothing (before the wait, it copied everything and stalled at exit); once read, no
  // line is lost and the run ends.
  it('waits, changing nothing, while stdout is not read; then logs every action and ends', async () => {
    const files = 10_500;
    const tree: Record<string, string> = {};
    for (let i = 0; i < files; i++) tree[`d${i % 50}/f${i}.txt`] = String(i);
    await writeTree(sb.path1, tree);
    const child = spawn(process.execPath, [CLI, 'run'], { cwd: REPO_ROOT, env: cleanEnv(sb.env({ LOG_LEVEL: 'info' })), stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const ended = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.stdout.pause();
    await sleep(3_000); // the pipe (64 KiB) fills long before 10,000 lines; without the wait, all 10,500 were copied in these 3 s (measured)
    expect(await readTree(sb.path2)).toEqual({});
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdout.resume();
    const code = await ended;
    const logs = parseLogLines(Buffer.concat(chunks).toString('utf8'));
    expect(code, Buffer.concat(stderr).toString('utf8')).toBe(0);
    expect(copiesOf(logs)).toHaveLength(files);
    expect(summaryOf(logs)).toMatchObject({ outcome: 'success', exitCode: 0 });
  }, 120_000);
});
