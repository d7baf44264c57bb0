/**
 * Reading the state as a person does: `status` per pair (health, the run going on now, the last
 * runs, the next scheduled run, local times), `status` and `health` without SYNC_PATH2 when the
 * state folder holds one pair, and the state folder's default outside the image.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dump, runCli, sleep, spawnCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { randomBytesSeeded, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-status-');

/** The environment of `status`/`health` as typed by hand: the state folder only. */
const stateOnly = (extra: Record<string, string> = {}) => ({ SYNC_STATE_DIR: sb.stateDir, LOG_FORMAT: 'json', ...extra });

describe('status', () => {
  it('without SYNC_PATH2: per pair its paths, health, no current run, the next run and the last runs, in the TZ time zone', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    const result = await runCli(['status'], stateOnly({ TZ: 'Asia/Tokyo', SYNC_SCHEDULE: '0 3 * * *' }));
    expect(result.exitCode, dump(result)).toBe(0);
    const text = result.stdout;
    expect(text).toContain(`: ${sb.path1} <-> ${sb.path2}\n`);
    expect(text).toMatch(/ {2}health: {3}healthy: last run succeeded \d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+9/);
    expect(text).toContain('  now:      no run in progress\n');
    expect(text).toMatch(/ {2}next run: \d{4}-\d\d-\d\d 03:00:00 GMT\+9 \(in /);
    expect(text).toMatch(/\n {4}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+9 +success .* resync$/);
  });

  it('--json: health, current run, next run and paths besides the runs', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    const result = await runCli(['status', '--json'], stateOnly());
    const { pairs } = JSON.parse(result.stdout) as { pairs: Record<string, unknown>[] };
    expect(pairs).toHaveLength(1);
    expect(pairs[0]).toMatchObject({ path1: sb.path1, path2: sb.path2, health: { healthy: true }, current: null, nextRun: expect.any(String) });
  });

  it('while a run copies: "running since", its phase and its transfers; the progress file is gone afterwards', async () => {
    await writeTreeFile(sb.path1, 'big.bin', randomBytesSeeded(1_500_000, 7));
    const running = spawnCli(['run'], sb.env({ SYNC_RCLONE_ARGS: '--bwlimit 150k' }));
    expect(await running.waitForLog((l) => l.action === 'copy', 60_000), 'the copy starts').toBeDefined();
    let seen = '';
    for (let attempt = 0; attempt < 40 && !/phase propagating/.test(seen); attempt++) {
      seen = (await runCli(['status'], stateOnly())).stdout;
      if (!/phase propagating/.test(seen)) await sleep(250);
    }
    expect(seen).toMatch(new RegExp(`now: +running since .* \\(.*pid ${running.pid} on .*\\); phase propagating; listed 1 \\+ 0 files; plan: 1 to path2`));
    const finished = await running.result;
    expect(finished.exitCode, dump(finished)).toBe(0);
    expect(await readdir(await sb.pairDir())).not.toContain('progress.json');
    expect((await runCli(['status'], stateOnly())).stdout).toContain('now:      no run in progress');
  });
});

describe('health without SYNC_PATH2', () => {
  it('judges the state folder\'s one pair; with two pairs it says which to pick', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    const one = await runCli(['health'], stateOnly());
    expect(one.exitCode, dump(one)).toBe(0);
    expect(one.stdout).toMatch(/^healthy: last run succeeded/);

    const third = join(sb.root, 'path3');
    await mkdir(third);
    await ok({ SYNC_PATH2: third });
    const two = await runCli(['health'], stateOnly());
    expect(two.exitCode, dump(two)).toBe(1);
    expect(two.stdout).toMatch(/^unhealthy: SYNC_PATH2 \(--path2\) is not set and the state folder .* holds 2 pairs .*: set SYNC_PATH1 and SYNC_PATH2 to pick one/);
  });
});

