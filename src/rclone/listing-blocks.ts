/**
 * A listing's lines cut into blocks, one per folder, and a digest of each block's bytes: what lets
 * a run that changes nothing know so without reading a line of its listings (listing-digests.ts
 * keeps the last run's digests; observe.ts compares).
 *
 * lsjson prints each folder's entries together and in name order (rclone's walk hands the printer
 * one folder's sorted entries at a time, under a lock), while the folders come in a different
 * order each run. Two listings with the same multiset of blocks hold the same lines. The cut
 * (where the parent folder in "Path" changes) only has to be deterministic, not right: equal
 * multisets of blocks mean equal multisets of lines however they were cut, so a listing cut
 * differently (--fast-list, an escaped quote in a name) is only never found unchanged.
 *
 * Each entry line is hashed as it reads without its trailing comma, plus ",\n" (lsjson leaves the
 * comma off the last entry, and which folder comes last varies).
 */
import { createHash, type Hash } from 'node:crypto';

/** Digest (base64 sha1 of the block's bytes) → the files in the block. */
export type BlockDigests = Map<string, number>;

const NEWLINE = 0x0a;
const COMMA = 0x2c;
const QUOTE = 0x22;
const SLASH = 0x2f;
const PATH_KEY = Buffer.from('{"Path":"');
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
    const entry = end - start >= PATH_KEY.length && chunk[start + 1] === QUOTE && chunk.compare(PATH_KEY, 0, PATH_KEY.length, start, start + PATH_KEY.length) === 0;
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
    if (!this.hash || this.parent.length !== parentEnd - pathStart || chunk.compare(this.parent, 0, this.parent.length, pathStart, parentEnd) !== 0) {
      this.flush(chunk, start);
      this.endBlock();
      this.hash = createHash('sha1');
      this.parent = Buffer.from(chunk.subarray(pathStart, parentEnd));
    }
    if (isFile) this.files++;
    if (chunk[end - 1] !== COMMA || chunk[end] !== NEWLINE) {
      // The last entry (no comma), or a line the chunk ends without its newline: hashed as the others.
      this.flush(chunk, start);
      this.hash!.update(chunk.subarray(start, chunk[end - 1] === COMMA ? end - 1 : end));
      this.hash!.update(ENTRY_END);
      this.pending = end + 1;
    }
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
 * One listing's blocks held against the last run's (`expected`): while every block is one of
 * them, list() only cuts and hashes lines (`skipping`); at the first that is not, `onMiss` is
 * called once and list() reads every line from the start. Filled in as the listing goes.
 */
export class BlockComparison {
  readonly expected: BlockDigests | undefined;
  skipping: boolean;
  /** The files of the blocks matched so far (for progress), while skipping. */
  filesMatched = 0;
  digester: BlockDigester;
  private readonly onMiss: () => void;
  private missed = false;

  constructor(expected: BlockDigests | undefined, onMiss: () => void = () => {}) {
    this.expected = expected;
    this.skipping = expected !== undefined;
    this.onMiss = onMiss;
    this.digester = this.newDigester();
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

  /** After the last chunk: true when the listing holds exactly the expected blocks. */
  finish(): boolean {
    this.digester.finish();
    const { digests, repeated, inexact } = this.digester;
    if (this.skipping && (repeated || inexact || digests.size !== this.expected!.size)) this.miss();
    return this.skipping;
  }

  /** Lines are read from the start again: the blocks are counted afresh. */
  restart(): void {
    this.skipping = false;
    this.filesMatched = 0;
    this.digester = this.newDigester();
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
    this.skipping = false;
    if (this.missed) return;
    this.missed = true;
    this.onMiss();
  }
}
