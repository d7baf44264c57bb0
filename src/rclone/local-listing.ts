/**
 * A plain local side's whole listing, made here instead of by `rclone lsjson -R`, in the very
 * bytes lsjson prints: one JSON line per entry, each folder's entries together and in name order,
 * files as `{"Path","Name","Size","ModTime","IsDir":false}`, folders with `"Size":-1`. Everything
 * downstream (the blocks' digests, the line reader, the engine) reads it as it reads rclone's.
 *
 * Why: a no-change run is its two listings. lsjson cost ~8 µs of CPU a file (1.55 s for two sides
 * of 100,000 files, on two cores that the engine shares with it), readdir and lstat here ~5 µs
 * (0.95 s), measured once on a loaded machine; a worker thread per side lists both at once
 * beside the engine.
 *
 * What it does exactly as rclone's local backend (backend/local/local.go, List and Storable): files
 * are regular files, folders are real folders (not links to them); symbolic links, sockets, pipes
 * and devices are left out (rclone logs "Can't follow symlink" or "Can't transfer non
 * file/directory" and leaves them out); a file gone between readdir and lstat is left out; times
 * are the lstat time to the nanosecond (in UTC, as rclone prints them with TZ=UTC), sizes lstat's.
 * Names are escaped as Go's encoding/json escapes them (`&`, `<`, `>` as \u00XX too; control
 * characters never reach it, see NOT_LISTED_ALIKE).
 *
 * Only where that is all lsjson would do: the caller lists here only without filters, hashes or
 * settings that change what a local listing holds (`listsHereLikeRclone`); the folders it leaves
 * out are named as paths, not rules. Anything this module cannot answer exactly — a name rclone's encoding maps or
 * that is not UTF-8, a folder it cannot read, a time outside the years 0000–9999 — it declines,
 * and the caller lists with rclone, which then reports what it reports. It never half-answers: the
 * caller reads the file only once it is complete.
 *
 * The module is also the worker's entry (see the end): it imports only node's own modules.
 */
import { closeSync, lstatSync, openSync, readdirSync, writeSync, type Dirent } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** Characters rclone's local encoding (lib/encoder Base) maps, or quotes with U+201B. */
export const ENCODED_BY_RCLONE = /[\u201B\u2400-\u243F\uFF00-\uFFEF]/u;
/**
 * Names lsjson does not print as they are on disk: the characters above; control characters and
 * DEL, which rclone maps to U+2401-U+241F and U+2421 ("a\nb" lists as "a␊b"); and U+FFFD, what
 * bytes that are not UTF-8 read as here (rclone.ts reads those names again from lsl).
 */
const NOT_LISTED_ALIKE = /[\u0000-\u001F\u007F\u201B\u2400-\u243F\uFF00-\uFFEF\uFFFD]/u;

/**
 * RCLONE_* variables that change what `rclone lsjson -R` prints of a local tree (rclone takes any
 * flag's default from RCLONE_<FLAG>): the filters, links, the local backend's options, lsjson's own
 * flags. With any of them set, rclone lists. Others (RCLONE_CONFIG_*, RCLONE_TRANSFERS, names that
 * are no flag of rclone's) leave a listing as it is.
 */
const CHANGES_A_LISTING =
  /^RCLONE_(LOCAL_.*|LINKS|COPY_LINKS|SKIP_LINKS|ONE_FILE_SYSTEM|NO_CHECK_UPDATED|NOUNC|CASE_(IN)?SENSITIVE|ZERO_SIZE_LINKS|UNICODE_NORMALIZATION|ENCODING|FILTER(_FROM)?|EXCLUDE(_FROM|_IF_PRESENT)?|INCLUDE(_FROM)?|FILES_FROM(_RAW)?|MIN_AGE|MAX_AGE|MIN_SIZE|MAX_SIZE|IGNORE_CASE|MAX_DEPTH|METADATA.*|RECURSIVE|R|FILES_ONLY|DIRS_ONLY|HASH(_TYPE)?|NO_MODTIME|NO_MIMETYPE|ORIGINAL|ENCRYPTED|SHOW_ENCRYPTED|STAT|M|FAST_LIST|DEFAULT_TIME)$/;

export function listsHereLikeRclone(env: NodeJS.ProcessEnv): boolean {
  return !Object.keys(env).some((name) => env[name] !== undefined && CHANGES_A_LISTING.test(name));
}

/**
 * How a listing here ended: listed (the file is complete), declined (rclone is to list), or
 * stalled (no folder read for SYNC_STALL_TIMEOUT: a hung mount, which would hang rclone too).
 */