describe('the state folder outside the image', () => {
  it('defaults to $XDG_STATE_HOME/rclonesync, else ~/.local/state/rclonesync; status finds it there', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    const home = join(sb.root, 'home');
    await mkdir(home);
    await ok({ SYNC_STATE_DIR: undefined, HOME: home, XDG_STATE_HOME: undefined });
    expect((await stat(join(home, '.local', 'state', 'rclonesync'))).isDirectory()).toBe(true);
    const status = await runCli(['status', '--json'], { HOME: home, XDG_STATE_HOME: undefined, LOG_FORMAT: 'json' });
    expect((JSON.parse(status.stdout) as { pairs: unknown[] }).pairs).toHaveLength(1);

    const xdg = join(sb.root, 'xdg');
    await ok({ SYNC_STATE_DIR: undefined, HOME: home, XDG_STATE_HOME: xdg, SYNC_RESYNC: 'true' });
    expect(await readdir(join(xdg, 'rclonesync'))).toHaveLength(1);
  });
});

describe('named pairs (issue 11)', () => {
  it('status, health and trash take --pair; run runs every pair, status lists them by name', async () => {
    const photos = { PATH1: join(sb.root, 'photos'), PATH2: join(sb.root, 'photos-remote') };
    const docs = { PATH1: join(sb.root, 'docs'), PATH2: join(sb.root, 'docs-remote') };
    for (const dir of [photos.PATH1, photos.PATH2, docs.PATH1, docs.PATH2]) await mkdir(dir, { recursive: true });
    await writeTree(photos.PATH1, { 'cat.jpg': 'cat' });
    await writeTree(docs.PATH2, { 'letter.txt': 'letter' });
    const env = stateOnly({
      SYNC_PAIR_PHOTOS_PATH1: photos.PATH1,
      SYNC_PAIR_PHOTOS_PATH2: photos.PATH2,
      SYNC_PAIR_DOCS_PATH1: docs.PATH1,
      SYNC_PAIR_DOCS_PATH2: docs.PATH2,
      SYNC_PAIR_DOCS_SCHEDULE: '0 3 * * *',
    });

    // Before any run: unhealthy, naming both.
    const before = await runCli(['health'], env);
    expect(before.exitCode).toBe(1);
    expect(before.stdout).toMatch(/^unhealthy: 2 of 2 pairs: docs, photos\n/);

    // `run --pair photos` runs only that one.
    const one = await runCli(['run', '--pair', 'photos'], env);
    expect(one.exitCode, dump(one)).toBe(0);
    expect(await readdir(photos.PATH2)).toEqual(['cat.jpg']);
    expect(await readdir(docs.PATH1)).toEqual([]);
    expect((await runCli(['health', '--pair', 'photos'], env)).exitCode).toBe(0);
    const partly = await runCli(['health'], env);
    expect(partly.exitCode).toBe(1);
    expect(partly.stdout).toMatch(/^unhealthy: 1 of 2 pairs: docs\n/);

    const all = await runCli(['run'], env);
    expect(all.exitCode, dump(all)).toBe(0);
    expect(await readdir(docs.PATH1)).toEqual(['letter.txt']);
    expect((await runCli(['health'], env)).stdout).toMatch(/^healthy: all 2 pairs\n/);

    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { pairs: { name: string; path1: string; runs: unknown[] }[] };
    expect(status.pairs.map((p) => [p.name, p.path1, p.runs.length])).toEqual([
      ['docs', docs.PATH1, 1],
      ['photos', photos.PATH1, 2],
    ]);
    const text = (await runCli(['status', '--pair', 'docs'], env)).stdout;
    expect(text).toMatch(/^pair docs \(/);
    expect(text).not.toContain('photos');

    // trash works on one pair: with several, --pair picks it.
    const ambiguous = await runCli(['trash', 'list'], env);
    expect(ambiguous.exitCode).toBe(2);
    expect(ambiguous.stderr).toContain('trash works on one pair at a time: pick it with --pair (the pairs are docs, photos)');
    const list = await runCli(['trash', 'list', '--pair', 'docs'], env);
    expect(list.exitCode, dump(list)).toBe(0);
    expect(list.stdout.trim()).toBe('the trash is empty');
    const unknown = await runCli(['status', '--pair', 'music'], env);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('unknown pair "music" (--pair): the pairs are docs, photos');
  });
});
