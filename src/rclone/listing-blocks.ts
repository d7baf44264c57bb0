/**
 * A listing's lines cut into blocks, one per folder, and a digest of each block's bytes: what lets
 * a run that changes nothing know so without reading a line of its listings (state/listing-digests.ts
 * keeps the last run's digests; Rclone.list only cuts and hashes while they match; the engine's
 * observe step ends the run when both sides did).
 *
 * lsjson prints each folder's entries together and in name order (rclone's walk hands the printer
 * one folder's sorted entries at a time, under a lock), while the folders come in a different
 * order each run. Two listings with the same multiset of blocks hold the same lines. The cut
 * (where the parent folder in "Path" changes) only has to be deterministic, not right: equal
 * multisets of blocks mean equal multisets of lines however they were cut, so a listing cut
 * differently (--fast-list, an escaped quote in a name) is only never found unchanged.
 *
 * Each entry line is hashed as it reads without its trailing comma, plus ",\n" (lsjson leaves the
 * comma off the last entry, and which folder comes last varies). A folder's line is hashed without
 * its ModTime: the engine knows folders by their paths alone, a folder's time on disk changes with
 * what it holds (whose own lines say so), and bucket stores give folders the time of the listing.
 */
import { createHash, type Hash } from 'node:crypto';

/** Digest (base64 sha1 of the block's bytes) → the files in the block. */
export type BlockDigests = Map<string, number>;

const NEWLINE = 0x0a;
const COMMA = 0x2c;
const QUOTE = 0x22;
const SLASH = 0x2f;
const PATH_KEY = Buffer.from('{"Path":"');
const MODTIME_KEY = Buffer.from('"ModTime":"');
const FOLDER_MARK = Buffer.from(',"IsDir":true');
const FILE_END = Buffer.from('"IsDir":false');
const CLOSE = 0x7d;
const ENTRY_END = Buffer.from(',\n');
/**
 * What a listing must not hold to be taken as unchanged from its bytes: a name lsjson could not
 * print exactly (rclone.ts reads those again with lsl; two such names can print alike) and names
 * with a line break (skipped with a warning every run).
 */
const INEXACT = [Buffer.from('\\ufffd'), Buffer.from('\uFFFD'), Buffer.from('\\n'), Buffer.from('\\r')];

export class BlockDigester {
  /** Every block so far; a digest seen twice makes the listing `repeated`. */
  readonly digests: BlockDigests = new Map();
  repeated = false;
  /** The listing holds a name that its bytes do not tell exactly (see INEXACT). */
  inexact = false;
  private readonly onBlock: (digest: string, files: number) => void;
  private hash: Hash | undefined;
  private parent = Buffer.alloc(0);
  private files = 0;
  /** Where the current run of whole lines not yet hashed starts, in the current chunk. */
  private pending = 0;

  /** `onBlock` hears of each block as it is complete. */
  constructor(onBlock: (digest: string, files: number) => void = () => {}) {
    this.onBlock = onBlock;
  }

  /** Before the lines of a chunk (of whole lines) are given. */
  beginChunk(chunk: Buffer): void {
    this.pending = 0;
    if (!this.inexact && INEXACT.some((pattern) => chunk.includes(pattern))) this.inexact = true;
  }

  /**
   * The line chunk[start, end) (end at its newline or the chunk's end); `isFile` when it was read
   * (false for a folder), undefined when it was not.
   */
  line(chunk: Buffer, start: number, end: number, isFile: boolean | undefined): void {
    const entry = end - start >= PATH_KEY.length && startsWith(chunk, start, PATH_KEY);
    if (!entry) {
      // "[" or "]" (or a line we cannot place): not part of any block.
      this.flush(chunk, start);
      this.pending = end + 1;
      return;
    }
    const pathStart = start + PATH_KEY.length;
    let pathEnd = chunk.indexOf(QUOTE, pathStart);
    if (pathEnd === -1 || pathEnd > end) pathEnd = end;
    let parentEnd = pathEnd;
    while (parentEnd > pathStart && chunk[parentEnd - 1] !== SLASH) parentEnd--;
    if (!this.hash || this.parent.length !== parentEnd - pathStart || !startsWith(chunk, pathStart, this.parent)) {
      this.flush(chunk, start);
      this.endBlock();
      this.hash = createHash('sha1');
      this.parent = Buffer.from(chunk.subarray(pathStart, parentEnd));
    }
    if (isFile) this.files++;
    const modTime = isFile === true || endsAsFile(chunk, end) ? undefined : folderModTime(chunk, pathEnd, end);
    // Most lines are hashed with the run of whole lines they belong to; the others on their own:
    // a folder (without its time), the last entry (no comma), a line without its newline.
    if (!modTime && chunk[end - 1] === COMMA && chunk[end] === NEWLINE) return;
    this.flush(chunk, start);
    const stop = chunk[end - 1] === COMMA ? end - 1 : end;
    if (modTime) {
      this.hash!.update(chunk.subarray(start, modTime.start));
      this.hash!.update(chunk.subarray(modTime.end, stop));
    } else this.hash!.update(chunk.subarray(start, stop));
    this.hash!.update(ENTRY_END);
    this.pending = end + 1;
  }

  /** After the chunk's lines: what is not hashed yet of it is hashed now (its memory is reused). */
  endChunk(chunk: Buffer): void {
    this.flush(chunk, chunk.length);
  }

  /** After the last chunk. */
  finish(): void {
    this.endBlock();
  }

