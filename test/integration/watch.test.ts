/**
 * Watch mode against the real engine and real inotify: two local folders, both watched, each run a
 * real runSync. What it must do: a file saved on path1 reaches path2 within SYNC_WATCH_DELAY and a
 * run's time; the run's own copies into path2 (which the path2 watcher sees) start nothing; a burst
 * is one run; a person's edit during a run gets exactly one follow-up.
 */
import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watchPair, type PairWatch } from '../../src/appliance/watch.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import type { RunProgress } from '../../src/model.ts';
import { runSync, type RunReport } from '../../src/sync/run.ts';
import { parseLogLines } from '../helpers/logs.ts';
import { REPO_ROOT, sleep } from '../helpers/processes.ts';
import { makeSandbox, type Sandbox } from '../helpers/sandbox.ts';
import { listFiles, readTreeFile, writeTree } from '../helpers/trees.ts';

const DELAY_MS = 400;

interface WatchedSandbox {
  readonly runs: RunReport[];
  readonly logs: Record<string, unknown>[];
  watch: PairWatch;
  /** Called with each progress report of the running run. */
  onProgress: (progress: RunProgress) => void;
  running: Promise<void> | undefined;
}

let sb: Sandbox;
let w: WatchedSandbox;
/** The test's watcher, closed after it. */
let active: WatchedSandbox | undefined;