export type LocalListing =
  | { readonly kind: 'listed'; readonly files: number; readonly folders: number }
  | { readonly kind: 'declined'; readonly reason: string }
  | { readonly kind: 'stalled'; readonly idleMs: number };

interface ListingRequest {
  readonly root: string;
  /** Written from its start: lsjson's bytes, complete only when the answer is `listed`. */
  readonly file: string;
  readonly excludedFolders: readonly string[];
  /** Folders' own lines too (lsjson without --files-only); the walk goes through them either way. */
  readonly foldersListed: boolean;
}

interface ListingControls {
  /** Stopping it stops the listing (and rejects with its reason). */
  readonly signal?: AbortSignal | undefined;
  /** SYNC_STALL_TIMEOUT: how long the walk may go without reading a folder; 0 never stalls. */
  readonly stallMs?: number | undefined;
  /** The files found so far, every few thousand entries: a walk of a million takes seconds, and a status shows it moving. */
  readonly onWalked?: ((files: number) => void) | undefined;
}

const WORKER_MARK = 'rclonesync local listing';
/** The walk tells the thread that started it it is moving (and how many files it found) every this many entries. */
const ENTRIES_PER_HEARTBEAT = 4096;

type WorkerMessage = LocalListing | { readonly kind: 'moving'; readonly files: number };

/** Lists `root` into `file` in a worker thread. */
export function listLocalTree(request: ListingRequest, { signal, stallMs = 0, onWalked }: ListingControls = {}): Promise<LocalListing> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    const worker = new Worker(new URL(import.meta.url), { workerData: { [WORKER_MARK]: request } });
    let settled = false;
    let movedAt = Date.now();
    // One timer a stall period, not one a heartbeat (as watchdog.ts does for rclone's lines).
    let stallTimer: NodeJS.Timeout | undefined;
    const watch = (delay: number): void => {
      stallTimer = setTimeout(() => {
        const idle = Date.now() - movedAt;
        if (idle < stallMs) return watch(stallMs - idle);
        settle({ kind: 'stalled', idleMs: idle });
        void worker.terminate();
      }, delay);
    };
    if (stallMs > 0) watch(stallMs);
    const settle = (outcome: LocalListing | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(stallTimer);
      signal?.removeEventListener('abort', stop);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const stop = (): void => {
      settle(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
      void worker.terminate();
    };
    signal?.addEventListener('abort', stop, { once: true });
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind !== 'moving') return settle(message);
      movedAt = Date.now();
      if (!settled) onWalked?.(message.files);
    });
    // A worker that fails (out of memory, a bug) is a listing declined: rclone lists instead.
    worker.once('error', (error) => settle({ kind: 'declined', reason: `the listing thread failed: ${error.message}` }));
    worker.once('exit', (code) => settle({ kind: 'declined', reason: `the listing thread exited with code ${code}` }));
  });
}

/** Raised inside the walk to decline; its message says why. */
class Declined extends Error {}

