#!/usr/bin/env node
/**
 * What the trash costs: a run that carries N deletions across, with the trash on (the default) and
 * off (SYNC_TRASH_DAYS=0), on local↔local and local↔SFTP (`rclone serve sftp` on 127.0.0.1).
 * Reports wall time (median of alternating rounds), the ratio, and how many rclone processes each
 * run started (counted by a wrapper given as SYNC_RCLONE_BINARY).
 *
 *   node bench/trash-deletions.ts [--files 2000] [--deletions 1000] [--rounds 3]
 *
 * Not a test: nothing here asserts.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { builtCli, nodeFlagsOf } from './built-cli.ts';

const { values } = parseArgs({ options: { files: { type: 'string', default: '2000' }, deletions: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } } });
const files = Number(values.files);
const deletions = Number(values.deletions);
const rounds = Number(values.rounds);
const cli = builtCli();

async function tree(root: string): Promise<void> {
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${Math.floor(i / 100)}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${i}.txt`), `file ${i}\n`);
  }
}

async function oneRun(base: string, env: Record<string, string>, trashDays: string): Promise<{ seconds: number; processes: number }> {
  const work = await mkdtemp(join(base, 'round-'));
  const path1 = join(work, 'p1');
  const served = join(work, 'p2');
  const counter = join(work, 'rclone-calls');
  const wrapper = join(work, 'rclone-counting.sh');
  await writeFile(wrapper, `#!/bin/sh\necho "$1" >> ${counter}\nexec rclone "$@"\n`);
  await chmod(wrapper, 0o755);
  await tree(path1);
  await mkdir(served);
  const runEnv = { ...process.env, ...env, SYNC_PATH1: path1, SYNC_PATH2: env.SYNC_PATH2 ? `${env.SYNC_PATH2}${served}` : served, SYNC_STATE_DIR: join(work, 'state'), LOG_FORMAT: 'json', SYNC_TRASH_DAYS: trashDays, SYNC_MAX_DELETE: '100' };
  await execa(process.execPath, [...nodeFlagsOf(cli), cli, 'run'], { env: runEnv });
  for (let i = 0; i < deletions; i++) await rm(join(path1, `d${Math.floor(i / 100)}`, `f${i}.txt`));
  await rm(counter, { force: true });
  const started = process.hrtime.bigint();
  await execa(process.execPath, [...nodeFlagsOf(cli), cli, 'run'], { env: { ...runEnv, SYNC_RCLONE_BINARY: wrapper } });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const processes = (await readFile(counter, 'utf8')).trim().split('\n').length;
  await rm(work, { recursive: true, force: true });
  return { seconds, processes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function backend(name: string, env: Record<string, string>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'rs-bench-trash-'));
  const on: number[] = [];
  const off: number[] = [];
  let processes = { on: 0, off: 0 };
  for (let r = 0; r < rounds; r++) {
    const a = await oneRun(base, env, '30');
    const b = await oneRun(base, env, '0');
    on.push(a.seconds);
    off.push(b.seconds);
    processes = { on: a.processes, off: b.processes };
  }
  await rm(base, { recursive: true, force: true });
  console.log(
    `${name}: ${deletions} deletions of ${files} files — trash on ${median(on).toFixed(2)} s (${processes.on} rclone processes), ` +
      `off ${median(off).toFixed(2)} s (${processes.off}); on/off ${(median(on) / median(off)).toFixed(2)}× (medians of ${rounds})`,
  );
}

const { stdout: version } = await execa('rclone', ['version']);
console.log(`${version.split('\n')[0]}, node ${process.version}`);
await backend('local↔local', {});
// An SFTP server on 127.0.0.1 serving / (so the remote path is the absolute folder).
const port = 20000 + Math.floor(Math.random() * 20000);
const server = execa('rclone', ['serve', 'sftp', '/', '--addr', `127.0.0.1:${port}`, '--user', 'u', '--pass', 'p', '--dir-cache-time', '0'], { reject: false });
await new Promise((resolve) => setTimeout(resolve, 1500));
const { stdout: obscured } = await execa('rclone', ['obscure', 'p']);
await backend('local↔SFTP', { SYNC_PATH2: `:sftp,host=127.0.0.1,port=${port},user=u,pass=${obscured}:` });
server.kill();
