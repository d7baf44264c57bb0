/**
 * Directory trees as the tests write, read and compare them: a tree is a map from a relative
 * '/'-separated path to its content. Reading leaves each side's trash folder out unless asked: it
 * is never synced, so two sides in sync may differ there. One sha256 and one digest of a tree for
 * every test (the CLI's integration tests and the container tests alike).
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { TRASH_FOLDER } from '../../src/sync/trash.ts';

/** The side's trash folder: part of the root on disk, never of the synced tree. */
export { TRASH_FOLDER };

/** Relative '/'-separated path -> content. Strings are written as UTF-8. */
export type Tree = Record<string, string | Buffer>;

const fullPath = (root: string, path: string) => join(root, ...path.split('/'));

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

export async function writeTree(root: string, tree: Tree, mtime?: Date | number): Promise<void> {
  for (const [path, content] of Object.entries(tree)) await writeTreeFile(root, path, content, mtime);
}

export async function writeTreeFile(root: string, path: string, content: string | Buffer, mtime?: Date | number): Promise<void> {
  const full = fullPath(root, path);
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, content);
  if (mtime !== undefined) await setMtime(root, path, mtime);
}

/**
 * All regular files under root, depth first, as relative '/'-separated paths, sorted; none for a
 * root that does not exist. The trash folder is left out unless asked for.
 */
export async function listFiles(root: string, options: { withTrash?: boolean } = {}): Promise<string[]> {
  const result: string[] = [];
  const walk = async (dir: string) => {
    if (!options.withTrash && dir === join(root, TRASH_FOLDER)) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) result.push(relative(root, full).split(sep).join('/'));
    }
  };
  await walk(root);
  return result.sort();
}

/** Every file under root with `read(path)`, keyed by its relative path. */
async function mapTree<T>(root: string, read: (full: string) => Promise<T>, options: { withTrash?: boolean } = {}): Promise<Record<string, T>> {
  const tree: Record<string, T> = {};
  for (const path of await listFiles(root, options)) tree[path] = await read(fullPath(root, path));
  return tree;
}

/** Every file under root with its content as UTF-8 text. */
export const readTree = (root: string): Promise<Record<string, string>> => mapTree(root, (full) => readFile(full, 'utf8'));

/** Every file under root with the sha256 of its bytes: for byte-for-byte comparison of trees of any size. */
export const digestTree = (root: string, options: { withTrash?: boolean } = {}): Promise<Record<string, string>> =>
  mapTree(root, async (full) => sha256(await readFile(full)), options);

export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
  /** Nanosecond mtime as a string (bigint does not survive toEqual diffs nicely). */
  readonly mtimeNs: string;
  readonly ino: number;
}

/** Every file's size, times and inode: "nothing was rewritten" is this tree staying equal. */
export const statTree = (root: string): Promise<Record<string, FileStat>> =>
  mapTree(root, async (full) => {
    const s = await stat(full, { bigint: true });
    return { size: Number(s.size), mtimeMs: Number(s.mtimeMs), mtimeNs: s.mtimeNs.toString(), ino: Number(s.ino) };
  });

export interface FileInfo {
  readonly size: number;
  readonly sha256: string;
  readonly uid: number;
}

/** Every file with size, content hash and owner (a container writes as its own uid). */
export async function treeOf(root: string): Promise<Map<string, FileInfo>> {
  const tree = await mapTree(root, async (full) => {
    const content = await readFile(full);
    return { size: content.length, sha256: sha256(content), uid: (await lstat(full)).uid };
  });
  return new Map(Object.entries(tree));
}

export async function setMtime(root: string, path: string, mtime: Date | number): Promise<void> {
  const when = typeof mtime === 'number' ? new Date(mtime) : mtime;
  await utimes(fullPath(root, path), when, when);
}

export async function mtimeOf(root: string, path: string): Promise<number> {
  return (await stat(fullPath(root, path))).mtimeMs;
}

export async function removeFile(root: string, path: string): Promise<void> {
  await rm(fullPath(root, path));
}

export async function readTreeFile(root: string, path: string): Promise<string> {
  return readFile(fullPath(root, path), 'utf8');
}

/** A fixed, distinct modification time `minutes` in the past, so "modified" never hinges on clock resolution. */
export function minutesAgo(minutes: number, options: { wholeSeconds?: boolean } = {}): Date {
  const ms = Date.now() - minutes * 60_000;
  // For remotes that keep modtimes to the second (sftp), so a time crosses over unchanged.
  return new Date(options.wholeSeconds ? Math.floor(ms / 1000) * 1000 : ms);
}

/** Deterministic pseudo-random bytes (incompressible enough for rclone's bwlimit to matter). */
export function randomBytesSeeded(size: number, seed: number): Buffer {
  const buffer = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buffer.writeUInt32LE(x, Math.min(i, size - 4));
  }
  return buffer;
}
