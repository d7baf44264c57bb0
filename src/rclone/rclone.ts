/**
 * The one module that runs rclone. Everything the engine asks of a backend goes through here, so
 * the rest of the code never builds command lines, parses rclone output or interprets its exit codes.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from '../log.ts';
import { redact } from '../log.ts';
import type { FileMeta } from '../sync/types.ts';

export interface RcloneOptions {
  readonly binary: string;
  readonly logger: Logger;
  /** Aborting it stops the running rclone (SIGTERM, then SIGKILL after a grace period). */
  readonly signal?: AbortSignal;
  /** Extra arguments for transfers (SYNC_RCLONE_ARGS). */
  readonly transferArgs?: readonly string[];
  /** Environment overrides on top of process.env (RCLONE_* pass through untouched). */
  readonly env?: Record<string, string>;
  /**
   * Where file lists for rclone are written. In the state volume rather than /tmp: a read-only
   * root filesystem may have no writable /tmp, and a 1M-file list does not belong in a small tmpfs.
   */
  readonly workDir: string;
}

/**
 * rclone (1.63 and later) uploads to `<name>.<8 random chars>.partial` and renames when done; a
 * killed rclone leaves such files behind. They are never a user's file to sync.
 */
export const PARTIAL_UPLOAD_PATTERN = '*.????????.partial';

export interface ListedFile {
  readonly path: string;
  /** Stored as is in listings and snapshots: one object per file, no copy. */
  readonly meta: FileMeta;
}

export interface BackendFeatures {
  /** Modtime precision in nanoseconds, as rclone reports it. */
  readonly precisionNs: number;
  readonly hashes: readonly string[];
}

export interface TransferProgress {
  readonly bytes: number;
  readonly totalBytes: number;
  readonly transfers: number;
  readonly totalTransfers: number;
  readonly errors: number;
}

/** rclone failed. `code` is rclone's exit code (3: directory not found); `stderrTail` its last lines. */
export class RcloneError extends Error {
  readonly code: number | undefined;
  readonly stderrTail: string;
  readonly cancelled: boolean;
  constructor(message: string, code: number | undefined, stderrTail: string, cancelled: boolean) {
    super(message);
    this.name = 'RcloneError';
    this.code = code;
    this.stderrTail = stderrTail;
    this.cancelled = cancelled;
  }
  get directoryNotFound(): boolean {
    return this.code === 3;
  }
}

const STDERR_TAIL_LINES = 20;
/** util-linux's setpriv (in every Debian-based image, ours included); without it rclone runs directly. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
/**
 * The engine treats paths as exact strings, as lsjson prints them. By default rclone's copy and
 * check match names after NFC normalization, so "café" spelled NFC and NFD (two distinct files on
 * Linux) collide: rclone copies one, logs "Duplicate object found in source - ignoring" for the
 * other, and the run fails its post-copy check. Matching names exactly keeps them apart.
 */
const EXACT_NAMES = ['--no-unicode-normalization'];
// Printed on every call when no config file exists, which is normal with RCLONE_CONFIG_* remotes.
const NOISE = /NOTICE: Config file .* not found - using defaults/;

/** Joins a root (local folder, remote:, remote:dir, :backend,opts:) and a relative path. */
export function joinRemote(root: string, relative: string): string {
  if (relative === '') return root;
  return root.endsWith('/') || root.endsWith(':') ? `${root}${relative}` : `${root}/${relative}`;
}

export class Rclone {
  private readonly options: RcloneOptions;
  private readonly workDir: Promise<string>;

  constructor(options: RcloneOptions) {
    this.options = options;
    this.workDir = mkdir(options.workDir, { recursive: true, mode: 0o700 }).then(() => mkdtemp(join(options.workDir, 'rclone-')));
    // Awaited (and its failure reported) by the first call that needs a list file; until then a
    // rejection must not count as unhandled and take the whole daemon down.
    this.workDir.catch(() => {});
  }

  async dispose(): Promise<void> {
    const dir = await this.workDir.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }

  async features(root: string): Promise<BackendFeatures> {
    const { stdout } = await this.run(['backend', 'features', root], { collectStdout: true });
    const parsed = JSON.parse(stdout) as { Precision?: number; Hashes?: string[] };
    return { precisionNs: parsed.Precision ?? 1_000_000_000, hashes: parsed.Hashes ?? [] };
  }

