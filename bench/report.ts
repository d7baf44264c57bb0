/**
 * Markdown for one (files × remote × workload) measurement, and RESULTS.md kept as a set of such
 * sections: a new measurement replaces the section of the same key and leaves the others.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { median, type Sample } from './measure.ts';
import { type Tool, type Workload } from './workloads.ts';

export interface Machine {
  readonly nproc: number;
  readonly cpu: string;
  readonly rclone: string;
  readonly node: string;
  readonly load: string;
}

export function machine(): Machine {
  const rclone = execFileSync('rclone', ['version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  return { nproc: cpus().length, cpu: cpus()[0]?.model.trim() ?? 'unknown', rclone, node: process.version, load: loadavg().map((l) => l.toFixed(2)).join(' ') };
}

export interface Measured {
  readonly files: number;
  readonly remote: string;
  readonly workload: Workload;
  readonly rounds: number;
  readonly samples: Record<Tool, Sample[]>;
  readonly machine: Machine;
  readonly loadAfter: string;
  readonly date: string;
}

const fmt = (x: number, digits = 2) => x.toFixed(digits);

function spread(xs: readonly number[], digits = 2): string {
  return `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`;
}

const ratio = (a: number, b: number) => (b > 0 ? `${fmt(a / b)}×` : '–');

export const sectionKey = (m: Pick<Measured, 'files' | 'remote'> & { workload: { id: string } }) => `${m.remote}-${m.files}-${m.workload.id}`;

const SAME_MODE: readonly (readonly [Tool, Tool, string])[] = [
  ['rclonesync-unchecked', 'bisync', "both given `--ignore-checksum`: no check of each copy's hash"],
  ['rclonesync', 'bisync-checked', 'both check each copy\'s hash after the transfer; bisync 1.60 then also hashes every file it lists'],
];

export function section(m: Measured): string {
  const med = (tool: Tool, pick: (s: Sample) => number) => median(m.samples[tool].map(pick));
  const rows = m.workload.tools.map((tool) => {
    const s = m.samples[tool];
    const wall = med(tool, (x) => x.wall);
    const cpu = med(tool, (x) => x.cpu);
    return (
      `| ${tool} | ${spread(s.map((x) => x.wall))} | ${spread(s.map((x) => x.cpu))} | ${spread(s.map((x) => x.treeRssMb), 0)} | ${fmt(Math.max(...s.map((x) => x.maxProcessRssMb)), 0)} ` +
      `| ${ratio(wall, med('floor', (x) => x.wall))} / ${ratio(cpu, med('floor', (x) => x.cpu))} | ${ratio(wall, med('bisync', (x) => x.wall))} / ${ratio(cpu, med('bisync', (x) => x.cpu))} |`
    );
  });
  const perFile = med('rclonesync', (x) => x.treeRssMb) * 2 ** 20 / m.files / 2;
  // Like for like: each tool against the other in the same mode of rclone's check of each copy.
  const sameMode = SAME_MODE.filter(([ours, theirs]) => m.workload.tools.includes(ours) && m.workload.tools.includes(theirs)).map(
    ([ours, theirs, how]) => `${ours} vs ${theirs} (${how}): ${ratio(med(ours, (x) => x.wall), med(theirs, (x) => x.wall))} wall / ${ratio(med(ours, (x) => x.cpu), med(theirs, (x) => x.cpu))} CPU.`,
  );
  return [
    `### ${m.remote}, ${m.files.toLocaleString('en-US')} files a side — ${m.workload.id}: ${m.workload.title}`,
    '',
    `${m.date}; ${m.rounds} alternating rounds; ${m.machine.nproc} × ${m.machine.cpu}; load ${m.machine.load} before, ${m.loadAfter} after; ${m.machine.rclone}; node ${m.machine.node}.`,
    `Floor: ${m.workload.floor}.`,
    ...m.workload.notes.map((n) => `- ${n}`),
    '',
    '| contender | wall s, median (min–max) | CPU s (user+sys, tree) | peak tree RSS MB | largest process RSS MB | wall / CPU vs floor | wall / CPU vs bisync |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...sameMode.flatMap((line) => [line, '']),
    `rclonesync peak tree RSS per file per side: ${fmt(perFile, 0)} bytes (all-in: Node and rclone fixed costs included, so meaningful only for large trees).`,
    '',
  ].join('\n');
}

const HEADER = [
  '# Benchmarks (issue 10)',
  '',
  'Written by `npm run bench -- --files N --workload W1,W2,... --remote local,sftp [--rounds 3] [--out FILE] [--latency MS]`; each run replaces',
  'its own sections (remote × files × workload) and keeps the others. Contenders run alternately (the order rotates each round);',
  'medians of the rounds, min–max in parentheses. Wall time from the bench; CPU time is user+system of the whole process tree',
  '(GNU time: the process and the children it waited for); peak tree RSS sums VmRSS over the process tree, sampled every 50 ms.',
  'rclonesync runs as the image runs it, `node dist/cli.js run` (src/ built by scripts/build.ts), with LOG_LEVEL=warn and every other setting at its default (SYNC_TRASH_DAYS=30,',
  'SYNC_MAX_DELETE=50, SYNC_COMPARE=size,modtime, SYNC_LOCAL_LISTING=here: a local side is listed by rclonesync itself, in the lines lsjson prints;',
  'the floors are rclone\'s own listings). bisync runs with `--ignore-checksum` (its fastest mode; 1.60.1 has no',
  '`--track-renames`), rclonesync with its defaults, which keep rclone\'s check of each copy\'s hash after the transfer. Where a run is',
  'mostly copies (W3) each also runs in the other mode: rclonesync-unchecked is given `--ignore-checksum` (SYNC_RCLONE_ARGS), bisync-checked',
  'is not (bisync 1.60 then also hashes every file it lists). local↔SFTP: path2 is `rclone serve sftp /` on 127.0.0.1, `--dir-cache-time 0s` (the server\'s own CPU and',
  'memory are outside every contender\'s process tree, so not counted for any of them). With `--latency MS` the server is reached through a proxy in the bench\'s process that holds every chunk MS ms each way (sections `sftp+MSms`).',
  'Trees: 100 files of ~100 bytes per folder, 100 folders per group (d<g>/e<f>/f<i>.txt). The machine is shared and noisy:',
  'trust ratios measured in one run over absolute seconds.',
  '',
].join('\n');

/** Writes the sections into file, replacing those of the same keys (and the header with this one). */
export async function writeReport(file: string, measured: readonly Measured[]): Promise<void> {
  const text = existsSync(file) ? await readFile(file, 'utf8') : HEADER;
  const blocks = new Map<string, string>();
  const order: string[] = [];
  for (const match of text.matchAll(/<!-- bench:(\S+) -->\n([\s\S]*?)<!-- \/bench:\1 -->\n/g)) {
    blocks.set(match[1]!, match[2]!);
    order.push(match[1]!);
  }
  for (const m of measured) {
    const key = sectionKey(m);
    if (!blocks.has(key)) order.push(key);
    blocks.set(key, section(m));
  }
  await writeFile(file, `${HEADER}\n` + [...order].sort().map((k) => `<!-- bench:${k} -->\n${blocks.get(k)}<!-- /bench:${k} -->\n`).join('\n'));
}
