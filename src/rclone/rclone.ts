/**
 * The one module that runs rclone. Everything the engine asks of a backend goes through here, so
 * the rest of the code never builds command lines, parses rclone output or interprets its exit codes.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { redact } from '../log.ts';
import type { FileMeta, LocalListingMode, TransferProgress } from '../model.ts';
import { defaultArgs } from './defaults.ts';
import { modTimeMs, parseLsjsonBytes } from './lsjson-line.ts';
import { formatDuration, PROGRESS_REPORT_MS, Watchdog } from './watchdog.ts';
import { lineChunksOfFile, lineChunksOfGrowingFile, lineChunksOfRanges } from './growing-file.ts';
import type { BlockComparison, BlockSpan } from './listing-blocks.ts';
import { listLocalTree, listsHereLikeRclone } from './local-listing.ts';
import { hashableHere, hashLocalFiles, isPlainLocal, WHOLE_READ_LIMIT, localCircumstances, localFolderNames, localTreeSize, makeLocalFolder, rememberedFeatures, rememberFeatures, removeLocalFolder, renameLocal, renameLocalFolder, statLocalFiles } from './local-side.ts';
import { randomCredentials, rcdCommand, RcCallError, RcClient, servingAddress } from './rcd.ts';
import { decodeName, encodeName, globEscaped, hasRawBytes, includeRuleFor, lossyName, printableName, REPLACEMENT, viaShell } from './raw-names.ts';
import { type Child, type SpawnOptions, spawnChild, SubprocessError } from './subprocess.ts';
import { NEWLINE } from '../bytes.ts';

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
  /** SYNC_STALL_TIMEOUT: stop an rclone that moved no data (or listed nothing) for this long; 0 never. */
  readonly stallTimeoutMs?: number;
  /** Where the features of local sides are remembered between runs (see `features`); none: asked each time. */
  readonly localFeaturesFile?: string;
  /** SYNC_LOCAL_LISTING: `rclone` lists every side with lsjson; by default a plain local side is listed here. */
  readonly localListing?: LocalListingMode;
}

/**
 * rclone (1.63 and later) uploads to `<name>.<8 random chars>.partial` and renames when done; a
 * killed rclone leaves such files behind. They are never a user's file to sync. They are left out
 * of listings here rather than by an rclone filter rule: rclone matches every rule against every
 * path, and this one cost ~0.15 s of CPU per 100,000 files a side.
 */
const PARTIAL_UPLOAD = /(?:^|\/)[^/]*\.[^/]{8}\.partial$/;
const isPartialUpload = (path: string): boolean => path.endsWith('.partial') && PARTIAL_UPLOAD.test(path);

export interface ListedFile {
  readonly path: string;
  /** Stored as is in listings and snapshots: one object per file, no copy. */
  readonly meta: FileMeta;
}

export interface BackendFeatures {
  /** Modtime precision in nanoseconds, as rclone reports it. */
  readonly precisionNs: number;
  readonly hashes: readonly string[];
  /** The backend can move or copy a file server-side (what a trash and --backup-dir need). */
  readonly serverSideMove: boolean;
  /** The backend keeps empty folders (not so S3 without directory markers: a folder there is a prefix of files). */
  readonly canHaveEmptyDirs: boolean;
  /** Names that differ only in case are one name there (Windows, macOS, Drive-like stores). */
  readonly caseInsensitive: boolean;
}

/** Files hashed on each local side before their hashes are compared and dropped (matchingFiles). */
const LOCAL_CHECK_SLICE = 10_000;
/** How much of a file list is held before it is written (characters, about as many bytes). */
const LIST_PIECE_CHARS = 256 * 1024;

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

interface CallOptions {
  /** Where the data goes or comes from, as the stall message names it ("to remote:dir"). */
  readonly target: string;
  /** Where rclone's stdout goes (see subprocess.ts); nowhere by default. */
  readonly stdout?: SpawnOptions['stdout'];
  readonly env?: Record<string, string>;
  readonly onProgress?: (progress: TransferProgress) => void;
  /** Log the stats every minute of a long call. */
  readonly reportProgress?: boolean;
  /** A server that is idle by design (rcd): no stall watchdog. */
  readonly noStall?: boolean;
  /** Every stderr line that is not a stats line, as it comes. */
  readonly onLine?: (line: string) => void;
}

interface Call {
  readonly child: Child;
  readonly watchdog: Watchdog;
  /** rclone's last stderr lines (stats lines left out), once it has ended. */
  readonly stderr: Promise<string[]>;
  readonly args: readonly string[];
  readonly target: string;
}