  private flush(chunk: Buffer, upTo: number): void {
    if (this.hash && upTo > this.pending) this.hash.update(chunk.subarray(this.pending, upTo));
    this.pending = Math.max(this.pending, upTo);
  }

  private endBlock(): void {
    if (!this.hash) return;
    const digest = this.hash.digest('base64');
    if (this.digests.has(digest)) this.repeated = true;
    this.digests.set(digest, this.files);
    this.hash = undefined;
    this.files = 0;
    this.onBlock(digest, this.digests.get(digest)!);
  }
}

/**
 * Whether chunk holds `bytes` at `at`. A loop, not Buffer.compare: the keys and parents compared
 * are short, and there are two such comparisons a line; a native call each cost more than this.
 */
function startsWith(chunk: Buffer, at: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (chunk[at + i] !== bytes[i]) return false;
  return true;
}

/** The common shape of a file's line ends so (`"IsDir":false}`, then a comma but on the last line). */
function endsAsFile(chunk: Buffer, end: number): boolean {
  const close = chunk[end - 1] === COMMA ? end - 2 : end - 1;
  return chunk[close] === CLOSE && close >= FILE_END.length && startsWith(chunk, close - FILE_END.length, FILE_END);
}

/** Where the ModTime value of a folder's line is, from the end of its path to the line's end; undefined for a file. */
function folderModTime(chunk: Buffer, from: number, end: number): { start: number; end: number } | undefined {
  const key = chunk.indexOf(MODTIME_KEY, from);
  if (key === -1 || key >= end) return undefined;
  const start = key + MODTIME_KEY.length;
  const close = chunk.indexOf(QUOTE, start);
  if (close === -1 || close + FOLDER_MARK.length > end) return undefined;
  return chunk.compare(FOLDER_MARK, 0, FOLDER_MARK.length, close + 1, close + 1 + FOLDER_MARK.length) === 0 ? { start, end: close } : undefined;
}

/**
 * Whether both listings of a pair hold exactly the last run's blocks. One side's listing alone
 * is no use: a side found unchanged still has to be read when the other side changed (detection
 * needs both), so a side that ends unchanged waits here for the other's verdict.
 */
export class PairVerdict {
  missed = false;
  readonly settled: Promise<void>;
  private unchangedSides = 0;
  private settle: () => void = () => {};
  private readonly onMiss: () => void;

  /** `onMiss` is called once, at the first block that either side's last listing did not have. */
  constructor(onMiss: () => void = () => {}) {
    this.onMiss = onMiss;
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  miss(): void {
    if (this.missed) return;
    this.missed = true;
    this.onMiss();
    this.settle();
  }

  sideUnchanged(): void {
    if (++this.unchangedSides === 2) this.settle();
  }
}

/**
 * One listing's blocks held against the last run's (`expected`): while every block is one of
 * them and the other side's are too, list() only cuts and hashes lines (`skipping`); from the
 * first that is not, list() reads every line, from the start. Filled in as the listing goes.
 */
export class BlockComparison {
  readonly expected: BlockDigests | undefined;
  /** The files of the blocks matched so far (for progress), while skipping. */
  filesMatched = 0;
  digester: BlockDigester;
  private readonly verdict: PairVerdict;
  private matching: boolean;

  constructor(expected: BlockDigests | undefined, verdict: PairVerdict) {
    this.expected = expected;
    this.verdict = verdict;
    this.matching = expected !== undefined;
    if (!this.matching) verdict.miss();
    this.digester = this.newDigester();
  }

  /** Lines are only being cut and hashed, not read. */
  get skipping(): boolean {
    return this.matching && !this.verdict.missed;
  }

  /** The lines of a chunk, cut and hashed but not read. */
  skim(chunk: Buffer): void {
    this.digester.beginChunk(chunk);
    for (let start = 0, end = 0; start < chunk.length; start = end + 1) {
      end = chunk.indexOf(NEWLINE, start);
      if (end === -1) end = chunk.length;
      this.digester.line(chunk, start, end, undefined);
    }
    this.digester.endChunk(chunk);
    if (this.digester.inexact) this.miss();
  }

  /**
   * After the last chunk was skimmed: true when this listing holds exactly the expected blocks
   * and so does the other side's (waited for); false when either does not, and lines must be read.
   */
  async finishSkimming(): Promise<boolean> {
    this.digester.finish();
    const { digests, repeated, inexact } = this.digester;
    if (repeated || inexact || digests.size !== this.expected!.size) this.miss();
    if (!this.skipping) return false;
    this.verdict.sideUnchanged();
    await this.verdict.settled;
    return this.skipping;
  }

  /** Lines are read from the start: the blocks are counted afresh. */
  restart(): void {
    this.matching = false;
    this.filesMatched = 0;
    this.digester = this.newDigester();
  }

  /** After the last chunk was read. */
  finish(): void {
    this.digester.finish();
  }

  /** The listing failed: the other side must not wait for it. */
  abandon(): void {
    this.miss();
  }

  /** This listing's blocks, for the next run; undefined when they cannot stand for it. */
  get digests(): BlockDigests | undefined {
    const { digests, repeated, inexact } = this.digester;
    return repeated || inexact ? undefined : digests;
  }

  private newDigester(): BlockDigester {
    return new BlockDigester((digest) => {
      if (!this.skipping) return;
      const files = this.expected!.get(digest);
      if (files === undefined) this.miss();
      else this.filesMatched += files;
    });
  }

  private miss(): void {
    this.matching = false;
    this.verdict.miss();
  }
}