  /**
   * Streams `rclone lsjson -R`: lsjson prints one object per line, so we never hold the whole JSON
   * array (hundreds of MB at a million files) in memory. Entries come in batches, one per chunk
   * of rclone's output, because a hop through an async generator per file would cost more than
   * parsing the file's line.
   */
  async *list(
    root: string,
    options: {
      filtersFile?: string;
      hashType?: string;
      onlyPaths?: Iterable<string>;
      excludes?: readonly string[];
      /** Folders are reported only when asked for (a copy must not be blocked by an empty folder of its name). */
      onFolder?: (path: string) => void;
      /** Just the folders directly under root. */
      onlyFolders?: boolean;
    } = {},
  ): AsyncGenerator<ListedFile[]> {
    const args = options.onlyFolders ? ['lsjson', '--dirs-only', '--no-mimetype'] : ['lsjson', '-R', ...(options.onFolder ? [] : ['--files-only']), '--no-mimetype'];
    if (options.hashType) args.push('--hash-type', options.hashType);
    // rclone refuses --files-from-raw together with other filters; a list of our own paths needs none.
    if (options.onlyPaths) args.push('--files-from-raw', await this.writeList('only', options.onlyPaths));
    else if (!options.onlyFolders) {
      args.push('--exclude', PARTIAL_UPLOAD_PATTERN);
      // --exclude rules come before --filter-from ones whatever the order of the flags: ours always win.
      for (const pattern of options.excludes ?? []) args.push('--exclude', pattern);
      if (options.filtersFile) args.push('--filter-from', options.filtersFile);
    }
    args.push(root);
    const subprocess = this.spawn(args, false);
    const stderr = this.collectStderr(subprocess);
    let completed = false;
    try {
      for await (const lines of lineBatchesOf(subprocess.stdout)) {
        const batch: ListedFile[] = [];
        for (const line of lines) {
          const entry = parseListLine(line, options.hashType, options.onFolder);
          if (entry) batch.push(entry);
        }
        if (batch.length > 0) yield batch;
      }
      await subprocess;
      completed = true;
    } catch (error) {
      completed = true;
      throw this.toError(error, args, await stderr);
    } finally {
      // The consumer stopped early (an error downstream): do not leave rclone listing on its own.
      if (!completed) subprocess.kill();
    }
  }

  /**
   * The given paths as `root` holds them now, in one rclone process: those absent (or a root that
   * does not exist) are simply not in the result.
   */
  async listPaths(root: string, paths: Iterable<string>, hashType = ''): Promise<Map<string, FileMeta>> {
    const wanted = new Set(paths);
    const found = new Map<string, FileMeta>();
    if (wanted.size === 0) return found;
    try {
      for await (const batch of this.list(root, { onlyPaths: wanted, ...(hashType ? { hashType } : {}) })) {
        for (const { path, meta } of batch) if (wanted.has(path)) found.set(path, meta);
      }
    } catch (error) {
      if (!(error instanceof RcloneError && error.directoryNotFound)) throw error;
    }
    return found;
  }

  /** Copies the listed relative paths from one root to another in one rclone process. */
  async copyFiles(
    from: string,
    to: string,
    paths: Iterable<string>,
    options: { checksum: boolean; ignoreTimes?: boolean; backupDir?: string; onProgress?: (p: TransferProgress) => void },
  ): Promise<void> {
    const args = ['copy', from, to, '--files-from-raw', await this.writeList('copy', paths), '--no-traverse', ...EXACT_NAMES];
    // Whatever the copy overwrites is moved there first (server-side), not destroyed.
    if (options.backupDir) args.push('--backup-dir', options.backupDir);
    // Files whose two versions rclone would take for the same (equal size and times) although
    // their contents differ must be copied unconditionally.
    if (options.ignoreTimes) args.push('--ignore-times');
    else if (options.checksum) args.push('--checksum');
    await this.transfer(args, options.onProgress);
  }

  /** Deletes exactly the listed files under root (never anything else) in one rclone process. */
  async deleteFiles(root: string, paths: Iterable<string>): Promise<void> {
    const args = ['delete', root, '--files-from-raw', await this.writeList('delete', paths)];
    await this.transfer(args);
  }

  /** Removes `folder` under root and every empty folder below it; a folder still holding files stays. */
  async removeEmptyFolders(root: string, folder: string): Promise<void> {
    try {
      await this.transfer(['rmdirs', joinRemote(root, folder)]);
    } catch (error) {
      // Already gone (a move that emptied it removed it): that is what was wanted.
      if (error instanceof RcloneError && !error.cancelled && /no such file|not found/i.test(error.message)) return;
      throw error;
    }
  }

