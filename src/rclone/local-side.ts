/**
 * The per-file operations done here, on a local side, instead of through rclone: looking up a
 * few files' size and time, hashing a file, renaming a file or a folder, making and removing a
 * folder, listing the folders directly in one, counting what a folder holds (the trash, after a
 * run that trashed something); and remembering what `rclone backend features` said of a local side. Rename confirmation hashes every candidate on both sides, and for small
 * files rclone's cost per file (about 0.1 ms of CPU, measured on 10,000 files of 100 bytes) is ten
 * times that of reading the file and hashing it here; a move through the run's rcd is an HTTP call
 * (0.16–0.23 ms of wall time and 0.14–0.22 ms of node's CPU each over 4,000 calls), where
 * rclone's local backend does what `renameLocal` does (lstat, make the destination's folder,
 * rename(2)); likewise its folder move, mkdir and rmdir. Listing the paths a run touched again is
 * an lsjson process (0.1–0.25 s measured for 10,000–20,000 paths) where lstat is a system call.
 *
 * Used only where it touches exactly the file rclone would: a local root, and a name that
 * rclone's local encoding leaves as it is (on Linux rclone maps NUL, '/', and the names '.' and
 * '..' to look-alike characters, and quotes those with '‛'; names holding any such character, or
 * bytes that are not UTF-8, go to rclone), and no rclone option that changes how local names or
 * links read. Everything else, and whatever fails here, is left to rclone, which then reports it
 * as it always does.
 */