/** Stats as JSON on stderr every second: progress for the caller and for the stall watchdog. */
const STATS = ['--use-json-log', '--stats', '1s', '--stats-log-level', 'NOTICE'];
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
  /** The run's one `rclone rcd`, started by the first per-file operation (see rcd.ts). */
  private rcd: { readonly client: Promise<RcClient>; readonly call: Call } | undefined;
  private readonly plainLocalRoots = new Map<string, boolean>();
  private localOperations = 0;
  private remembering: Promise<void> = Promise.resolve();

  constructor(options: RcloneOptions) {
    this.options = options;
    this.workDir = mkdir(options.workDir, { recursive: true, mode: 0o700 }).then(() => mkdtemp(join(options.workDir, 'rclone-')));
    // Awaited (and its failure reported) by the first call that needs a list file; until then a
    // rejection must not count as unhandled and take the whole daemon down.
    this.workDir.catch(() => {});
  }

  async dispose(): Promise<void> {
    await this.stopDaemon();
    const dir = await this.workDir.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }

  /**
   * What the backend of `root` can do. A local side's answer is remembered (local-side.ts says
   * under what it holds): asking costs an rclone process on every run, and a run that finds
   * nothing to do costs little more than its two listings otherwise.
   */
  async features(root: string): Promise<BackendFeatures> {
    if (!this.plainLocal(root)) return this.askFeatures(root);
    const circumstances = await localCircumstances(this.options.binary, root, this.options.transferArgs ?? [], process.env);
    const file = this.options.localFeaturesFile;
    const remembered = circumstances && file ? await rememberedFeatures(file, circumstances) : undefined;
    if (remembered) return remembered as BackendFeatures;
    const features = await this.askFeatures(root);
    if (circumstances && file) {
      this.remembering = this.remembering.then(() => rememberFeatures(file, circumstances, features));
      await this.remembering;
    }
    return features;
  }

  private async askFeatures(root: string): Promise<BackendFeatures> {
    const { stdout } = await this.run(['backend', 'features', root], { stdout: 'collect', target: `from ${root}` });
    const parsed = JSON.parse(stdout) as { Precision?: number; Hashes?: string[]; Features?: Record<string, boolean> };
    // Older or unusual outputs without a Features map: assume it can, rclone says so if not.
    const serverSideMove = parsed.Features ? parsed.Features.Move === true || parsed.Features.Copy === true : true;
    const canHaveEmptyDirs = parsed.Features ? parsed.Features.CanHaveEmptyDirectories !== false : true;
    const caseInsensitive = parsed.Features?.CaseInsensitive === true;
    return { precisionNs: parsed.Precision ?? 1_000_000_000, hashes: parsed.Hashes ?? [], serverSideMove, canHaveEmptyDirs, caseInsensitive };
  }

  /**
   * Streams `rclone lsjson -R`: lsjson prints one object per line, so we never hold the whole JSON
   * array (hundreds of MB at a million files) in memory. Entries come in batches, one per chunk
   * of rclone's output, because a hop through an async generator per file would cost more than
   * parsing the file's line. Names lsjson could not print (not valid UTF-8) come last, in a batch
   * of their own, with their exact bytes (see raw-names.ts).
   */
  async *list(
    root: string,
    options: {
      filtersFile?: string;
      hashType?: string;
      onlyPaths?: Iterable<string>;
      /** Folders (relative to root) left out with all they hold, whatever the filters say. */
      excludedFolders?: readonly string[];
      /** Folders are reported only when asked for (a copy must not be blocked by an empty folder of its name). */
      onFolder?: (path: string) => void;
      /** While a local side is walked here, before any line is read: the files found so far. */
      onWalked?: (files: number) => void;
      /** Just the folders directly under root. */
      onlyFolders?: boolean;
      /** The listing's blocks are digested here, and lines not read while they match the last run's (listing-blocks.ts). */
      blocks?: BlockComparison;
    } = {},
  ): AsyncGenerator<ListedFile[]> {
    const selection: string[] = [];
    // rclone refuses --files-from-raw together with other filters; a list of our own paths needs none.
    if (options.onlyPaths) selection.push('--files-from-raw', await this.writeList('only', options.onlyPaths));
    else if (!options.onlyFolders) {
      // --exclude rules come before --filter-from ones whatever the order of the flags: ours always win.
      for (const folder of options.excludedFolders ?? []) selection.push('--exclude', excludeRuleFor(folder));
      if (options.filtersFile) selection.push('--filter-from', options.filtersFile);
    }
    const what = options.onlyFolders ? ['--dirs-only'] : ['-R', ...(options.onFolder ? [] : ['--files-only'])];
    const args = ['lsjson', ...what, '--no-mimetype', ...(options.hashType ? ['--hash-type', options.hashType] : []), ...selection, root];
    // Into a file, read as it grows: see growing-file.ts.
    const listing = join(await this.workDir, `listing-${process.hrtime.bigint()}.jsonl`);
    const wholeTree = !options.onlyPaths && !options.onlyFolders;
    const { blocks } = options;
    let here: boolean;
    try {
      here = wholeTree && (await this.listHere(root, listing, options));
    } catch (error) {
      // Stopped or stalled: the other side must not wait for this one's verdict.
      blocks?.abandon();
      await rm(listing, { force: true });
      throw this.listedHereError(error, root);
    }
    let call: Call | undefined;
    if (!here) {
      const out = openSync(listing, 'w', 0o600);
      try {
        call = this.start(args, { target: `from ${root}`, stdout: { fd: out } });
      } finally {
        closeSync(out);
      }
    }
    const done = call?.child.done ?? Promise.resolve();
    const mangled: ListedFile[] = [];
    /** Bytes of the listing read line by line (from the start, after a readAgain). */
    let bytesRead = 0;
    /** The folder the line being read names, if it is one. */
    let folderOfLine: string | undefined;
    const onFolder = options.onFolder && ((path: string) => (folderOfLine = path));
    const read = (chunk: Buffer): ListedFile[] => {
      bytesRead += chunk.length;
      const batch: ListedFile[] = [];
      blocks?.digester.beginChunk(chunk);
      for (let start = 0, end = 0; start < chunk.length; start = end + 1) {
        end = chunk.indexOf(NEWLINE, start);
        if (end === -1) end = chunk.length;
        folderOfLine = undefined;
        const entry = parseListLine(chunk, start, end, options.hashType, onFolder);
        blocks?.digester.line(chunk, start, end, entry !== undefined);
        if (folderOfLine !== undefined) {
          // After line(): a folder's line may begin a block, and belongs to it.
          blocks?.digester.folderLine(folderOfLine);
          options.onFolder!(folderOfLine);
        }
        if (!entry || (wholeTree && isPartialUpload(entry.path))) continue;
        // A line break already makes a name unusable in rclone's file lists (the engine skips it).
        if (entry.path.includes(REPLACEMENT) && !/[\n\r]/.test(entry.path)) mangled.push(entry);
        else batch.push(entry);
      }
      blocks?.digester.endChunk(chunk);
      return batch;
    };
    /** After a block the last run did not have: every line so far is read, from the start. */
    const readAgain = async function* (upTo: number): AsyncGenerator<ListedFile[]> {
      blocks!.restart();
      bytesRead = 0;
      for await (const chunk of lineChunksOfFile(listing, upTo)) yield read(chunk);
    };
    /** The blocks the last run did not have, when the others stand for their folders (listing-blocks.ts). */
    const readSpans = async function* (spans: readonly BlockSpan[]): AsyncGenerator<ListedFile[]> {
      blocks!.beginSpans();
      for await (const chunk of lineChunksOfRanges(listing, spans)) yield read(chunk);
      blocks!.endSpans();
      for (const folder of blocks!.foldersOfMatchedBlocks()) options.onFolder?.(folder);
    };
    let completed = false;
    let decided = false;
    try {
      let position = 0;
      /** How much of the listing was skimmed (cut and hashed) and not read yet. */
      let skimmed = 0;
      for await (const chunk of lineChunksOfGrowingFile(listing, done)) {
        call?.watchdog.activity();
        position += chunk.length;
        if (blocks?.skimming) {
          blocks.skim(chunk, position - chunk.length);
          skimmed = position;
          // An empty batch while lines are skipped: the consumer reports progress.
          if (blocks.skimming) {
            yield [];
            continue;
          }
        }
        if (skimmed > 0) {
          // A block one side's last listing did not have (this side's or the other's): what was
          // skimmed is read now, from the start (this chunk too, if it was skimmed).
          const throughThis = skimmed === position;
          yield* readAgain(skimmed);
          skimmed = 0;
          if (throughThis) continue;
        }
        const batch = read(chunk);
        if (batch.length > 0) yield batch;
      }
      await done;
      completed = true;
      // Every block was the last run's, unless some did not come, or the other side's were not;
      // then only the blocks the last run did not have are read, or every line.
      const reading = blocks?.skimming ? await blocks.finishSkimming() : { kind: 'whole' as const };
      let toRead = position;
      if (reading.kind === 'in-part') {
        toRead = blocks!.spans.reduce((sum, span) => sum + span.end - span.start, 0);
        yield* readSpans(blocks!.spans);
      } else if (reading.kind === 'whole' && skimmed > 0) yield* readAgain(skimmed);
      blocks?.finish();
      // A listing read in part (other than by the blocks that stand for the rest) would turn what was left out into deletions.
      if (reading.kind !== 'unchanged' && bytesRead !== toRead) throw new UnreadableOutput(`internal error: ${bytesRead} of the listing's ${toRead} bytes were read`);
      decided = true;
    } catch (error) {
      completed = true;
      throw call ? this.toError(error, call, await call.stderr) : this.listedHereError(error, root);
    } finally {
      call?.watchdog.stop();
      // The consumer stopped early (an error downstream): do not leave rclone listing on its own.
      if (!completed) call?.child.kill();
      // However this listing ended without a verdict (an error, a consumer that stopped), the other
      // side's must not wait for it.
      if (!decided) blocks?.abandon();
      await rm(listing, { force: true });
    }
    if (mangled.length > 0) {
      const onlyRaw = options.onlyPaths && [...options.onlyPaths].filter((path) => lossyName(path).includes(REPLACEMENT));
      yield await this.exactNames(root, mangled, onlyRaw ? { onlyPaths: onlyRaw } : { selection });
    }
  }

  /**
   * The exact names behind the entries lsjson printed with U+FFFD, from `rclone lsl` (which prints
   * names as bytes, sizes and nanosecond times) limited to those names. Metadata stays lsjson's
   * (it has the hashes) unless two names print alike; a name gone in between is gone.
   */
  private async exactNames(root: string, mangled: readonly ListedFile[], from: { onlyPaths: string[] } | { selection: string[] }): Promise<ListedFile[]> {
    const byLossy = new Map<string, ListedFile[]>();
    for (const entry of mangled) byLossy.set(entry.path, [...(byLossy.get(entry.path) ?? []), entry]);
    let selection: string[];
    if ('onlyPaths' in from) selection = ['--files-from-raw', await this.writeList('only', from.onlyPaths)];
    else {
      // After the listing's own rules, so what they exclude stays excluded.
      const rules = await this.writeList('exact', [...[...byLossy.keys()].map(includeRuleFor), '- **']);
      selection = [...from.selection, '--filter-from', rules];
    }
    // lsl prints times in the local zone, and sizes as 2.861Mi if RCLONE_HUMAN_READABLE says so.
    const stdout = await this.runForBytes(['lsl', '--human-readable=false', ...selection, root], { target: `from ${root}`, env: { TZ: 'UTC' } });
    const found: ListedFile[] = [];
    const vanished = new Set(byLossy.keys());
    for (const { path, size, mtime } of parseLongListing(stdout)) {
      const lossy = lossyName(path);
      const listed = byLossy.get(lossy);
      if (!listed) continue;
      vanished.delete(lossy);
      const meta = listed.length === 1 ? listed[0]!.meta : { size, mtime, hash: listed.find((e) => e.meta.size === size && e.meta.mtime === mtime)?.meta.hash ?? '' };
      found.push({ path, meta });
    }
    if (vanished.size > 0) {
      this.options.logger.warn({ root: redact(root), files: [...vanished] }, 'files whose names are not valid UTF-8 vanished while they were being listed');
    }
    return found;
  }

  /**
   * The given paths as `root` holds them now, in one rclone process: those absent (or a root that
   * does not exist) are simply not in the result. The cost goes with the folders that hold the
   * paths, not with the paths: over `rclone serve sftp`, 20,000 paths in 200 folders took 0.87 s,
   * 2,500 or 20,000 paths spread over 1,000 folders 3.1-3.3 s, as much as listing the whole
   * 100,000-file tree (so listing the whole tree instead never pays).
   */
  async listPaths(root: string, paths: Iterable<string>, hashType = ''): Promise<Map<string, FileMeta>> {
    // No copy of a caller's array or set: a first run's relisting asks for every file it copied.
    const asked = Array.isArray(paths) || paths instanceof Set ? (paths as Iterable<string>) : [...paths];
    if (hashType === '' && this.plainLocal(root)) {
      // A plain local side is looked up here (local-side.ts); without hashes, that is all lsjson would say.
      const local = await statLocalFiles(root, asked);
      if (local) return local;
    }
    const wanted = asked instanceof Set ? (asked as ReadonlySet<string>) : new Set(asked);
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
    options: { checksum: boolean; ignoreTimes?: boolean; backupDir?: string; onProgress?: (p: TransferProgress) => void; walkDestination?: boolean },
  ): Promise<void> {
    // --no-traverse looks each file up at the destination, which beats listing its folders for a
    // few files; for many (a first run onto an empty side) listing them is cheaper.
    const traverse = options.walkDestination ? [] : ['--no-traverse'];
    const args = ['copy', from, to, '--files-from-raw', await this.writeList('copy', paths), ...traverse, ...EXACT_NAMES];
    // Whatever the copy overwrites is moved there first (server-side), not destroyed.
    if (options.backupDir) args.push('--backup-dir', options.backupDir);
    // Files whose two versions rclone would take for the same (equal size and times) although
    // their contents differ must be copied unconditionally.
    if (options.ignoreTimes) args.push('--ignore-times');
    else if (options.checksum) args.push('--checksum');
    await this.transfer(args, `to ${to}`, options.onProgress);
  }

  /** Deletes exactly the listed files under root (never anything else) in one rclone process. */
  async deleteFiles(root: string, paths: Iterable<string>): Promise<void> {
    const args = ['delete', root, '--files-from-raw', await this.writeList('delete', paths)];
    await this.transfer(args, `on ${root}`);
  }

  /** Removes `folder` under root and every empty folder below it; a folder still holding files stays. */
  async removeEmptyFolders(root: string, folder: string): Promise<void> {
    try {
      await this.transfer(['rmdirs', joinRemote(root, folder)], `on ${root}`);
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
  async moveFiles(root: string, toDir: string, paths: Iterable<string>, options: { keepEmptyFolders?: boolean } = {}): Promise<void> {
    const emptied = options.keepEmptyFolders ? [] : ['--delete-empty-src-dirs'];
    await this.transfer(['move', root, toDir, '--files-from-raw', await this.writeList('move', paths), '--no-traverse', '--no-check-dest', ...emptied, ...EXACT_NAMES], `on ${root}`);
  }

  /** Moves one file from one full rclone path to another (server-side where the backend can). */
  async moveTo(from: string, to: string): Promise<void> {
    await this.transfer(['moveto', from, to, ...EXACT_NAMES], `to ${to}`);
  }

  /**
   * Moves one file `fromRoot`/`from` to `toRoot`/`to` (server-side where the backend can) through
   * the run's rcd: no process of its own.
   */
  async moveFile(fromRoot: string, from: string, toRoot: string, to: string): Promise<void> {
    if (fromRoot === toRoot && (await this.locally(fromRoot, () => renameLocal(fromRoot, from, to)))) return;
    await this.perFile([from, to], 'operations/movefile', { srcFs: fromRoot, srcRemote: from, dstFs: toRoot, dstRemote: to }, ['moveto', joinRemote(fromRoot, from), joinRemote(toRoot, to)]);
  }

  /**
   * Moves the folder `from` under root to `to` (which must not exist) in one call: the backend's
   * own folder move where it has one (local, SFTP, Drive, Dropbox), else file by file, server-side.
   */
  async moveFolder(root: string, from: string, to: string): Promise<void> {
    if (await this.locally(root, () => renameLocalFolder(root, from, to))) return;
    await this.perFile([from, to], 'sync/move', { srcFs: joinRemote(root, from), dstFs: joinRemote(root, to), deleteEmptySrcDirs: true }, ['moveto', joinRemote(root, from), joinRemote(root, to)]);
  }

  /** Makes the folder (and those above it) under root; an existing one is fine. */
  async makeFolder(root: string, path: string): Promise<void> {
    if (await this.locally(root, () => makeLocalFolder(root, path))) return;
    await this.perFile([path], 'operations/mkdir', { fs: root, remote: path }, ['mkdir', joinRemote(root, path)]);
  }

  /**
   * Removes the folder under root if it is empty; one that holds anything stays (false). One
   * already gone is fine (true).
   */
  async removeFolder(root: string, path: string): Promise<boolean> {
    const local = await this.locally(root, () => removeLocalFolder(root, path));
    if (local !== undefined && local !== false) return local === 'removed';
    try {
      await this.perFile([path], 'operations/rmdir', { fs: root, remote: path }, ['rmdir', joinRemote(root, path)]);
      return true;
    } catch (error) {
      if (error instanceof RcCallError && error.notFound) return true;
      // Gone, or a file took its name (the plan removed the folder first): no folder there to remove.
      if ((error instanceof RcCallError || error instanceof RcloneError) && /not found|no such file|not a directory/i.test(error.message)) return true;
      if ((error instanceof RcCallError || error instanceof RcloneError) && /not empty|directory not empty/i.test(error.message)) return false;
      throw error;
    }
  }

  /**
   * A per-file operation done here on a plain local root (see local-side.ts); false or undefined
   * when not (another backend, or one to leave to rclone). The calls are synchronous, so now and
   * then the event loop gets a turn (lock heartbeat, signals).
   */
  private async locally<T>(root: string, operation: () => T): Promise<T | false> {
    if (!this.plainLocal(root)) return false;
    if (++this.localOperations % 64 === 0) await yieldToEventLoop();
    this.options.signal?.throwIfAborted();
    return operation();
  }

  /**
   * One per-file operation: a call to the run's rcd, or, for a name that is not valid UTF-8 (it
   * cannot travel in JSON), that rare operation as an rclone process of its own.
   */
  private async perFile(names: readonly string[], method: string, params: Record<string, unknown>, fallback: readonly string[]): Promise<void> {
    if (names.some(hasRawBytes)) await this.transfer([...fallback, ...EXACT_NAMES], `at ${fallback.at(-1)}`);
    else await this.rc(method, params);
  }

  /**
   * Lists the plain local tree `root` into `file` here, in the bytes lsjson would print
   * (local-listing.ts); false to leave it to rclone: another backend, a filter, a hash or a
   * setting only rclone applies, or something in the tree only rclone can answer (the debug log
   * says what).
   */
  private async listHere(root: string, file: string, asked: { filtersFile?: string; hashType?: string; excludedFolders?: readonly string[]; onFolder?: unknown; onWalked?: (files: number) => void }): Promise<boolean> {
    if (asked.filtersFile || asked.hashType || this.options.localListing === 'rclone' || !this.plainLocal(root) || !listsHereLikeRclone({ ...process.env, ...this.options.env })) return false;
    const request = { root, file, excludedFolders: asked.excludedFolders ?? [], foldersListed: asked.onFolder !== undefined };
    const outcome = await listLocalTree(request, { signal: this.options.signal, stallMs: this.options.stallTimeoutMs, onWalked: asked.onWalked });
    if (outcome.kind === 'stalled') {
      throw new RcloneError(`no folder read for ${formatDuration(outcome.idleMs)} from ${redact(root)}: stopped listing it (SYNC_STALL_TIMEOUT)`, undefined, '', false);
    }
    if (outcome.kind === 'declined') {
      this.options.logger.debug({ root: redact(root), reason: outcome.reason }, 'listing with rclone lsjson instead of here');
      return false;
    }
    this.options.logger.debug({ root: redact(root), files: outcome.files, folders: outcome.folders }, 'listed here');
    return true;
  }

  /** A failure in reading a listing made here (its bytes are ours, so this is our bug), or the run stopped. */
  private listedHereError(error: unknown, root: string): RcloneError {
    if (error instanceof RcloneError) return error;
    const cancelled = this.options.signal?.aborted === true;
    return new RcloneError(`listing ${redact(root)} ${cancelled ? 'was stopped' : `failed: ${(error as Error).message}`}`, undefined, '', cancelled);
  }

  private plainLocal(root: string): boolean {
    let plain = this.plainLocalRoots.get(root);
    if (plain === undefined) this.plainLocalRoots.set(root, (plain = isPlainLocal(root, this.options.transferArgs ?? [], process.env)));
    return plain;
  }

  /** One call to the run's rcd, started on first use. */
  private async rc(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.options.signal?.throwIfAborted();
    const client = await this.daemon();
    try {
      return await client.call(method, params);
    } catch (error) {
      if (error instanceof RcCallError) throw error;
      if (this.options.signal?.aborted) throw new RcloneError(`rclone rc ${method} was stopped`, undefined, '', true);
      throw new RcloneError(`rclone rc ${method} failed: ${(error as Error).message}`, undefined, '', false);
    }
  }

  private daemon(): Promise<RcClient> {
    if (this.rcd) return this.rcd.client;
    const credentials = randomCredentials();
    const { args, env } = rcdCommand(credentials);
    let found: (address: string) => void = () => {};
    const listening = new Promise<string>((resolve) => (found = resolve));
    const call = this.start([...args, ...EXACT_NAMES, ...(this.options.transferArgs ?? [])], {
      target: 'rcd',
      env,
      noStall: true,
      onLine: (line) => {
        const address = servingAddress(line);
        if (address) found(address);
      },
    });
    const ended = call.child.done.then(
      () => Promise.reject(new Error('ended')),
      (error: unknown) => Promise.reject(error),
    );
    const client = Promise.race([listening, ended]).then(
      (address) => new RcClient(address, credentials, this.options.signal),
      async (error: unknown) => {
        this.rcd = undefined;
        throw this.toError(error, call, await call.stderr);
      },
    );
    client.catch(() => {});
    ended.catch(() => {});
    this.rcd = { client, call };
    return client;
  }

  private async stopDaemon(): Promise<void> {
    const rcd = this.rcd;
    if (!rcd) return;
    this.rcd = undefined;
    await rcd.client.then((client) => client.close(), () => {});
    rcd.call.watchdog.stop();
    rcd.call.child.kill('SIGTERM');
    await rcd.call.child.done.catch(() => {});
    await rcd.call.stderr;
  }

  /** How many files and bytes `root` holds (nothing when it does not exist). */
  async size(root: string): Promise<{ files: number; bytes: number }> {
    const local = this.plainLocal(root) ? await localTreeSize(root) : undefined;
    if (local) return local;
    try {
      const { stdout } = await this.run(['size', '--json', root], { target: `on ${root}`, stdout: 'collect' });
      const parsed = JSON.parse(stdout) as { count?: number; bytes?: number };
      return { files: parsed.count ?? 0, bytes: parsed.bytes ?? 0 };
    } catch (error) {
      if (error instanceof RcloneError && error.directoryNotFound) return { files: 0, bytes: 0 };
      throw error;
    }
  }

  /** The names of the folders directly under `root`; none when it does not exist. */
  async folderNames(root: string): Promise<string[]> {
    const local = this.plainLocal(root) ? localFolderNames(root) : undefined;
    if (local) return local;
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
    // Filter rules take glob characters: escaped, so each rule names exactly one folder.
    const rules = await this.writeList('purge', [...names.map((name) => `+ /${globEscaped(name)}/**`), '- **']);
    await this.transfer(['delete', root, '--filter-from', rules, '--rmdirs'], `on ${root}`);
  }


  /**
   * Compares contents of the listed files on both roots; returns the paths that match.
   * With `download`, by reading both files; otherwise by a hash both backends support.
   */
  async matchingFiles(root1: string, root2: string, paths: Iterable<string>, download: boolean): Promise<Set<string>> {
    let list = [...paths];
    const matching = new Set<string>();
    if (list.length > 0 && this.plainLocal(root1) && this.plainLocal(root2)) {
      // Two local sides: small files are hashed here (local-side.ts), as rclone check would (md5,
      // which both have); one file at a time, so large ones, which rclone's checkers hash in
      // parallel, are left to it, with whatever could not be read here. In slices, so that a
      // first run over a million files never holds a million hashes.
      const left: string[] = [];
      for (let start = 0; start < list.length; start += LOCAL_CHECK_SLICE) {
        const slice = list.slice(start, start + LOCAL_CHECK_SLICE);
        const one = await hashLocalFiles(root1, slice, 'md5', WHOLE_READ_LIMIT);
        // Side two only where side one could be hashed here: the rest goes to rclone anyway.
        const two = await hashLocalFiles(root2, [...one.hashes.keys()], 'md5', WHOLE_READ_LIMIT);
        for (const path of slice) {
          const hash = two.hashes.get(path);
          if (hash === undefined) left.push(path);
          else if (hash === one.hashes.get(path)) matching.add(path);
        }
      }
      list = left;
      if (list.length === 0) return matching;
    }
    const dir = await this.workDir;
    const matchFile = join(dir, `match-${Date.now()}`);
    const args = ['check', root1, root2, '--files-from-raw', await this.writeList('check', list), '--match', matchFile, ...EXACT_NAMES];
    if (download) args.push('--download');
    try {
      await this.run([...args, ...STATS], { target: `between ${root1} and ${root2}`, reportProgress: true });
    } catch (error) {
      // Exit 1 with differences found is the normal "some differ" answer; the match file is still written.
      if (!(error instanceof RcloneError) || error.cancelled || error.code === undefined || error.code > 1) throw error;
    }
    const bytes = await readFile(matchFile).catch(() => Buffer.alloc(0));
    for (const path of linesOf(bytes).map(decodeName)) matching.add(path);
    return matching;
  }

  /**
   * The contents' hashes of the listed files under root, in one rclone process: by the backend's own
   * hash of that type, or with `download` by reading each file. Absent files are not in the result.
   */
  async hashes(root: string, paths: Iterable<string>, hashType: string, download: boolean): Promise<Map<string, string>> {
    let list = [...paths];
    let found = new Map<string, string>();
    if (list.length > 0 && hashableHere(hashType) && this.plainLocal(root)) {
      // A local side's files are read here: see local-side.ts.
      ({ hashes: found, rest: list } = await hashLocalFiles(root, list, hashType));
    }
    if (list.length === 0) return found;
    const args = ['hashsum', hashType, '--files-from-raw', await this.writeList('hash', list), ...(download ? ['--download'] : []), root, ...STATS];
    let stdout: Buffer;
    try {
      stdout = await this.runForBytes(args, { target: `from ${root}`, reportProgress: true });
    } catch (error) {
      if (error instanceof RcloneError && error.directoryNotFound) return found;
      throw error;
    }
    for (const line of linesOf(stdout)) {
      // "<hash>  <path>": the hash is hex, the path the rest of the line as bytes.
      const gap = line.indexOf('  ');
      if (gap <= 0) continue;
      const hash = line.subarray(0, gap).toString('latin1');
      if (!/^[0-9a-f]+$/i.test(hash)) continue;
      found.set(decodeName(line.subarray(gap + 2)), hash.toLowerCase());
    }
    return found;
  }

  /** `target` says where data goes, for the stall message ("to remote:dir"). */
  private async transfer(args: string[], target: string, onProgress?: (p: TransferProgress) => void): Promise<void> {
    await this.run([...args, ...(this.options.transferArgs ?? []), ...STATS], { target, onProgress, reportProgress: true });
  }

  private async writeList(kind: string, paths: Iterable<string>): Promise<string> {
    const file = join(await this.workDir, `${kind}-${process.hrtime.bigint()}.txt`);
    // --files-from-raw takes each line literally: no comment handling, no trimming of spaces.
    // Written a piece at a time: a first run's list of 1M paths, built whole, held tens of MB
    // twice (the string, then its bytes) at the run's peak.
    const pieces: string[] = [];
    let length = 0;
    const handle = await open(file, 'w');
    try {
      for (const path of paths) {
        pieces.push(path);
        length += path.length + 1;
        if (length < LIST_PIECE_CHARS) continue;
        await handle.write(encodeName(`${pieces.join('\n')}\n`));
        pieces.length = 0;
        length = 0;
      }
      if (pieces.length > 0) await handle.write(encodeName(`${pieces.join('\n')}\n`));
    } finally {
      await handle.close();
    }
    return file;
  }

  /** Starts rclone under a watchdog (SYNC_STALL_TIMEOUT) that stops it when it makes no progress. */
  private start(args: string[], options: CallOptions): Call {
    const fullArgs = [...args, ...defaultArgs(this.options.transferArgs ?? [], { ...process.env, ...this.options.env })];
    this.options.logger.debug({ rclone: fullArgs.map((arg) => redact(printableName(arg))) }, 'rclone');
    // A name that is not valid UTF-8 (renamed or removed by its path) cannot travel in argv as is.
    const command = fullArgs.some(hasRawBytes) ? viaShell([this.options.binary, ...fullArgs]) : [this.options.binary, ...fullArgs];
    // If we are killed outright (SIGKILL, OOM), rclone must not go on copying on its own while a
    // later run takes over the pair: the kernel kills it with us (prctl PR_SET_PDEATHSIG).
    const [file, ...fileArgs] = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...command] : command;
    const child = spawnChild(file!, fileArgs, {
      env: { ...process.env, ...this.options.env, ...options.env },
      stdout: options.stdout ?? 'ignore',
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      // Also after a stall: SIGTERM, then SIGKILL for an rclone that does not end on its own.
      forceKillAfterMs: 3000,
    });
    const target = redact(printableName(options.target));
    const watchdog = new Watchdog({
      stallMs: options.noStall ? 0 : (this.options.stallTimeoutMs ?? 0),
      reportEveryMs: PROGRESS_REPORT_MS,
      onStall: () => child.kill('SIGTERM'),
      ...(options.reportProgress
        ? {
            onReport: (p: TransferProgress, bytesPerSecond: number) =>
              this.options.logger.info(
                { target, bytes: p.bytes, totalBytes: p.totalBytes, files: p.transfers, totalFiles: p.totalTransfers, bytesPerSecond: Math.round(bytesPerSecond) },
                `rclone ${args[0]} in progress`,
              ),
          }
        : {}),
    });
    const stderr = this.collectStderr(
      child,
      (stats) => {
        watchdog.stats(stats);
        options.onProgress?.(stats);
      },
      options.onLine,
    );
    return { child, watchdog, stderr, args: fullArgs, target };
  }

  private collectStderr(child: Child, onStats: (stats: TransferProgress) => void, onLine?: (line: string) => void): Promise<string[]> {
    return (async () => {
      const tail: string[] = [];
      try {
        for await (const text of child.stderrLines) {
          if (NOISE.test(text)) continue;
          const stats = parseStats(text);
          if (stats) {
            onStats(stats);
            continue;
          }
          onLine?.(text);
          tail.push(text);
          if (tail.length > STDERR_TAIL_LINES) tail.shift();
        }
      } catch {
        // The subprocess failing is reported by awaiting it, not here.
      }
      return tail;
    })();
  }

  /** Output that may hold names in bytes that are not UTF-8 (Node would replace them when decoding). */
  private async runForBytes(args: string[], options: CallOptions): Promise<Buffer> {
    const call = this.start(args, { ...options, stdout: 'stream' });
    const chunks: Buffer[] = [];
    return this.settle(call, async () => {
      for await (const chunk of call.child.stdout as AsyncIterable<Buffer>) {
        call.watchdog.activity();
        chunks.push(chunk);
      }
      await call.child.done;
      return Buffer.concat(chunks);
    });
  }

  private async run(args: string[], options: CallOptions): Promise<{ stdout: string }> {
    const call = this.start(args, options);
    return this.settle(call, () => call.child.done);
  }

  /** Waits for `work` on a started rclone; its failure becomes an RcloneError. */
  private async settle<T>(call: Call, work: () => Promise<T>): Promise<T> {
    try {
      const value = await work();
      await call.stderr;
      return value;
    } catch (error) {
      throw this.toError(error, call, await call.stderr);
    } finally {
      call.watchdog.stop();
    }
  }

  private toError(error: unknown, call: Call, stderrTail: string[]): RcloneError {
    if (error instanceof RcloneError) return error;
    const { args } = call;
    const e = error instanceof SubprocessError ? error : { exitCode: undefined, isCanceled: false, code: undefined };
    const cancelled = e.isCanceled === true || this.options.signal?.aborted === true;
    const tail = stderrTail.map((line) => redact(summarizeLogLine(line))).join('\n');
    const notFound = SETPRIV && e.exitCode === 127 && stderrTail.some((line) => line.includes('failed to execute'));
    if (e.code === 'ENOENT' || notFound) {
      return new RcloneError(`rclone executable "${this.options.binary}" not found (set SYNC_RCLONE_BINARY or install rclone)`, undefined, '', false);
    }
    if (call.watchdog.stalled && !cancelled) {
      const idle = formatDuration(this.options.stallTimeoutMs ?? 0);
      return new RcloneError(`no data moved for ${idle} ${call.target}: stopped rclone ${args[0]} (SYNC_STALL_TIMEOUT)`, e.exitCode, tail, false);
    }
    const what = `rclone ${redact(args.slice(0, 3).map(printableName).join(' '))}`;
    // Not rclone's failure but ours in reading what it printed: say what.
    if (error instanceof UnreadableOutput && !cancelled) return new RcloneError(`${what}: ${error.message}`, undefined, tail, false);
    const message = cancelled
      ? `${what} was stopped`
      : `${what} failed${e.exitCode !== undefined ? ` with exit code ${e.exitCode}` : ''}${tail ? `: ${lastMeaningfulLine(stderrTail)}` : ''}`;
    return new RcloneError(message, e.exitCode, tail, cancelled);
  }
}