async function startWatching(extraEnv: Record<string, string> = {}, delayMs = DELAY_MS): Promise<void> {
  const config = loadConfig(sb.env(extraEnv));
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', format: 'json' }, new Writable({ write: (chunk, _e, cb) => (logs.push(JSON.parse(String(chunk)) as Record<string, unknown>), cb()) }));
  // The first run of a pair (a merge) before watching, as the daemon's run at start.
  expect((await runSync(config.engine, { logger })).outcome).toBe('success');
  const state: WatchedSandbox = { runs: [], logs, watch: undefined as unknown as PairWatch, onProgress: () => {}, running: undefined };
  const startRun = () => {
    state.watch.runStarted();
    state.running = runSync(config.engine, { logger, onProgress: (p) => state.onProgress(p) }).then((report) => {
      state.runs.push(report);
      state.watch.runEnded({ succeeded: report.outcome === 'success' });
      state.running = undefined;
    });
  };
  state.watch = await watchPair(config.engine, { delayMs, logger, startRun });
  expect(state.watch.sides).toEqual(['path1', 'path2']);
  w = active = state;
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** No run is going and none starts for a while: the watcher has settled. */
async function quiet(ms = 6 * DELAY_MS): Promise<void> {
  await until(() => w.running === undefined, 30_000, 'the run to end');
  const before = w.runs.length;
  await sleep(ms);
  await until(() => w.running === undefined, 30_000, 'the run to end');
  expect(w.runs.length, 'no run started once things were quiet').toBe(before);
}

beforeEach(async () => {
  sb = await makeSandbox('rs-watch-');
});
afterEach(async () => {
  await active?.watch.close();
  await active?.running;
  active = undefined;
  await sb.cleanup();
});

describe('watch mode', () => {
  it('carries a file saved on path1 over within the delay and a run, and its own copy on path2 starts nothing', async () => {
    await writeTree(sb.path1, { 'old.txt': 'there before' });
    await startWatching();
    const saved = Date.now();
    await writeFile(join(sb.path1, 'report.txt'), 'saved by a person');
    await until(async () => (await listFiles(sb.path2)).includes('report.txt'), 15_000, 'report.txt on path2');
    expect(Date.now() - saved).toBeLessThan(DELAY_MS + 10_000);
    expect(await readTreeFile(sb.path2, 'report.txt')).toBe('saved by a person');
    await quiet();
    expect(w.runs).toHaveLength(1);
    expect(w.runs[0]!.counts?.copiesToPath2).toBe(1);
    // The path2 watcher did see the copy; the check against the committed snapshot dropped it.
    expect(w.logs.some((l) => String(l.msg).includes('in sync already'))).toBe(true);
  });

  it('makes one run of a burst of 300 files in nested folders', async () => {
    // A longer delay than the other tests: on a busy machine writing 300 files may pause longer than 400 ms.
    await startWatching({}, 2_000);
    const tree: Record<string, string> = {};
    for (let i = 0; i < 300; i++) tree[`burst/${i % 7}/sub/f${i}.txt`] = `file ${i}`;
    await writeTree(sb.path1, tree);
    await until(async () => (await listFiles(sb.path2)).length === 300, 30_000, 'the burst on path2');
    await quiet();
    expect(w.runs).toHaveLength(1);
    expect(w.runs[0]!.counts?.copiesToPath2).toBe(300);
  });

  it('gives an edit made during a run exactly one follow-up, and the follow-up starts nothing more', async () => {
    // A slow run: 1 MB at 256 KiB/s is a few seconds of propagation to edit in.
    await startWatching({ SYNC_RCLONE_ARGS: '--bwlimit 256k' });
    let edited = false;
    w.onProgress = (progress) => {
      if (progress.phase !== 'propagating' || edited) return;
      edited = true;
      void writeFile(join(sb.path1, 'edited-during-the-run.txt'), 'a person was quicker');
    };
    await writeFile(join(sb.path1, 'big.bin'), Buffer.alloc(1024 * 1024, 7));
    await until(() => w.runs.length >= 1, 30_000, 'the first run');
    expect(edited).toBe(true);
    expect(w.runs[0]!.counts?.copiesToPath2).toBe(1);
    await until(() => w.runs.length >= 2, 15_000, 'the follow-up run');
    expect(w.runs[1]!.counts?.copiesToPath2).toBe(1);
    expect(await readTreeFile(sb.path2, 'edited-during-the-run.txt')).toBe('a person was quicker');
    await quiet();
    expect(w.runs).toHaveLength(2);
  });

  it('ignores the trash and rclone partial files', async () => {
    await startWatching();
    await writeTree(sb.path1, { '.rclonesync-trash/20260101T000000Z/x.txt': 'trashed', 'upload.txt.a1b2c3d4.partial': 'half' });
    await quiet();
    expect(w.runs).toHaveLength(0);
  });
});

describe('when watching is impossible', () => {
  // A user namespace has its own inotify limit (/proc/sys/user/max_inotify_watches), so a tiny one
  // can be set for one process without touching the machine's.
  it('says once, with the fix, that the inotify limit is reached, and watches nothing it cannot', async () => {
    const folders: Record<string, string> = {};
    for (const letter of 'abcdefgh') folders[`${letter}/deeper/file.txt`] = letter;
    await writeTree(sb.path1, folders);
    await writeTree(sb.path2, folders);
    const script = `
      import { watchPair } from ${JSON.stringify(join(REPO_ROOT, 'src/appliance/watch.ts'))};
      import { createLogger } from ${JSON.stringify(join(REPO_ROOT, 'src/log.ts'))};
      const logger = createLogger({ level: 'info', format: 'json' }, process.stdout);
      const watch = await watchPair(${JSON.stringify({ path1: sb.path1, path2: sb.path2, stateDir: sb.stateDir, trashPaths: {} })}, { delayMs: 100, logger, startRun() {} });
      console.log(JSON.stringify({ sides: watch.sides }));
      await watch.close();`;
    const result = await execa('unshare', ['--user', '--map-root-user', 'sh', '-c', 'echo 5 > /proc/sys/user/max_inotify_watches && exec "$0" --input-type=module -e "$1"', process.execPath, script], {
      reject: false,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const lines = parseLogLines(result.stdout);
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings, result.stdout).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('sysctl fs.inotify.max_user_watches=');
    expect(warnings[0]!.msg).toContain('goes on by the schedule');
    expect(lines.find((l) => 'sides' in l)?.sides).toEqual([]);
  });
});
