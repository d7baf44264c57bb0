/**
 * Timing one command: wall time, CPU time (user + system of the process and every child it waited
 * for, from GNU time's rusage) and the peak RSS of the whole process tree, sampled from /proc.
 *
 * GNU time's %M is the largest single process's peak, not the tree's: a run of node plus two
 * rclone listings holds all three at once, so we sum VmRSS over the tree every 50 ms instead
 * (a peak shorter than that can be missed; %M is reported beside it as a lower bound).
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface Sample {
  /** Wall seconds. */
  readonly wall: number;
  /** User + system seconds of the process tree (children that were waited for). */
  readonly cpu: number;
  /** Peak of the summed RSS of the process tree, MB (sampled). */
  readonly treeRssMb: number;
  /** Peak RSS of the largest single process, MB (GNU time %M). */
  readonly maxProcessRssMb: number;
  readonly exitCode: number;
}

const PAGE_BYTES = 4096;
const SAMPLE_MS = 50;

/** Parent pid of every process, from /proc/<pid>/stat (field 4, after the parenthesised name). */
async function parents(): Promise<Map<number, number>> {
  const map = new Map<number, number>();
  const entries = await readdir('/proc');
  await Promise.all(
    entries.map(async (name) => {
      const pid = Number(name);
      if (!Number.isInteger(pid)) return;
      try {
        const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        map.set(pid, Number(fields[1]));
      } catch {
        // gone in between
      }
    }),
  );
  return map;
}

/** Summed resident memory (bytes) of root and all its descendants. */
export async function treeRss(root: number): Promise<number> {
  const parentOf = await parents();
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const tree: number[] = [];
  for (const queue = [root]; queue.length > 0; ) {
    const pid = queue.pop()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  let total = 0;
  await Promise.all(
    tree.map(async (pid) => {
      try {
        const statm = await readFile(`/proc/${pid}/statm`, 'latin1');
        total += Number(statm.split(' ')[1]) * PAGE_BYTES;
      } catch {
        // exited
      }
    }),
  );
  return total;
}

export interface MeasureOptions {
  readonly env?: Record<string, string | undefined>;
  readonly cwd?: string;
  /** Where GNU time writes its line (a temporary file of the caller's). */
  readonly timeFile: string;
  /** Exit codes that count as success (default [0]). */
  readonly okCodes?: readonly number[];
}

/** Runs command under GNU time, samples the tree's RSS, and throws if it fails. */
export async function measure(command: string, args: readonly string[], options: MeasureOptions): Promise<Sample> {
  const started = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', options.timeFile, command, ...args], {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let peak = 0;
  let sampling = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(async () => {
      if (child.pid) peak = Math.max(peak, await treeRss(child.pid));
    });
  }, SAMPLE_MS);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code ?? -1));
  });
  clearInterval(timer);
  await sampling;
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const timeLine = (await readFile(options.timeFile, 'utf8')).trim().split('\n').at(-1) ?? '';
  await rm(options.timeFile, { force: true });
  if (!(options.okCodes ?? [0]).includes(exitCode)) {
    throw new Error(`${command} ${args.join(' ')} exited ${exitCode}:\n${stderr.slice(-1500)}`);
  }
  const [, user, system, maxKb] = timeLine.split(' ').map(Number);
  // A run shorter than one sampling period has no sample: its largest process is the lower bound.
  const maxProcessRssMb = maxKb! / 1024;
  return { wall, cpu: user! + system!, treeRssMb: Math.max(peak / 2 ** 20, maxProcessRssMb), maxProcessRssMb, exitCode };
}

/** A shell script run under one measurement (for a floor made of several rclone commands). */
export function shellScript(lines: readonly string[]): [string, string[]] {
  return ['/bin/sh', ['-ec', lines.join('\n')]];
}

export const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export function tempTimeFile(dir: string, label: string): string {
  return join(dir, `time-${label}-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
}
