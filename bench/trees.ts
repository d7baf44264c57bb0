/**
 * Deterministic trees of small files: file i is d<i/10000>/e<(i/100)%100>/f<i>.txt (100 files a
 * folder, 100 folders a group), holding about 100 bytes that name it. Written with many fs calls
 * in flight (libuv's thread pool does the work), so a million files take a minute, not ten.
 */
import { execFile } from 'node:child_process';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

export const PER_FOLDER = 100;
export const PER_GROUP = 10_000;
const IN_FLIGHT = 256;

export function folderOf(i: number): string {
  return `d${Math.floor(i / PER_GROUP)}/e${Math.floor(i / PER_FOLDER) % (PER_GROUP / PER_FOLDER)}`;
}

export function pathOf(i: number): string {
  return `${folderOf(i)}/f${i}.txt`;
}

/** About 100 bytes, different for each file and each version. */
export function contentOf(i: number, version = ''): string {
  const head = `file ${i}${version ? ` ${version}` : ''} `;
  return head.padEnd(99, '.') + '\n';
}

/** Runs work(i) for i in [0, count) with at most IN_FLIGHT at once. */
export async function inParallel(count: number, work: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
}

export async function makeTree(root: string, count: number): Promise<void> {
  const folders = Math.ceil(count / PER_FOLDER);
  await mkdir(root, { recursive: true });
  await inParallel(folders, (f) => mkdir(join(root, folderOf(f * PER_FOLDER)), { recursive: true }));
  await inParallel(count, (i) => writeFile(join(root, pathOf(i)), contentOf(i)));
}

/** An exact copy, modification times included (so a first sync of the two finds nothing to do). */
export async function cloneTree(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await promisify(execFile)('cp', ['-a', from, to]);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * 0..count-1 in a scattered but fixed order (i → (i·step + seed) mod count, step a large number
 * coprime with count): a pool of distinct files to change, spread over the tree, consumed from the front.
 */
export function shuffled(count: number, seed: number): number[] {
  let step = 7_919 * 104_729 + seed;
  while (gcd(step, count) !== 1) step++;
  return Array.from({ length: count }, (_, i) => (((i * step) % count) + seed) % count);
}

export interface ChangeBatch {
  /** Relative paths, per side (index 0 = path1). */
  readonly created: readonly [string[], string[]];
  readonly modified: readonly [string[], string[]];
  readonly deleted: readonly [string[], string[]];
}

export interface BatchSize {
  readonly created: number;
  readonly modified: number;
  readonly deleted: number;
}

/** Issue 10's change batch (1,000 new + 1,000 modified + 500 deleted a side at 100k), scaled to count. */
export function batchSizeFor(count: number): BatchSize {
  const scale = Math.min(1, count / 100_000);
  const at = (n: number) => Math.max(1, Math.round(n * scale));
  return { created: at(1000), modified: at(1000), deleted: at(500) };
}

/** Picks a batch from the pool (mutating it: no file is changed twice across rounds). */
export function pickBatch(pool: number[], total: number, size: BatchSize, round: number): ChangeBatch {
  const side = (s: number) => {
    const modified = pool.splice(0, size.modified).map(pathOf);
    const deleted = pool.splice(0, size.deleted).map(pathOf);
    // New files go beside existing ones, spread over the folders.
    const created = Array.from({ length: size.created }, (_, j) => `${folderOf((j * 7919 + s * 104729) % total)}/new-r${round}-s${s}-${j}.txt`);
    return { created, modified, deleted };
  };
  const one = side(1);
  const two = side(2);
  return { created: [one.created, two.created], modified: [one.modified, two.modified], deleted: [one.deleted, two.deleted] };
}

/** Applies a batch to the two local folders of a pair. */
export async function applyBatch(sides: readonly [string, string], batch: ChangeBatch, round: number): Promise<void> {
  for (const s of [0, 1] as const) {
    const root = sides[s];
    const created = batch.created[s];
    const modified = batch.modified[s];
    const deleted = batch.deleted[s];
    await inParallel(created.length, async (j) => {
      await mkdir(dirname(join(root, created[j]!)), { recursive: true });
      await writeFile(join(root, created[j]!), contentOf(j, `new r${round}`));
    });
    await inParallel(modified.length, (j) => writeFile(join(root, modified[j]!), contentOf(j, `modified in round ${round} on side ${s + 1}`)));
    await inParallel(deleted.length, (j) => rm(join(root, deleted[j]!)));
  }
}

/**
 * Moves the folders holding files [0, count) of group d0 under another top folder ("moved/"), or
 * back: a rename of count files, as a user renaming a folder does (server-side, times kept).
 */
export async function renameFolders(root: string, count: number, back: boolean): Promise<void> {
  const folders = Math.ceil(count / PER_FOLDER);
  await mkdir(join(root, back ? 'd0' : 'moved'), { recursive: true });
  await inParallel(folders, async (f) => {
    const leaf = `e${f}`;
    const [from, to] = back ? [join(root, 'moved', leaf), join(root, 'd0', leaf)] : [join(root, 'd0', leaf), join(root, 'moved', leaf)];
    await rename(from, to);
  });
}

/** Rewrites count files (spread over the tree) with other content and size: conflicts on a first run. */
export async function divergeFiles(root: string, total: number, count: number): Promise<string[]> {
  const picked = shuffled(total, 10).slice(0, count).map(pathOf);
  await inParallel(picked.length, (j) => writeFile(join(root, picked[j]!), contentOf(j, 'the other side of a conflict, longer')));
  return picked;
}
