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
import { BACKSLASH, CLOSE_BRACE, COMMA, NEWLINE, QUOTE, SLASH } from '../bytes.ts';

/** What is known of one block: enough to stand in for its lines when it comes again unchanged. */
export interface BlockRecord {
  /** The files among its lines. */
  readonly files: number;
  /**
   * The folder whose entries it holds, as the engine spells paths ('' for the root, else ending in
   * "/"); undefined when its bytes do not tell it exactly (an escaped quote in the path).
   */
  readonly parent: string | undefined;
  /** The folders its lines name (the subfolders of `parent`). */
  readonly folders: readonly string[];
}

/** Digest (base64 sha1 of the block's bytes) → what the block holds. */
export type BlockDigests = Map<string, BlockRecord>;

/** Where a block's lines are in the listing's bytes: [start, end). */
export interface BlockSpan {
  readonly start: number;
  readonly end: number;
  readonly parent: string | undefined;
  /** Its entries' lines (files and folders). */
  readonly lines: number;
}

const PATH_KEY = Buffer.from('{"Path":"');
const MODTIME_KEY = Buffer.from('"ModTime":"');
const FOLDER_MARK = Buffer.from(',"IsDir":true');
const FILE_END = Buffer.from('"IsDir":false');
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
  private readonly onBlock: (digest: string, record: BlockRecord, span: BlockSpan) => void;
  private hash: Hash | undefined;
  private parent = Buffer.alloc(0);
  private files = 0;
  private lines = 0;
  /** The current block's folder (see BlockRecord.parent), where it starts, and the folders it names. */
  private placed: string | undefined;
  private blockStart = 0;
  private folders: string[] = [];
  /** Where the current chunk starts in the listing, and where the bytes given so far end. */
  private offset = 0;
  private inputEnd = 0;
  /** Where the current run of whole lines not yet hashed starts, in the current chunk. */
  private pending = 0;

  /** `onBlock` hears of each block as it is complete. */
  constructor(onBlock: (digest: string, record: BlockRecord, span: BlockSpan) => void = () => {}) {
    this.onBlock = onBlock;
  }

  /** Before the lines of a chunk (of whole lines) are given; `offset` is where it starts in the listing. */
  beginChunk(chunk: Buffer, offset = this.inputEnd): void {
    this.pending = 0;
    this.offset = offset;
    this.inputEnd = offset + chunk.length;
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
    // The first quote ends the path unless it is an escaped one: then this line's cut is not its
    // folder, and the block it falls in cannot say which folders it holds.
    const cutAtFolder = pathEnd < end && chunk[pathEnd - 1] !== BACKSLASH;
    if (!this.hash || this.parent.length !== parentEnd - pathStart || !startsWith(chunk, pathStart, this.parent)) {
      this.flush(chunk, start);
      this.endBlock(this.offset + start);
      this.hash = createHash('sha1');
      this.parent = Buffer.from(chunk.subarray(pathStart, parentEnd));
      this.blockStart = this.offset + start;
      this.placed = cutAtFolder ? decodedParent(this.parent) : undefined;
    } else if (!cutAtFolder) this.placed = undefined;
    if (isFile) this.files++;
    this.lines++;
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

  /** The folder that the line just given names (when it was read): part of its block's record. */
  folderLine(path: string): void {
    this.folders.push(path);
  }

  /** After the chunk's lines: what is not hashed yet of it is hashed now (its memory is reused). */
  endChunk(chunk: Buffer): void {
    this.flush(chunk, chunk.length);
  }

  /** After the last chunk. */
  finish(): void {
    this.endBlock(this.inputEnd);
  }

  private flush(chunk: Buffer, upTo: number): void {
    if (this.hash && upTo > this.pending) this.hash.update(chunk.subarray(this.pending, upTo));
    this.pending = Math.max(this.pending, upTo);
  }

  private endBlock(end: number): void {
    if (!this.hash) return;
    const digest = this.hash.digest('base64');
    if (this.digests.has(digest)) this.repeated = true;
    const record: BlockRecord = { files: this.files, parent: this.placed, folders: this.folders };
    this.digests.set(digest, record);
    this.hash = undefined;
    this.files = 0;
    const lines = this.lines;
    this.lines = 0;
    this.folders = [];
    this.onBlock(digest, record, { start: this.blockStart, end, parent: record.parent, lines });
  }
}

/**
 * A block's folder from the bytes of its cut (JSON text, "dir/sub/" or empty): escapes, rare in
 * paths, are undone by JSON.parse; undefined when that fails.
 */