import { createHash } from 'node:crypto';
import { createReadStream, closeSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmdirSync } from 'node:fs';
import { readFile, realpath, rename as renameFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { parseRclonePath } from './paths.ts';
import { hasRawBytes } from './raw-names.ts';
import { ENCODED_BY_RCLONE } from './local-listing.ts';
import type { FileMeta } from '../model.ts';

/** rclone's hash names that node's crypto computes alike (the same bytes, the same hex digest). */
const NODE_HASHES: Readonly<Record<string, string>> = { md5: 'md5', sha1: 'sha1', sha256: 'sha256' };
/** Options under which a local name would not read as the file of that name: encodings, links. */
const CHANGES_LOCAL_NAMES = /^(--local-|-l$|--links$)/;
/** Files up to this size are read in one synchronous call; larger ones are streamed. */
export const WHOLE_READ_LIMIT = 1 << 20;
/** Synchronous reads between two turns of the event loop (so heartbeats and signals keep going). */
const READS_PER_TURN = 256;

/** Is `root` a local folder whose names mean to rclone what they mean here (see above)? */
export function isPlainLocal(root: string, rcloneArgs: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (parseRclonePath(root).kind !== 'local') return false;
  if (rcloneArgs.some((arg) => CHANGES_LOCAL_NAMES.test(arg))) return false;
  return !Object.keys(env).some((name) => name.startsWith('RCLONE_LOCAL_') || name === 'RCLONE_LINKS');
}

/** Can node hash files under this plain local root the way rclone would? */
export const hashableHere = (hashType: string): boolean => hashType in NODE_HASHES;

/**
 * Size and time of the listed files under the plain local root (no hash), as `rclone lsjson` would print
 * them (a time in whole milliseconds, truncated, as modTimeMs reads lsjson's nanoseconds); a path
 * not there is absent. Undefined to leave it all to rclone: a name rclone maps, or anything but
 * a regular file (a symlink rclone may skip or follow, a folder lsjson --files-only leaves out).
 */
export async function statLocalFiles(root: string, paths: Iterable<string>): Promise<Map<string, FileMeta> | undefined> {
  const found = new Map<string, FileMeta>();
  // Listed paths are already clean (no '.', '..' or empty parts): joined by hand, which costs a
  // fifth of path.join's normalising each time (100,000 lookups after a first run's copy).
  const normalRoot = join(root, '.');
  const prefix = normalRoot.endsWith('/') ? normalRoot : `${normalRoot}/`;
  // A folder that is not there holds none of the paths below it: one lookup for the folder, not
  // one for each of its files (a first run onto an empty side asks for every file it will copy,
  // and its trash folder for each again: 200,000 lookups of absent files at 100k).
  const folderMissing = new Map<string, boolean>();
  const missing = (folder: string): boolean => {
    let known = folderMissing.get(folder);
    if (known === undefined) {
      try {
        lstatSync(join(root, folder));
        known = false;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        known = code === 'ENOENT' || code === 'ENOTDIR';
      }
      folderMissing.set(folder, known);
    }
    return known;
  };
  let looked = 0;
  for (const path of paths) {
    if (!mapsStraight(path)) return undefined;
    // Synchronous lookups: now and then the event loop gets a turn (lock heartbeat, signals).
    if (++looked % READS_PER_TURN === 0) await yieldToEventLoop();
    const slash = path.lastIndexOf('/');
    if (missing(slash === -1 ? '' : path.slice(0, slash))) continue;
    let stat;
    try {
      stat = lstatSync(prefix + path, { bigint: true, throwIfNoEntry: false });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      return undefined;
    }
    if (!stat) continue;
    if (!stat.isFile()) return undefined;
    const ns = stat.mtimeNs;
    // Floor, also before 1970 (BigInt division truncates towards zero).
    const ms = ns / 1_000_000n - (ns % 1_000_000n < 0n ? 1n : 0n);
    found.set(path, { size: Number(stat.size), mtime: Number(ms), hash: '' });
  }
  return found;
}

/** A name rclone reads as the same name on disk. */
const mapsStraight = (path: string): boolean => !hasRawBytes(path) && !ENCODED_BY_RCLONE.test(path);

/**
 * Renames `from` to `to` under the plain local root, as rclone's local backend would (its folder
 * made when missing; a file there already is replaced, as rclone does); false when it did not (a
 * name to leave to rclone, a source that is no file, another filesystem): then rclone is to do
 * it, and to report what is wrong. Synchronous calls: two system calls a file, where the
 * promise versions cost a thread-pool round trip each (10,000 renames: the run's propagate phase
 * took 1.5 s with them, 0.6 s with these, the same lsjson relisting included in both).
 */
export function renameLocal(root: string, from: string, to: string): boolean {
  return renamed(root, from, to, 'file');
}

/**
 * Moves the folder `from` to `to` (which must not exist) under the plain local root, as rclone's
 * local DirMove would; false to leave it to rclone (which then merges into what is there).
 */
export function renameLocalFolder(root: string, from: string, to: string): boolean {
  if (!mapsStraight(to)) return false;
  try {
    lstatSync(join(root, to));
    return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  return renamed(root, from, to, 'folder');
}

/** mkdir -p under the plain local root; false to leave it to rclone. */
export function makeLocalFolder(root: string, path: string): boolean {
  if (!mapsStraight(path)) return false;
  try {
    mkdirSync(join(root, path), { recursive: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * rmdir under the plain local root: 'removed' (or already gone, or a file took the name),
 * 'not-empty', or undefined to leave it to rclone.
 */
export function removeLocalFolder(root: string, path: string): 'removed' | 'not-empty' | undefined {
  if (!mapsStraight(path)) return undefined;
  try {
    rmdirSync(join(root, path));
    return 'removed';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'removed';
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'not-empty';
    return undefined;
  }
}

function renamed(root: string, from: string, to: string, kind: 'file' | 'folder'): boolean {
  if (!mapsStraight(from) || !mapsStraight(to)) return false;
  const [source, target] = [join(root, from), join(root, to)];
  try {
    const found = lstatSync(source);
    if (kind === 'file' ? !found.isFile() : !found.isDirectory()) return false;
    try {
      renameSync(source, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      mkdirSync(dirname(target), { recursive: true });
      renameSync(source, target);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Hashes what it can of `paths` under the local `root`; returns them, and the paths left for
 * rclone (names it must not map itself, files it could not read, files larger than `upTo`). A
 * file gone is left to rclone too, which then reports it absent as it always does.
 */
export async function hashLocalFiles(root: string, paths: readonly string[], hashType: string, upTo = Infinity): Promise<{ hashes: Map<string, string>; rest: string[] }> {
  const algorithm = NODE_HASHES[hashType]!;
  const hashes = new Map<string, string>();
  const rest: string[] = [];
  let reads = 0;
  for (const path of paths) {
    if (!mapsStraight(path)) {
      rest.push(path);
      continue;
    }
    if (++reads % READS_PER_TURN === 0) await yieldToEventLoop();
    const hash = await hashFile(join(root, path), algorithm, upTo).catch(() => undefined);
    if (hash === undefined) rest.push(path);
    else hashes.set(path, hash);
  }
  return { hashes, rest };
}

async function hashFile(file: string, algorithm: string, upTo: number): Promise<string> {
  const fd = openSync(file, 'r');
  let streamed = false;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error('not a file');
    const size = stat.size;
    if (size > upTo) throw new Error('larger than asked for');
    if (size > WHOLE_READ_LIMIT) {
      streamed = true;
      return await new Promise<string>((resolve, reject) => {
        const hash = createHash(algorithm);
        createReadStream('', { fd, autoClose: true })
          .on('data', (chunk) => hash.update(chunk))
          .on('error', reject)
          .on('end', () => resolve(hash.digest('hex')));
      });
    }
    const buffer = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const n = readSync(fd, buffer, filled, size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return createHash(algorithm).update(buffer.subarray(0, filled)).digest('hex');
  } finally {
    if (!streamed) closeSync(fd);
  }
}

/**
 * The names of the folders directly under the plain local root ([] when it does not exist), as
 * `rclone lsjson --dirs-only` would list them; undefined to leave it to rclone (a name it maps).
 */
export function localFolderNames(root: string): string[] | undefined {
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? [] : undefined;
  }
  const names = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  return names.every(mapsStraight) ? names : undefined;
}

/**
 * What a local side's `rclone backend features` answer depends on: the rclone binary, the options
 * and RCLONE_* variables it runs with, and the filesystem the root is on (rclone measures the
 * time precision there). Undefined when the root is not there yet: then rclone is asked.
 */
export async function localCircumstances(binary: string, root: string, rcloneArgs: readonly string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    const program = await whichBinary(binary, env);
    const [binaryStat, rootStat] = await Promise.all([stat(program), stat(root)]);
    const variables = Object.entries(env).filter(([name]) => name.startsWith('RCLONE_')).sort(([a], [b]) => (a < b ? -1 : 1));
    return JSON.stringify({ program, size: binaryStat.size, mtimeMs: binaryStat.mtimeMs, root, device: rootStat.dev, rcloneArgs, variables });
  } catch {
    return undefined;
  }
}

async function whichBinary(binary: string, env: NodeJS.ProcessEnv): Promise<string> {
  if (binary.includes('/')) return realpath(binary);
  for (const folder of (env.PATH ?? '').split(':')) {
    try {
      return await realpath(join(folder || '.', binary));
    } catch {
      // not in this folder
    }
  }
  throw new Error(`${binary} is not on PATH`);
}

interface RememberedFeatures {
  readonly sides: Record<string, unknown>;
}

/** The features remembered under exactly these circumstances, if any. */
export async function rememberedFeatures(file: string, circumstances: string): Promise<unknown> {
  try {
    const remembered = JSON.parse(await readFile(file, 'utf8')) as RememberedFeatures;
    return remembered.sides?.[circumstances];
  } catch {
    return undefined;
  }
}

/**
 * Remembers them. The sides of a pair share the file, so calls must not overlap (the caller
 * chains them); entries of circumstances that no longer hold go, but for the last few.
 */
export async function rememberFeatures(file: string, circumstances: string, features: unknown): Promise<void> {
  let sides: Record<string, unknown> = {};
  try {
    sides = (JSON.parse(await readFile(file, 'utf8')) as RememberedFeatures).sides ?? {};
  } catch {
    // none yet, or unreadable: start again
  }
  const kept = Object.fromEntries(Object.entries(sides).filter(([key]) => key !== circumstances).slice(-3));
  const scratch = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(scratch, JSON.stringify({ sides: { ...kept, [circumstances]: features } }));
    await renameFile(scratch, file);
  } catch {
    // Only a cache: the next run asks rclone again.
  }
}

/**
 * How many files and bytes the tree under the plain local root holds, as `rclone size` counts them
 * (regular files; none when it does not exist); undefined to leave it to rclone (a symlink, which
 * rclone skips or follows by its options, or anything unreadable).
 */
export async function localTreeSize(root: string): Promise<{ files: number; bytes: number } | undefined> {
  const total = { files: 0, bytes: 0 };
  const folders = [root];
  let seen = 0;
  try {
    for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
      let entries;
      try {
        entries = readdirSync(folder, { withFileTypes: true });
      } catch (error) {
        if (folder === root && (error as NodeJS.ErrnoException).code === 'ENOENT') return total;
        throw error;
      }
      for (const entry of entries) {
        if (++seen % READS_PER_TURN === 0) await yieldToEventLoop();
        const path = join(folder, entry.name);
        if (entry.isDirectory()) folders.push(path);
        else if (entry.isFile()) {
          total.files++;
          total.bytes += lstatSync(path).size;
        } else return undefined;
      }
    }
  } catch {
    return undefined;
  }
  return total;
}
