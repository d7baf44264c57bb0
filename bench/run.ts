#!/usr/bin/env node
/**
 * Side-by-side benchmark: rclonesync vs `rclone bisync` vs the bare cost of listing both sides.
 * Reports ratios (timings on a shared machine are noise; ratios measured in one run are not),
 * plus the peak RSS of each process.
 *
 *   node bench/run.ts [--files 100000] [--rounds 3] [--keep]
 *
 * Not a test: nothing here asserts. It needs rclone (bisync: v1.58+) and GNU time (/usr/bin/time).
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { files: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } },
});
const files = Number(values.files);
const rounds = Number(values.rounds);
const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');

interface Sample {
  seconds: number;
  maxRssMb: number;
}

async function timed(command: string, args: string[], env: Record<string, string> = {}): Promise<Sample> {
  // GNU time reports the child's peak RSS; %e is wall seconds.
  const result = await execa('/usr/bin/time', ['-f', '%e %M', command, ...args], { env, reject: false, stdout: 'ignore' });
  const lastLine = result.stderr.trim().split('\n').at(-1) ?? '';
  const [seconds, kb] = lastLine.split(' ').map(Number);
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.exitCode}): ${result.stderr.slice(-500)}`);
  return { seconds: seconds!, maxRssMb: kb! / 1024 };
}

async function makeTree(root: string, count: number): Promise<void> {
  // 100 files a directory, 100 directories a level: the shape of a real photo or document tree.
  const perDir = 100;
  for (let i = 0; i < count; i += perDir) {
    const dir = join(root, `d${Math.floor(i / 10_000)}`, `e${Math.floor(i / perDir) % 100}`);
    await mkdir(dir, { recursive: true });
    await Promise.all(Array.from({ length: Math.min(perDir, count - i) }, (_, j) => writeFile(join(dir, `file-${i + j}.txt`), `content ${i + j}\n`)));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('needs GNU time: apt-get install time');
  const work = await mkdtemp(join(tmpdir(), 'rclonesync-bench-'));
  const [p1, p2, state, bisyncWork] = ['p1', 'p2', 'state', 'bisync'].map((d) => join(work, d)) as [string, string, string, string];
  try {
    console.log(`making ${files} files on each side in ${work}`);
    await makeTree(p1, files);
    await execa('rclone', ['copy', p1, p2]);
    await mkdir(bisyncWork);
    const env = { SYNC_PATH1: p1, SYNC_PATH2: p2, SYNC_STATE_DIR: state, LOG_FORMAT: 'json', LOG_LEVEL: 'warn' };
    // First runs: establish state (not measured).
    await timed('node', [cli, 'run'], env);
    await timed('rclone', ['bisync', p1, p2, '--resync', '--workdir', bisyncWork]);

    const samples: Record<string, Sample[]> = { listBoth: [], rclonesync: [], bisync: [] };
    for (let round = 0; round < rounds; round++) {
      // Interleaved so that machine noise hits all three alike.
      const started = Date.now();
      const [a, b] = await Promise.all([timed('rclone', ['lsjson', '-R', '--files-only', '--no-mimetype', p1]), timed('rclone', ['lsjson', '-R', '--files-only', '--no-mimetype', p2])]);
      samples.listBoth!.push({ seconds: (Date.now() - started) / 1000, maxRssMb: a.maxRssMb + b.maxRssMb });
      samples.rclonesync!.push(await timed('node', [cli, 'run'], env));
      samples.bisync!.push(await timed('rclone', ['bisync', p1, p2, '--workdir', bisyncWork]));
    }
    const base = median(samples.listBoth!.map((s) => s.seconds));
    console.log(`\nno-change run, ${files} files a side, median of ${rounds} rounds (ratios to listing both sides in parallel)`);
    for (const [name, list] of Object.entries(samples)) {
      const secs = median(list.map((s) => s.seconds));
      const rss = Math.max(...list.map((s) => s.maxRssMb));
      console.log(`  ${name.padEnd(12)} ${(secs / base).toFixed(2).padStart(6)}x   peak RSS ${rss.toFixed(0).padStart(5)} MB`);
    }
  } finally {
    if (!values.keep) await rm(work, { recursive: true, force: true });
  }
}

await main();