const GO_ESCAPED = /[&<>\u2028\u2029]/g;
const NEEDS_ESCAPING = /["\\&<>\u2028\u2029]/;
const WRITE_BUFFER = 1 << 20;

/** A name as Go's encoding/json prints it, quotes included. */
function quoted(name: string): string {
  if (!NEEDS_ESCAPING.test(name)) return `"${name}"`;
  return JSON.stringify(name).replace(GO_ESCAPED, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const NS_PER_SECOND = 1_000_000_000n;

/** lstat's time as lsjson prints it in UTC ("2006-01-02T15:04:05.000000000Z"); most files of a folder share a second. */
class TimeText {
  private second: bigint | undefined;
  private prefix = '';

  of(ns: bigint): string {
    // Floor, also before 1970 (BigInt division truncates towards zero).
    let second = ns / NS_PER_SECOND;
    if (second * NS_PER_SECOND > ns) second -= 1n;
    if (second !== this.second) {
      const iso = new Date(Number(second) * 1000).toISOString();
      if (!/^\d{4}-/.test(iso)) throw new Declined(`a modification time outside the years 0000-9999 (${iso})`);
      this.second = second;
      this.prefix = iso.slice(0, -4);
    }
    return `${this.prefix}${String(ns - second * NS_PER_SECOND).padStart(9, '0')}Z`;
  }
}

/** Writes lines into the file through one reused buffer, joined as lsjson joins them ("[", entries with ",\n" between them, "]"). */
class LineWriter {
  private readonly fd: number;
  private buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  private used = 0;
  private entries = 0;

  constructor(file: string) {
    this.fd = openSync(file, 'w', 0o600);
    this.raw('[\n');
  }

  entry(line: string): void {
    this.raw(this.entries++ === 0 ? line : `,\n${line}`);
  }

  close(): void {
    this.raw(this.entries === 0 ? ']\n' : '\n]\n');
    this.flush();
    closeSync(this.fd);
  }

  private raw(text: string): void {
    const most = text.length * 3;
    if (this.used + most > this.buffer.length) {
      this.flush();
      if (most > this.buffer.length) this.buffer = Buffer.allocUnsafe(most);
    }
    this.used += this.buffer.write(text, this.used);
  }

  private flush(): void {
    for (let at = 0; at < this.used; ) at += writeSync(this.fd, this.buffer, at, this.used - at);
    this.used = 0;
  }
}

/** Characters whose UTF-16 order is not their UTF-8 order: surrogates (past U+FFFF) against U+E000-U+FFFF. */
const ORDERED_APART = /[\uD800-\uFFFF]/;
const byCodeUnits = (a: Dirent, b: Dirent): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const byBytes = (a: Dirent, b: Dirent): number => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));

/** A folder's entries in Go's string order (UTF-8 bytes), as rclone sorts them; most folders need no bytes for it. */
function sortByName(entries: Dirent[]): void {
  entries.sort(entries.some((entry) => ORDERED_APART.test(entry.name)) ? byBytes : byCodeUnits);
}

/** The walk itself (in the worker): every folder's entries, sorted, then its subfolders'. */
export function writeLocalListing({ root, file, excludedFolders: excluded, foldersListed }: ListingRequest, onMoving: (files: number) => void = () => {}): LocalListing {
  const rootInfo = lstatSync(root, { throwIfNoEntry: false });
  // A root that is missing, a file or a link: rclone says what that means.
  if (!rootInfo?.isDirectory()) return { kind: 'declined', reason: rootInfo ? 'the root is not a folder' : 'the root does not exist' };
  const skip = new Set(excluded);
  const writer = new LineWriter(file);
  const times = new TimeText();
  const base = root.endsWith('/') ? root : `${root}/`;
  let files = 0;
  let folders = 0;
  try {
    /** Folders still to read: relative path, and its JSON text without the closing quote, plus "/". */
    const pending: [path: string, quotedPrefix: string][] = [['', '"']];
    for (let next = pending.pop(); next; next = pending.pop()) {
      const [folder, prefix] = next;
      let entries: Dirent[];
      try {
        entries = readdirSync(folder === '' ? root : base + folder, { withFileTypes: true });
      } catch (error) {
        throw new Declined(`cannot read the folder "${folder}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      sortByName(entries);
      for (const entry of entries) {
        const { name } = entry;
        if (NOT_LISTED_ALIKE.test(name)) throw new Declined(`a name rclone maps or cannot print as it is, in "${folder}"`);
        const isFolder = entry.isDirectory();
        if (!isFolder && !entry.isFile()) continue;
        const path = folder === '' ? name : `${folder}/${name}`;
        if (isFolder && skip.has(path)) continue;
        const info = lstatSync(base + path, { bigint: true, throwIfNoEntry: false });
        // Gone since readdir, or no longer of its kind: left out, as rclone's walk leaves it.
        if (!info || (isFolder ? !info.isDirectory() : !info.isFile())) continue;
        const text = quoted(name);
        const pathText = prefix === '"' ? text : prefix + text.slice(1);
        const time = times.of(info.mtimeNs);
        if (isFolder) {
          if (foldersListed) writer.entry(`{"Path":${pathText},"Name":${text},"Size":-1,"ModTime":"${time}","IsDir":true}`);
          pending.push([path, `${pathText.slice(0, -1)}/`]);
          folders++;
        } else {
          writer.entry(`{"Path":${pathText},"Name":${text},"Size":${info.size},"ModTime":"${time}","IsDir":false}`);
          files++;
        }
        if ((files + folders) % ENTRIES_PER_HEARTBEAT === 0) onMoving(files);
      }
    }
  } catch (error) {
    if (error instanceof Declined) return { kind: 'declined', reason: error.message };
    throw error;
  } finally {
    writer.close();
  }
  return { kind: 'listed', files, folders };
}

// The worker's entry: this module, started by listLocalTree.
if (!isMainThread && (workerData as Record<string, unknown> | null)?.[WORKER_MARK]) {
  let outcome: WorkerMessage;
  try {
    outcome = writeLocalListing((workerData as Record<string, ListingRequest>)[WORKER_MARK]!, (files) => parentPort!.postMessage({ kind: 'moving', files } satisfies WorkerMessage));
  } catch (error) {
    outcome = { kind: 'declined', reason: (error as Error).message };
  }
  parentPort!.postMessage(outcome);
}
