/**
 * Issue 10's workloads. Each gives, for a round, the command each contender runs:
 * rclonesync (`node dist/cli.js run`, as the image runs it), `rclone bisync` (its fastest fair flags) and the floor
 * (the bare rclone work the run cannot avoid), after preparing the trees for that round
 * (unmeasured). Contenders that change trees get a pair of their own, changed alike.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyBatch, batchSizeFor, cloneTree, divergeFiles, type ChangeBatch, pathOf, pickBatch, renameFolders, shuffled } from './trees.ts';
import { nodeFlagsOf } from './built-cli.ts';

export const TOOLS = ['rclonesync', 'rclonesync-unchecked', 'bisync', 'bisync-checked', 'floor'] as const;
export type Tool = (typeof TOOLS)[number];
/** What every workload runs. */
const EVERY_WORKLOAD: readonly Tool[] = ['rclonesync', 'bisync', 'floor'];
/**
 * Where a run is mostly copies (W3), each tool in both of its modes: rclone checks each copy's
 * hash after the transfer unless given `--ignore-checksum`, which is bisync's fastest mode and
 * not rclonesync's default. `rclonesync-unchecked` passes it through SYNC_RCLONE_ARGS;
 * `bisync-checked` leaves it out, and bisync 1.60 then also hashes every file it lists.
 */
const BOTH_MODES: readonly Tool[] = TOOLS;

export interface Command {
  readonly command: string;
  readonly args: string[];
  readonly env: Record<string, string>;
}

export interface Context {
  /** A folder of the bench's own. */
  readonly work: string;
  readonly files: number;
  /** The pristine tree of `files` files (never changed). */
  readonly template: string;
  /** Local folder → the rclone path path2 is given as (itself, or through SFTP). */
  readonly remotePath: (folder: string) => string;
  /** For every rclone and rclonesync process: RCLONE_CONFIG and the SFTP remote. */
  readonly env: Record<string, string>;
  readonly cli: string;
}

export interface Workload {
  readonly id: string;
  readonly title: string;
  /** What the floor is, for the report. */
  readonly floor: string;
  /** Notes for the report (what bisync is given, what differs). */
  readonly notes: string[];
  /** The contenders, in the order of the first round. */
  readonly tools: readonly Tool[];
  prepare(): Promise<void>;
  beforeRound(round: number): Promise<void>;
  /** Unmeasured, just before one contender's command. */
  beforeCommand?(tool: Tool, round: number): Promise<void>;
  command(tool: Tool, round: number): Command;
}