  /**
   * Moves exactly the listed files from `root` to the same relative paths under `toDir` (server-side
   * where the backend can), in one rclone process; folders the move empties are removed.
   */
  async moveFiles(root: string, toDir: string, paths: Iterable<string>): Promise<void> {
    await this.transfer(['move', root, toDir, '--files-from-raw', await this.writeList('move', paths), '--no-traverse', '--delete-empty-src-dirs', ...EXACT_NAMES]);
  }

  /** Moves one file from one full rclone path to another (server-side where the backend can). */
  async moveTo(from: string, to: string): Promise<void> {
    await this.transfer(['moveto', from, to, ...EXACT_NAMES]);
  }

  /** The names of the folders directly under `root`; none when it does not exist. */
  async folderNames(root: string): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const _ of this.list(root, { onlyFolders: true, onFolder: (path) => names.push(path) })) {
        // only folders are reported, through onFolder
      }
    } catch (error) {
      if (error instanceof RcloneError && error.directoryNotFound) return [];
      throw error;
    }
    return names;
  }

  /** Deletes the listed top-level folders of `root` with everything in them, in one rclone process. */
  async purgeFolders(root: string, names: readonly string[]): Promise<void> {
    const rules = join(await this.workDir, `purge-${process.hrtime.bigint()}.txt`);
    // Filter rules take glob characters: escape them so each rule names exactly one folder.
    const escape = (name: string) => name.replace(/[\\*?[\]{}]/g, (c) => `\\${c}`);
    await writeFile(rules, `${names.map((name) => `+ /${escape(name)}/**`).join('\n')}\n- **\n`);
    await this.transfer(['delete', root, '--filter-from', rules, '--rmdirs']);
  }

  /** Renames one file on one side (server-side where the backend can). */
  async rename(root: string, from: string, to: string): Promise<void> {
    await this.transfer(['moveto', joinRemote(root, from), joinRemote(root, to)]);
  }

  /**
   * Compares contents of the listed files on both roots; returns the paths that match.
   * With `download`, by reading both files; otherwise by a hash both backends support.
   */
  async matchingFiles(root1: string, root2: string, paths: Iterable<string>, download: boolean): Promise<Set<string>> {
    const dir = await this.workDir;
    const matchFile = join(dir, `match-${Date.now()}`);
    const args = ['check', root1, root2, '--files-from-raw', await this.writeList('check', paths), '--match', matchFile, ...EXACT_NAMES];
    if (download) args.push('--download');
    try {
      await this.run(args, { collectStdout: false });
    } catch (error) {
      // Exit 1 with differences found is the normal "some differ" answer; the match file is still written.
      if (!(error instanceof RcloneError) || error.cancelled || error.code === undefined || error.code > 1) throw error;
    }
    const text = await readFile(matchFile, 'utf8').catch(() => '');
    return new Set(text.split('\n').filter((line) => line !== ''));
  }

  private async transfer(args: string[], onProgress?: (p: TransferProgress) => void): Promise<void> {
    const fullArgs = [...args, ...(this.options.transferArgs ?? []), '--use-json-log', '--stats', '1s', '--stats-log-level', 'NOTICE'];
    await this.run(fullArgs, {
      collectStdout: false,
      onStderr: (line) => {
        const stats = parseStats(line);
        if (stats) onProgress?.(stats);
      },
    });
  }

  private async writeList(kind: string, paths: Iterable<string>): Promise<string> {
    const file = join(await this.workDir, `${kind}-${process.hrtime.bigint()}.txt`);
    // --files-from-raw takes each line literally: no comment handling, no trimming of spaces.
    let text = '';
    for (const path of paths) text += `${path}\n`;
    await writeFile(file, text);
    return file;
  }

  private spawn(args: string[], bufferStdout: boolean) {
    this.options.logger.debug({ rclone: args.map(redact) }, 'rclone');
    // If we are killed outright (SIGKILL, OOM), rclone must not go on copying on its own while a
    // later run takes over the pair: the kernel kills it with us (prctl PR_SET_PDEATHSIG).
    const [command, commandArgs] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', this.options.binary, ...args]] : [this.options.binary, args];
    return execa(command, commandArgs, {
      env: this.options.env,
      stdin: 'ignore',
      buffer: { stdout: bufferStdout, stderr: false },
      cancelSignal: this.options.signal,
      forceKillAfterDelay: 3000,
      reject: true,
    });
  }

  private collectStderr(subprocess: ResultPromise, onLine?: (line: string) => void): Promise<string[]> {
    return (async () => {
      const tail: string[] = [];
      try {
        for await (const line of subprocess.iterable({ from: 'stderr' })) {
          const text = String(line);
          if (NOISE.test(text)) continue;
          onLine?.(text);
          if (parseStats(text)) continue;
          tail.push(text);
          if (tail.length > STDERR_TAIL_LINES) tail.shift();
        }
      } catch {
        // The subprocess failing is reported by awaiting it, not here.
      }
      return tail;
    })();
  }

  private async run(args: string[], options: { collectStdout: boolean; onStderr?: (line: string) => void }): Promise<{ stdout: string }> {
    const subprocess = this.spawn(args, options.collectStdout);
    const stderr = this.collectStderr(subprocess, options.onStderr);
    try {
      const result = await subprocess;
      await stderr;
      return { stdout: typeof result.stdout === 'string' ? result.stdout : '' };
    } catch (error) {
      throw this.toError(error, args, await stderr);
    }
  }

  private toError(error: unknown, args: string[], stderrTail: string[]): RcloneError {
    if (error instanceof RcloneError) return error;
    const e = error as { exitCode?: number; isCanceled?: boolean; isTerminated?: boolean; code?: string; shortMessage?: string };
    const cancelled = e.isCanceled === true || this.options.signal?.aborted === true;
    const tail = stderrTail.map((line) => redact(summarizeLogLine(line))).join('\n');
    const notFound = SETPRIV && e.exitCode === 127 && stderrTail.some((line) => line.includes('failed to execute'));
    if (e.code === 'ENOENT' || notFound) {
      return new RcloneError(`rclone executable "${this.options.binary}" not found (set SYNC_RCLONE_BINARY or install rclone)`, undefined, '', false);
    }
    const what = `rclone ${redact(args.slice(0, 3).join(' '))}`;
    const message = cancelled
      ? `${what} was stopped`
      : `${what} failed${e.exitCode !== undefined ? ` with exit code ${e.exitCode}` : ''}${tail ? `: ${lastMeaningfulLine(stderrTail)}` : ''}`;
    return new RcloneError(message, e.exitCode, tail, cancelled);
  }
}

/**
 * Splits a stream into lines, a batch per chunk. Hand-rolled rather than execa's line iterator or
 * readline, which cost several times more per line — and a listing is a million lines.
 */
async function* lineBatchesOf(stream: Readable): AsyncGenerator<string[]> {
  stream.setEncoding('utf8');
  let rest = '';
  for await (const chunk of stream as AsyncIterable<string>) {
    const text = rest + chunk;
    const lines = text.split('\n');
    rest = lines.pop()!;
    yield lines;
  }
  if (rest) yield [rest];
}

function parseListLine(line: string, hashType: string | undefined, onFolder?: (path: string) => void): ListedFile | undefined {
  // Lines are "[", "]", or "{...}" with a trailing comma on all but the last entry.
  const text = line.endsWith(',') ? line.slice(0, -1) : line;
  if (!text.startsWith('{')) return undefined;
  const item = JSON.parse(text) as { Path: string; Size: number; ModTime: string; IsDir: boolean; Hashes?: Record<string, string> };
  if (item.IsDir) {
    onFolder?.(item.Path);
    return undefined;
  }
  const meta: FileMeta = { size: item.Size, mtime: parseModTime(item.ModTime), hash: (hashType && item.Hashes?.[hashType]) || '' };
  return { path: item.Path, meta };
}

/** RFC 3339 with up to nanoseconds; we keep milliseconds (exact equality is all a side compares against itself). */
export function parseModTime(text: string): number {
  const value = Date.parse(text);
  if (Number.isNaN(value)) throw new Error(`rclone printed a modification time we cannot read: "${text}"`);
  return value;
}

function parseStats(line: string): TransferProgress | undefined {
  if (!line.startsWith('{') || !line.includes('"stats"')) return undefined;
  try {
    const { stats } = JSON.parse(line) as { stats?: { bytes: number; totalBytes: number; transfers: number; totalTransfers: number; errors: number } };
    if (!stats) return undefined;
    return { bytes: stats.bytes, totalBytes: stats.totalBytes, transfers: stats.transfers, totalTransfers: stats.totalTransfers, errors: stats.errors };
  } catch {
    return undefined;
  }
}

/** JSON log lines ({"level":"error","msg":"...","object":"..."}) become "object: msg". */
function summarizeLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const parsed = JSON.parse(line) as { msg?: string; object?: string };
    return parsed.object ? `${parsed.object}: ${parsed.msg ?? ''}` : (parsed.msg ?? line);
  } catch {
    return line;
  }
}

function lastMeaningfulLine(lines: string[]): string {
  for (let i = lines.length - 1; i >= 0; i--) {
    const summary = summarizeLogLine(lines[i]!).trim();
    if (summary) return redact(summary.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, ''));
  }
  return '';
}