function decodedParent(bytes: Buffer): string | undefined {
  if (!bytes.includes(BACKSLASH)) return bytes.toString('utf8');
  try {
    const parent: unknown = JSON.parse(`"${bytes.toString('utf8')}"`);
    return typeof parent === 'string' ? parent : undefined;
  } catch {
    return undefined;
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
  return chunk[close] === CLOSE_BRACE && close >= FILE_END.length && startsWith(chunk, close - FILE_END.length, FILE_END);
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

/** The last run's blocks, as listing-digests.ts keeps them. */
export interface ExpectedBlocks {
  readonly blocks: BlockDigests;
  /** The snapshot holds each file exactly as these blocks' lines print it. */
  readonly exact: boolean;
}

/**
 * How list() read a listing: not at all (both sides hold exactly the last run's blocks); in part
 * (only the blocks the last run did not have: each of the others stands for its folder's entries
 * in the snapshot, and `changedFolders` are the folders whose entries must come from the lines
 * read instead); or whole.
 */
export type ListingReading = { readonly kind: 'unchanged' } | { readonly kind: 'in-part'; readonly changedFolders: ReadonlySet<string> } | { readonly kind: 'whole' };

/**
 * One listing's blocks held against the last run's (`expected`): while they can tell something,
 * list() only cuts and hashes lines (`skimming`). When each block names its folder exactly, no
 * folder has two, and the snapshot is exactly what the last run's lines said, the listing is
 * skimmed to its end and only the blocks the last run did not have are read (`spans`); otherwise
 * list() reads every line, from the start, as soon as either side has a block the last run did not.
 */
export class BlockComparison {
  readonly expected: BlockDigests | undefined;
  /** The files of the blocks matched so far (for progress), while skimming. */
  filesMatched = 0;
  digester: BlockDigester;
  /** How the listing was read, once list() has decided. */
  reading: ListingReading | undefined;
  /** Where the blocks the last run did not have are, while standing in is possible. */
  readonly spans: BlockSpan[] = [];
  private readonly verdict: PairVerdict;
  private skimmingLines: boolean;
  /** Whether the blocks matched can stand for their folders' entries in the snapshot (see above). */
  private standIn: boolean;
  private readonly matched = new Set<string>();
  private readonly parentsSeen = new Set<string>();
  /** Lines of the blocks matched and not (while standing in): reading in part pays only while it reads the lesser part. */
  private linesMatched = 0;
  private linesToRead = 0;
  /** The same in blocks: with the lines, what tells early that a listing is mostly changed. */
  private blocksMatched = 0;
  private blocksToRead = 0;
  /** The last run's lines, all told. */
  private readonly linesBefore: number;
  /** The digester of the skimmed listing, while the spans are read with another. */
  private skimmed: BlockDigester | undefined;
  private broken = false;

  constructor(expected: ExpectedBlocks | undefined, verdict: PairVerdict) {
    this.expected = expected?.blocks;
    this.verdict = verdict;
    this.skimmingLines = expected !== undefined;
    this.standIn = expected !== undefined && expected.exact && namesEachFolderOnce(expected.blocks);
    this.linesBefore = 0;
    for (const record of expected?.blocks.values() ?? []) this.linesBefore += record.files + record.folders.length;
    if (!this.skimmingLines) {
      verdict.miss();
      this.reading = { kind: 'whole' };
    }
    this.digester = this.newDigester();
  }

  /** Lines are only being cut and hashed, not read. */
  get skimming(): boolean {
    return this.skimmingLines && (this.standIn || !this.verdict.missed);
  }

  /** The lines of a chunk, cut and hashed but not read; `offset` is where the chunk starts in the listing. */
  skim(chunk: Buffer, offset: number): void {
    this.digester.beginChunk(chunk, offset);
    for (let start = 0, end = 0; start < chunk.length; start = end + 1) {
      end = chunk.indexOf(NEWLINE, start);
      if (end === -1) end = chunk.length;
      this.digester.line(chunk, start, end, undefined);
    }
    this.digester.endChunk(chunk);
    // Not the end of standing in: a block with such a name is not one the last run had, and is read.
    if (this.digester.inexact) this.verdict.miss();
  }

  /** After the last chunk was skimmed: how the listing is to be read (waiting for the other side's verdict if need be). */
  async finishSkimming(): Promise<ListingReading> {
    this.digester.finish();
    const { digests, repeated, inexact } = this.digester;
    if (repeated || inexact || digests.size !== this.expected!.size || this.spans.length > 0) this.verdict.miss();
    if (this.linesToRead > this.linesMatched) this.standIn = false;
    if (!this.verdict.missed) {
      this.verdict.sideUnchanged();
      await this.verdict.settled;
    }
    this.reading = !this.verdict.missed ? { kind: 'unchanged' } : this.standIn ? { kind: 'in-part', changedFolders: this.changedFolders() } : { kind: 'whole' };
    return this.reading;
  }

  /** The folders of the blocks matched (the lines that name them were not read). */
  *foldersOfMatchedBlocks(): Generator<string> {
    for (const digest of this.matched) yield* this.expected!.get(digest)!.folders;
  }

  /** Before the spans are read: their lines are cut and hashed again, to count what they hold. */
  beginSpans(): void {
    this.skimmed = this.digester;
    this.digester = new BlockDigester();
  }

  /** After the spans were read: their blocks' records join the skimmed ones. */
  endSpans(): void {
    this.digester.finish();
    const read = this.digester;
    this.digester = this.skimmed!;
    // Each span is one block, cut again the same way: anything else and the digests stand for nothing.
    if (read.digests.size !== this.spans.length || read.repeated) this.broken = true;
    for (const [digest, record] of read.digests) {
      if (!this.digester.digests.has(digest)) this.broken = true;
      this.digester.digests.set(digest, record);
    }
    if (read.inexact) this.digester.inexact = true;
  }

  /** Lines are read from the start: the blocks are counted afresh. */
  restart(): void {
    this.skimmingLines = false;
    this.filesMatched = 0;
    this.reading = { kind: 'whole' };
    this.digester = this.newDigester();
  }

  /** After the last chunk was read. */
  finish(): void {
    this.digester.finish();
  }

  /** The listing failed: the other side must not wait for it. */
  abandon(): void {
    this.verdict.miss();
  }

  /** This listing's blocks, for the next run; undefined when they cannot stand for it. */
  get digests(): BlockDigests | undefined {
    const { digests, repeated, inexact } = this.digester;
    return repeated || inexact || this.broken ? undefined : digests;
  }

  private changedFolders(): Set<string> {
    const changed = new Set<string>();
    for (const span of this.spans) changed.add(span.parent!);
    for (const [digest, record] of this.expected!) if (!this.matched.has(digest)) changed.add(record.parent!);
    return changed;
  }

  /**
   * A guess, not a certainty: lsjson prints the folders in a different order each run, so the
   * blocks seen so far are a sample of the listing. When a large enough sample is mostly blocks
   * to read, by count and by lines, the listing is read whole now. Waiting for certainty (half
   * the lines) cost a batch spread over 92% of 1,000 folders half its listing cut and hashed
   * twice (~70 ms a side at 100k files). A wrong guess costs only speed: a whole read is always
   * right. Both measures, so that one big changed folder (many lines, one block) or many small
   * ones (many blocks, few lines) early in the order do not decide alone.
   */
  private mostlyChangedSoFar(): boolean {
    const blocks = this.blocksMatched + this.blocksToRead;
    const lines = this.linesMatched + this.linesToRead;
    return (
      blocks >= SAMPLE_BLOCKS &&
      lines * SAMPLE_SHARE >= this.linesBefore &&
      this.blocksToRead >= MOSTLY * this.blocksMatched &&
      this.linesToRead >= MOSTLY * this.linesMatched
    );
  }

  private newDigester(): BlockDigester {
    return new BlockDigester((digest, record, span) => {
      if (!this.skimming) return;
      const known = this.expected!.get(digest);
      const matches = known !== undefined && !this.matched.has(digest);
      if (matches) {
        this.matched.add(digest);
        this.filesMatched += known.files;
        // Skimmed lines were not counted: the record is the last run's, which read them.
        this.digester.digests.set(digest, known);
      } else {
        this.verdict.miss();
        if (this.standIn) this.spans.push(span);
      }
      if (span.parent === undefined || this.parentsSeen.has(span.parent)) this.standIn = false;
      else this.parentsSeen.add(span.parent);
      if (!this.standIn) return;
      if (matches) {
        this.linesMatched += span.lines;
        this.blocksMatched++;
      } else {
        this.linesToRead += span.lines;
        this.blocksToRead++;
      }
      // A listing mostly changed is read whole (the snapshot would stand for too few files to pay
      // for picking the changed folders' entries out of it), as soon as that is certain: more lines
      // to read than half the last run's, or at the end, more than those matched. Either way,
      // whatever the folders' order.
      if (this.linesToRead * 2 > this.linesBefore || this.mostlyChangedSoFar()) this.standIn = false;
    });
  }
}

/** The early guess (mostlyChangedSoFar) waits for this many blocks, and for 1/SAMPLE_SHARE of the last run's lines. */
const SAMPLE_BLOCKS = 64;
const SAMPLE_SHARE = 16;
/** ... and then reads whole when the blocks to read outnumber those matched this many times over, in count and in lines. */
const MOSTLY = 3;

/** Every block names its folder exactly, and no folder has two. */
function namesEachFolderOnce(blocks: BlockDigests): boolean {
  const parents = new Set<string>();
  for (const { parent } of blocks.values()) {
    if (parent === undefined || parents.has(parent)) return false;
    parents.add(parent);
  }
  return true;
}
