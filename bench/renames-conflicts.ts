#!/usr/bin/env node
/**
 * What per-file work costs now that it goes through one `rclone rcd`: on local↔local, a tree of N
 * files synced, then
 *   - a run with nothing to do (the baseline),
 *   - a run after every file was renamed (into another folder) on path1: N moves on path2,
 *   - a run after every folder (of 100 files each) was renamed: one folder move per folder,
 *   - a first run of two trees where all N files differ: N conflicts.
 * Reports wall time, the ratio of the rename run to the no-change run, bytes transferred (from the
 * run's summary) and how many rclone processes each run started (a counting SYNC_RCLONE_BINARY).
 *
 *   node bench/renames-conflicts.ts [--files 10000]
 *
 * Not a test: nothing here asserts.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { builtCli, nodeFlagsOf } from './built-cli.ts';

const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' } } });
const files = Number(values.files);
const cli = builtCli();
const pathOf = (i: number) => join(`d${Math.floor(i / 100)}`, `f${i}.txt`);

async function tree(root: string, tag: string): Promise<void> {
  for (let i = 0; i < files; i++) {
    await mkdir(join(root, `d${Math.floor(i / 100)}`), { recursive: true });
    await writeFile(join(root, pathOf(i)), `${tag} file ${i}\n`);
  }
}

async function run(work: string, path1: string, path2: string, extra: Record<string, string> = {}) {
  const counter = join(work, `calls-${Date.now()}`);
  // Written once per pair: a new rclone binary (this wrapper's mtime) would be asked for its backend features again.
  const wrapper = join(work, 'rclone-counting.sh');
  await writeFile(join(work, 'calls-file'), counter);
  if (!(await readFile(wrapper, 'utf8').catch(() => ''))) {
    await writeFile(wrapper, `#!/bin/sh\necho "$1" >> "$(cat ${join(work, 'calls-file')})"\nexec rclone "$@"\n`);
    await chmod(wrapper, 0o755);
  }
  const started = performance.now();
  const result = await execa(process.execPath, [...nodeFlagsOf(cli), cli, 'run'], {
    env: { SYNC_PATH1: path1, SYNC_PATH2: path2, SYNC_STATE_DIR: join(work, 'state'), LOG_FORMAT: 'json', SYNC_RCLONE_BINARY: wrapper, RCLONE_CONFIG: join(work, 'none.conf'), TMPDIR: work, ...extra },
    reject: false,
  });
  const seconds = (performance.now() - started) / 1000;
  if (result.exitCode !== 0) throw new Error(`run failed (${result.exitCode}): ${String(result.stdout).slice(-2000)}`);
  const summary = String(result.stdout).split('\n').map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } }).find((l) => l.summary === true) ?? {};
  const calls = (await readFile(counter, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { seconds, processes: calls.length, commands: calls.join(' '), summary };
}

const base = await mkdtemp(join(tmpdir(), 'rs-bench-renames-'));
try {
  const work = join(base, 'renames');
  const [p1, p2] = [join(work, 'p1'), join(work, 'p2')];
  await mkdir(p2, { recursive: true });
  await tree(p1, 'same');
  await run(work, p1, p2);
  const idle = await run(work, p1, p2);
  for (let i = 0; i < files; i++) {
    // Into another folder than its old one's counterpart, so these are file moves, not folder moves.
    const folder = join(p1, `r${(Math.floor(i / 100) + 1) % Math.ceil(files / 100)}`);
    await mkdir(folder, { recursive: true });
    await rename(join(p1, pathOf(i)), join(folder, `renamed-${i}.txt`));
  }
  const renamed = await run(work, p1, p2);
  // Every folder renamed: one folder move each.
  for (let k = 0; k < Math.ceil(files / 100); k++) await rename(join(p1, `r${k}`), join(p1, `folder-${k}`));
  const folders = await run(work, p1, p2);

  const cwork = join(base, 'conflicts');
  const [c1, c2] = [join(cwork, 'p1'), join(cwork, 'p2')];
  await tree(c1, 'one');
  await tree(c2, 'the other');
  const conflicts = await run(cwork, c1, c2, { SYNC_CONFLICT_RESOLVE: 'none' });

  const line = (name: string, r: Awaited<ReturnType<typeof run>>) =>
    console.log(`${name.padEnd(28)} ${r.seconds.toFixed(1).padStart(7)} s  ${String(r.processes).padStart(3)} rclone processes  moves ${r.summary.movesOnPath2 ?? 0}  conflicts ${r.summary.conflicts ?? 0}  bytes ${r.summary.bytes ?? 0}  [${r.commands}]`);
  console.log(`local↔local, ${files} files`);
  line('no-change run', idle);
  line(`${files} renames`, renamed);
  line(`${Math.ceil(files / 100)} folders renamed`, folders);
  line(`first run, ${files} conflicts`, conflicts);
  console.log(`rename run / no-change run: ${(renamed.seconds / idle.seconds).toFixed(2)}×; folder-rename run / no-change run: ${(folders.seconds / idle.seconds).toFixed(2)}×`);
} finally {
  await rm(base, { recursive: true, force: true });
}
