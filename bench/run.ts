#!/usr/bin/env node
/**
 * Issue 10's benchmark: rclonesync side by side with `rclone bisync` and with the floor (the bare
 * rclone work a run cannot avoid), on deterministic trees, alternating, medians of rounds.
 *
 *   npm run bench -- --files 100000 --workload W1,W2 [--remote local,sftp] [--rounds 3] [--out FILE] [--keep] [--latency MS]
 *
 * --latency MS puts the SFTP server behind a proxy that delays every chunk MS milliseconds each way
 * (a remote's round trip); its sections are keyed `sftp+MSms`.
 *
 * Workloads (bench/workloads.ts): W1 no change, W2 change batch, W3 first run onto an empty side,
 * W4 a folder's worth renamed, W5 a first run with conflicts; "all" for the five. Writes the
 * sections it measured into --out (default bench/RESULTS.md), keeping the others. Not a test:
 * nothing here asserts. Needs rclone and GNU time (/usr/bin/time).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { measure, median, type Sample } from './measure.ts';
import { machine, type Measured, section, writeReport } from './report.ts';
import { startSftp, type Sftp } from './sftp.ts';
import { makeTree } from './trees.ts';
import { type Context, type Tool, TOOLS, WORKLOADS } from './workloads.ts';
import { builtCli } from './built-cli.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '20000' },
    workload: { type: 'string', default: 'W1' },
    remote: { type: 'string', default: 'local' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: join(import.meta.dirname, 'RESULTS.md') },
    keep: { type: 'boolean', default: false },
    latency: { type: 'string', default: '0' },
  },
});
const files = Number(values.files);
const rounds = Number(values.rounds);
const workloads = values.workload === 'all' ? Object.keys(WORKLOADS) : values.workload.split(',');
const remotes = values.remote.split(',');
for (const w of workloads) if (!WORKLOADS[w]) throw new Error(`unknown workload ${w} (W1..W5 or all)`);
for (const r of remotes) if (r !== 'local' && r !== 'sftp') throw new Error(`unknown remote ${r} (local or sftp)`);
if (!(files > 0) || !(rounds > 0)) throw new Error('--files and --rounds must be positive');
const latencyMs = Number(values.latency);
if (!(latencyMs >= 0)) throw new Error('--latency must be a number of milliseconds');
if (latencyMs > 0 && !remotes.includes('sftp')) throw new Error('--latency delays the SFTP server only: add --remote sftp');
if (!existsSync('/usr/bin/time')) throw new Error('needs GNU time at /usr/bin/time (apt-get install time)');

const cli = builtCli();
const host = machine();
const base = await mkdtemp(join(tmpdir(), 'rclonesync-bench-'));
const log = (text: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`);

async function one(remote: string, id: string, template: string, sftp: Sftp | undefined): Promise<Measured> {
  const work = join(base, `${remote}-${id}`);
  await mkdir(work, { recursive: true });
  const rcloneConfig = join(base, 'empty-rclone.conf');
  await writeFile(rcloneConfig, '');
  const ctx: Context = {
    work,
    files,
    template,
    remotePath: (folder) => (sftp ? sftp.pathOf(folder) : folder),
    env: { RCLONE_CONFIG: rcloneConfig, ...(sftp?.env ?? {}) },
    cli,
  };
  const workload = WORKLOADS[id]!(ctx);
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' ');
  log(`${remote} ${id}: preparing (${workload.title})`);
  await workload.prepare();
  const samples = Object.fromEntries(TOOLS.map((tool) => [tool, [] as Sample[]])) as Record<Tool, Sample[]>;
  const { tools } = workload;
  for (let round = 0; round < rounds; round++) {
    await workload.beforeRound(round);
    // The order rotates, so that a noisy moment does not always hit the same contender.
    for (let k = 0; k < tools.length; k++) {
      const tool = tools[(round + k) % tools.length]!;
      await workload.beforeCommand?.(tool, round);
      const { command, args, env } = workload.command(tool, round);
      const sample = await measure(command, args, { env, timeFile: join(work, 'time.txt') });
      samples[tool].push(sample);
      log(`${remote} ${id} round ${round + 1}/${rounds} ${tool.padEnd(20)} ${sample.wall.toFixed(2)} s wall, ${sample.cpu.toFixed(2)} s CPU, ${sample.treeRssMb.toFixed(0)} MB tree RSS`);
    }
  }
  if (!values.keep) await rm(work, { recursive: true, force: true });
  return { files, remote, workload, rounds, samples, machine: { ...host, load: loadBefore }, loadAfter: loadavg().map((l) => l.toFixed(2)).join(' '), date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC' };
}

try {
  log(`${host.rclone}, node ${host.node}, ${host.nproc} × ${host.cpu}, load ${host.load}; work in ${base}`);
  const template = join(base, 'template');
  const started = Date.now();
  await makeTree(template, files);
  log(`made ${files} files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const measured: Measured[] = [];
  for (const remote of remotes) {
    const sftp = remote === 'sftp' ? await startSftp(latencyMs) : undefined;
    try {
      for (const id of workloads) {
        const m = await one(sftp && latencyMs > 0 ? `sftp+${latencyMs}ms` : remote, id, template, sftp);
        measured.push(m);
        console.log(`\n${section(m)}`);
        // Written after each workload, so that a long run that fails later keeps what it measured.
        await writeReport(values.out, [m]);
      }
    } finally {
      await sftp?.stop();
    }
  }
  const rs = measured.map((m) => median(m.samples.rclonesync.map((s) => s.wall)));
  log(`done: ${measured.length} measurements (rclonesync medians ${rs.map((x) => x.toFixed(2)).join(', ')} s), report in ${values.out}`);
} finally {
  if (!values.keep) await rm(base, { recursive: true, force: true });
}