/** The rclone rule that leaves out `folder` (relative to the root) and all it holds; glob characters in its name are escaped. */
export const excludeRuleFor = (folder: string): string => `/${globEscaped(folder)}/**`;

/** The lsjson line bytes[start, end): a file, or undefined for a folder (reported to onFolder) and for "[" and "]". */
export function parseListLine(bytes: Buffer, start: number, end: number, hashType: string | undefined, onFolder?: (path: string) => void): ListedFile | undefined {
  // Lines are "[", "]", or "{...}" with a trailing comma on all but the last entry.
  const entry = parseLsjsonBytes(bytes, start, end, hashType);
  if (!entry) return undefined;
  if (entry.isDir) {
    onFolder?.(entry.path);
    return undefined;
  }
  if (Number.isNaN(entry.mtime)) throw unreadableModTime(bytes.toString('utf8', start, end));
  return { path: entry.path, meta: { size: entry.size, mtime: entry.mtime, hash: entry.hash } };
}

/** The error for a time we cannot read, quoting rclone's text. */
function unreadableModTime(line: string): Error {
  const text = line.endsWith(',') ? line.slice(0, -1) : line;
  const modTime = String((JSON.parse(text) as { ModTime?: unknown }).ModTime);
  return new UnreadableOutput(`rclone printed a modification time we cannot read: "${modTime}"`);
}