interface Pair {
  readonly local1: string;
  readonly local2: string;
  readonly path1: string;
  readonly path2: string;
  readonly state: string;
  readonly bisyncDir: string;
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function pairAt(ctx: Context, name: string, local1 = join(ctx.work, name, 'p1')): Pair {
  const local2 = join(ctx.work, name, 'p2');
  return { local1, local2, path1: local1, path2: ctx.remotePath(local2), state: join(ctx.work, name, 'state'), bisyncDir: join(ctx.work, name, 'bisync') };
}

function rclonesync(ctx: Context, pair: Pair, extraEnv: Record<string, string> = {}): Command {
  return {
    command: process.execPath,
    args: [...nodeFlagsOf(ctx.cli), ctx.cli, 'run'],
    env: { ...ctx.env, SYNC_PATH1: pair.path1, SYNC_PATH2: pair.path2, SYNC_STATE_DIR: pair.state, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...extraEnv },
  };
}

function bisync(ctx: Context, pair: Pair, resync: boolean, checked = false): Command {
  const args = ['bisync', pair.path1, pair.path2, '--workdir', pair.bisyncDir, ...(checked ? [] : ['--ignore-checksum']), ...(resync ? ['--resync'] : [])];
  return { command: 'rclone', args, env: ctx.env };
}

/** A contender's sync (every workload defines its own floor). */
function syncCommand(ctx: Context, tool: Exclude<Tool, 'floor'>, pair: Pair, resync: boolean): Command {
  switch (tool) {
    case 'rclonesync':
      return rclonesync(ctx, pair);
    case 'rclonesync-unchecked':
      return rclonesync(ctx, pair, { SYNC_RCLONE_ARGS: '--ignore-checksum' });
    case 'bisync':
      return bisync(ctx, pair, resync);
    case 'bisync-checked':
      return bisync(ctx, pair, resync, true);
  }
}

/** Shell lines running the given commands in parallel and failing if any fails. */
function parallel(commands: string[]): string[] {
  return [...commands.map((c, i) => `${c} & p${i}=$!`), ...commands.map((_, i) => `wait $p${i}`)];
}

const listing = (path: string) => `rclone lsjson -R --files-only --no-mimetype ${quote(path)} > /dev/null`;

function shell(ctx: Context, lines: string[]): Command {
  return { command: '/bin/sh', args: ['-ec', lines.join('\n')], env: ctx.env };
}

function listBoth(pair: Pair): string[] {
  return parallel([listing(pair.path1), listing(pair.path2)]);
}

async function writeList(file: string, paths: readonly string[]): Promise<string> {
  await writeFile(file, paths.map((p) => `${p}\n`).join(''));
  return file;
}

/** Two local copies of the template, synced once by the contender that owns them (unmeasured). */
async function syncedPair(ctx: Context, name: string, owner: Tool): Promise<Pair> {
  const pair = pairAt(ctx, name);
  await cloneTree(ctx.template, pair.local1);
  await cloneTree(ctx.template, pair.local2);
  await mkdir(pair.bisyncDir, { recursive: true });
  if (owner !== 'floor') await runUnmeasured(syncCommand(ctx, owner, pair, true));
  return pair;
}

async function runUnmeasured(c: Command): Promise<void> {
  const { execFile } = await import('node:child_process');
  await new Promise<void>((resolve, reject) =>
    execFile(c.command, c.args, { env: { ...process.env, ...c.env }, maxBuffer: 64 * 2 ** 20 }, (error, _out, stderr) =>
      error ? reject(new Error(`${c.command} ${c.args.join(' ')}: ${error.message}\n${stderr.slice(-1500)}`)) : resolve(),
    ),
  );
}

/** One pair per contender, each synced by its owner. */
async function pairsPerTool(ctx: Context, id: string, tools: readonly Tool[]): Promise<Record<Tool, Pair>> {
  const pairs = {} as Record<Tool, Pair>;
  for (const tool of tools) pairs[tool] = await syncedPair(ctx, `${id}-${tool}`, tool);
  return pairs;
}

/** W1: nothing changed since the last run. */
function noChange(ctx: Context): Workload {
  let pair!: Pair;
  return {
    id: 'W1',
    title: 'no change',
    tools: EVERY_WORKLOAD,
    floor: '`rclone lsjson -R --files-only --no-mimetype` of both sides in parallel',
    notes: [
      'One pair for all three (nothing changes); synced once by rclonesync and once by `bisync --resync` before the rounds.',
      'rclonesync also runs once more before the rounds: the first run with nothing to do after a run that did something reads both listings and the snapshot, and records the digests that let the next ones skip that (README, How it works). The rounds measure those next ones, what a NAS pays every few minutes.',
    ],
    async prepare() {
      pair = pairAt(ctx, 'W1');
      await cloneTree(ctx.template, pair.local1);
      await cloneTree(ctx.template, pair.local2);
      await mkdir(pair.bisyncDir, { recursive: true });
      await runUnmeasured(rclonesync(ctx, pair));
      await runUnmeasured(rclonesync(ctx, pair));
      await runUnmeasured(bisync(ctx, pair, true));
    },
    async beforeRound() {},
    command: (tool) => (tool === 'rclonesync' ? rclonesync(ctx, pair) : tool === 'bisync' ? bisync(ctx, pair, false) : shell(ctx, listBoth(pair))),
  };
}

/** The floor of an incremental run: list both, copy each side's news across, delete each side's removals on the other. */
function batchFloor(ctx: Context, pair: Pair, batch: ChangeBatch, round: number): Command {
  const lists = join(ctx.work, `W2-lists-r${round}`);
  const file = (name: string) => join(lists, name);
  return shell(ctx, [
    ...listBoth(pair),
    ...parallel([
      `rclone copy --files-from-raw ${quote(file('to2'))} ${quote(pair.path1)} ${quote(pair.path2)}`,
      `rclone copy --files-from-raw ${quote(file('to1'))} ${quote(pair.path2)} ${quote(pair.path1)}`,
    ]),
    ...parallel([
      `rclone delete --files-from-raw ${quote(file('del2'))} ${quote(pair.path2)}`,
      `rclone delete --files-from-raw ${quote(file('del1'))} ${quote(pair.path1)}`,
    ]),
  ]);
}

async function writeBatchLists(ctx: Context, batch: ChangeBatch, round: number): Promise<void> {
  const lists = join(ctx.work, `W2-lists-r${round}`);
  await mkdir(lists, { recursive: true });
  await writeList(join(lists, 'to2'), [...batch.created[0], ...batch.modified[0]]);
  await writeList(join(lists, 'to1'), [...batch.created[1], ...batch.modified[1]]);
  await writeList(join(lists, 'del2'), batch.deleted[0]);
  await writeList(join(lists, 'del1'), batch.deleted[1]);
}

/** W2: the change batch on each side. */
function changeBatch(ctx: Context): Workload {
  const size = batchSizeFor(ctx.files);
  const pool = shuffled(ctx.files, 2);
  let pairs!: Record<Tool, Pair>;
  const batches: ChangeBatch[] = [];
  return {
    id: 'W2',
    tools: EVERY_WORKLOAD,
    title: `change batch (${size.created} new + ${size.modified} modified + ${size.deleted} deleted on each side)`,
    floor: 'two parallel listings, then two parallel `copy --files-from-raw`, then two parallel `delete --files-from-raw`',
    notes: ['Each contender has its own pair, synced before the rounds; every round changes other files, alike in the three pairs.', 'rclonesync moves deleted and overwritten files to its trash (default SYNC_TRASH_DAYS=30); bisync and the floor delete them.',
      'Modified files keep their size (~100 B rewritten with ~100 B) and get a new time; each changed on one side only, so rclonesync copies them without comparing contents.',
      "Before each round rclonesync's pair also has a run with nothing to do (unmeasured), as on a NAS where a batch comes after idle runs: the measured run hashes its listings against that run's digests and reads only the folders whose lines changed (the whole listing when more than half of it did)."],
    async prepare() {
      pairs = await pairsPerTool(ctx, 'W2', EVERY_WORKLOAD);
    },
    async beforeRound(round) {
      await runUnmeasured(rclonesync(ctx, pairs.rclonesync));
      const batch = pickBatch(pool, ctx.files, size, round);
      batches[round] = batch;
      for (const tool of EVERY_WORKLOAD) await applyBatch([pairs[tool].local1, pairs[tool].local2], batch, round);
      await writeBatchLists(ctx, batch, round);
    },
    command: (tool, round) => (tool === 'floor' ? batchFloor(ctx, pairs[tool], batches[round]!, round) : syncCommand(ctx, tool, pairs[tool], false)),
  };
}

/** W3: the first run of a pair whose path2 is empty. */
function firstRun(ctx: Context): Workload {
  const pairs = {} as Record<Tool, Pair>;
  return {
    id: 'W3',
    title: 'first run onto an empty side',
    tools: BOTH_MODES,
    floor: '`rclone copy path1 path2` (lists both sides and copies everything)',
    notes: [
      'path1 is the template (read only, shared); each contender gets an empty path2 and no state just before its run, and the copies of the others are removed first (so that a 1M tree fits a tmpfs twice, not four times). bisync is given `--resync` (it requires it on a first run).',
    ],
    async prepare() {
      for (const tool of BOTH_MODES) pairs[tool] = pairAt(ctx, `W3-${tool}`, ctx.template);
    },
    async beforeRound() {},
    async beforeCommand(tool) {
      for (const pair of Object.values(pairs)) await Promise.all([pair.local2, pair.state, pair.bisyncDir].map((d) => rm(d, { recursive: true, force: true })));
      await Promise.all([pairs[tool].local2, pairs[tool].bisyncDir].map((d) => mkdir(d, { recursive: true })));
    },
    command: (tool) => (tool === 'floor' ? shell(ctx, [`rclone copy ${quote(pairs[tool].path1)} ${quote(pairs[tool].path2)}`]) : syncCommand(ctx, tool, pairs[tool], true)),
  };
}

/** min(10k, files/10), in whole folders of 100: W4 and W5 need at least 1,000 files. */
export function renamedCount(files: number): number {
  if (files < 1000) throw new Error('W4 and W5 need --files 1000 or more (a tenth of the tree, in folders of 100)');
  return Math.min(10_000, Math.floor(files / 10 / 100) * 100);
}

/** W4: a folder's worth of files moved elsewhere on path1 (and back in the next round). */
function rename(ctx: Context): Workload {
  const count = renamedCount(ctx.files);
  let pairs!: Record<Tool, Pair>;
  const oldAndNew = (round: number) => {
    const back = round % 2 === 1;
    const inD0 = Array.from({ length: count }, (_, i) => pathOf(i));
    const inMoved = inD0.map((p) => p.replace(/^d0\//, 'moved/'));
    return back ? { from: inMoved, to: inD0 } : { from: inD0, to: inMoved };
  };
  return {
    id: 'W4',
    tools: EVERY_WORKLOAD,
    title: `${count} files renamed (their ${count / 100} folders moved from d0/ to moved/ on path1; back in odd rounds)`,
    floor: 'two parallel listings, then `copy --files-from-raw` of the new names to path2, then `delete --files-from-raw` of the old names on path2',
    notes: [
      'rclone 1.60.1 bisync has no `--track-renames` (it came in 1.66): it is run with its usual flags, so it copies and deletes; the floor does the same.',
      'rclonesync moves the renamed folders on path2 (SYNC_TRACK_RENAMES, default on) after confirming each file by its hash on both sides; the floor copies and deletes like bisync.',
    ],
    async prepare() {
      pairs = await pairsPerTool(ctx, 'W4', EVERY_WORKLOAD);
    },
    async beforeRound(round) {
      for (const tool of EVERY_WORKLOAD) await renameFolders(pairs[tool].local1, count, round % 2 === 1);
      const lists = join(ctx.work, `W4-lists-r${round}`);
      await mkdir(lists, { recursive: true });
      const { from, to } = oldAndNew(round);
      await writeList(join(lists, 'to2'), to);
      await writeList(join(lists, 'del2'), from);
    },
    command: (tool, round) => {
      const pair = pairs[tool];
      if (tool === 'rclonesync') return rclonesync(ctx, pair);
      if (tool === 'bisync') return bisync(ctx, pair, false);
      const lists = join(ctx.work, `W4-lists-r${round}`);
      return shell(ctx, [
        ...listBoth(pair),
        `rclone copy --files-from-raw ${quote(join(lists, 'to2'))} ${quote(pair.path1)} ${quote(pair.path2)}`,
        `rclone delete --files-from-raw ${quote(join(lists, 'del2'))} ${quote(pair.path2)}`,
      ]);
    },
  };
}

/** W5: a first run where count files differ between the sides. */
function conflicts(ctx: Context): Workload {
  const count = renamedCount(ctx.files);
  const pairs = {} as Record<Tool, Pair>;
  let differing: string[] = [];
  return {
    id: 'W5',
    tools: EVERY_WORKLOAD,
    title: `first run with ${count} conflicts (both sides full, ${count} files differ in content and size)`,
    floor: 'two parallel listings, then two parallel `copy --files-from-raw` of the differing files (each side’s version to a folder beside on the other side)',
    notes: ['Both sides and the state are rebuilt every round (unmeasured). rclonesync keeps both versions (SYNC_CONFLICT_RESOLVE=none); bisync is given `--resync`, which keeps path1’s version on both sides (a different, cheaper outcome).'],
    async prepare() {
      for (const tool of EVERY_WORKLOAD) pairs[tool] = pairAt(ctx, `W5-${tool}`);
    },
    async beforeRound(round) {
      for (const pair of Object.values(pairs)) {
        await Promise.all([pair.local1, pair.local2, pair.state, pair.bisyncDir].map((d) => rm(d, { recursive: true, force: true })));
        await Promise.all([cloneTree(ctx.template, pair.local1), cloneTree(ctx.template, pair.local2), mkdir(pair.bisyncDir, { recursive: true })]);
        differing = await divergeFiles(pair.local2, ctx.files, count);
      }
      const lists = join(ctx.work, `W5-lists-r${round}`);
      await mkdir(lists, { recursive: true });
      await writeList(join(lists, 'conflicts'), differing);
    },
    command: (tool, round) => {
      const pair = pairs[tool];
      if (tool === 'rclonesync') return rclonesync(ctx, pair);
      if (tool === 'bisync') return bisync(ctx, pair, true);
      const list = quote(join(ctx.work, `W5-lists-r${round}`, 'conflicts'));
      return shell(ctx, [
        ...listBoth(pair),
        ...parallel([
          `rclone copy --files-from-raw ${list} ${quote(pair.path1)} ${quote(`${pair.path2}/floor-conflicts`)}`,
          `rclone copy --files-from-raw ${list} ${quote(pair.path2)} ${quote(`${pair.path1}/floor-conflicts`)}`,
        ]),
      ]);
    },
  };
}

export const WORKLOADS: Record<string, (ctx: Context) => Workload> = { W1: noChange, W2: changeBatch, W3: firstRun, W4: rename, W5: conflicts };