/** What rclone printed could not be read (or was not read whole): the listing cannot be trusted. */
class UnreadableOutput extends Error {}

function linesOf(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  for (let start = 0; start < bytes.length; ) {
    const end = bytes.indexOf(NEWLINE, start);
    const stop = end === -1 ? bytes.length : end;
    if (stop > start) lines.push(bytes.subarray(start, stop));
    start = stop + 1;
  }
  return lines;
}

/** `rclone lsl` lines: size padded to 9, "2006-01-02 15:04:05.000000000" (local time), the name as bytes. */
const LONG_LISTING_PREFIX = /^ *(-?\d+) (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+) /;

export function parseLongListing(stdout: Buffer): { path: string; size: number; mtime: number }[] {
  const entries: { path: string; size: number; mtime: number }[] = [];
  for (const line of linesOf(stdout)) {
    // The prefix is ASCII, so its length in latin1 characters is its length in bytes.
    const prefix = LONG_LISTING_PREFIX.exec(line.subarray(0, 64).toString('latin1'));
    if (!prefix) continue;
    entries.push({ path: decodeName(line.subarray(prefix[0].length)), size: Number(prefix[1]), mtime: parseModTime(`${prefix[2]}T${prefix[3]}Z`) });
  }
  return entries;
}

/** RFC 3339 with up to nanoseconds; we keep milliseconds (exact equality is all a side compares against itself). */
export function parseModTime(text: string): number {
  const value = modTimeMs(text);
  if (Number.isNaN(value)) throw new Error(`rclone printed a modification time we cannot read: "${text}"`);
  return value;
}

export function parseStats(line: string): TransferProgress | undefined {
  if (!line.startsWith('{') || !line.includes('"stats"')) return undefined;
  try {
    const { stats } = JSON.parse(line) as { stats?: Partial<Record<keyof TransferProgress, number>> };
    if (!stats) return undefined;
    const count = (key: keyof TransferProgress) => stats[key] ?? 0;
    return {
      bytes: count('bytes'),
      totalBytes: count('totalBytes'),
      transfers: count('transfers'),
      totalTransfers: count('totalTransfers'),
      errors: count('errors'),
      checks: count('checks'),
      deletes: count('deletes'),
      renames: count('renames'),
    };
  } catch {
    return undefined;
  }
}

/** JSON log lines ({"level":"error","msg":"...","object":"..."}) become "object: msg". */
export function summarizeLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const parsed = JSON.parse(line) as { msg?: string; object?: string };
    return parsed.object ? `${parsed.object}: ${parsed.msg ?? ''}` : (parsed.msg ?? line);
  } catch {
    return line;
  }
}

export function lastMeaningfulLine(lines: string[]): string {
  for (let i = lines.length - 1; i >= 0; i--) {
    const summary = summarizeLogLine(lines[i]!).trim();
    if (summary) return redact(summary.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, ''));
  }
  return '';
}
