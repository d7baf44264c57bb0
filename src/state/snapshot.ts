/**
 * Snapshots: what each side looked like after the last successful run. One file holds both sides,
 * so committing a run is a single atomic rename — there is no moment where one side's snapshot is
 * new and the other's old.
 *
 * Format (JSON lines, streamed both ways; ~60 bytes a file plus the path):
 *   {"format":"rclonesync-snapshot","version":3,...header}
 *   [1,"dir/a.txt",1234,1764081120123,"md5hex-or-empty"]     one line per file; 1 = path1, 2 = path2,
 *                                                             3 = both sides, alike (version 3)
 *   [1,"dir"]                                                 one line per folder (version 2, SYNC_EMPTY_DIRS)
 *   {"end":true,"path1":N,"path2":M,"folders1":F,"folders2":G} a missing or wrong trailer = torn file
 *
 * A pair in sync holds nearly every file alike on both sides: one line (and, once read, one record
 * and one path string) serves both. Version 1 files (no folder lines, no folder counts) and
 * version 2 files (a line per side) still load; version 1's folders are unknown.
 */
import { createReadStream, fstatSync } from 'node:fs';
import { writeFileAtomic } from './atomic.ts';
import { JsonLines } from './json-lines.ts';
import { sameRecord, type FileMeta, type Listing, type Side } from '../model.ts';
import { BACKSLASH, CLOSE_BRACKET, COMMA, NEWLINE, QUOTE } from '../bytes.ts';

export interface SnapshotHeader {
  readonly format: 'rclonesync-snapshot';
  /** 3 since a line may stand for both sides, 2 since folders are recorded; 1 and 2 are still read. */
  readonly version: 1 | 2 | 3;
  readonly path1: string;
  readonly path2: string;
  readonly compare: string;
  /** The hash type stored in entries, '' when none. */
  readonly hashType: string;
  /** sha256 of the filters file, '' when there is none. */
  readonly filtersHash: string;
  readonly committedAt: string;
}

/** A header for a snapshot committed now. */
export function snapshotHeader(fields: Omit<SnapshotHeader, 'format' | 'version' | 'committedAt'>, committedAt = new Date()): SnapshotHeader {
  return { format: 'rclonesync-snapshot', version: 3, ...fields, committedAt: committedAt.toISOString() };
}

export interface Snapshot {
  readonly header: SnapshotHeader;
  readonly path1: Listing;
  readonly path2: Listing;
  /** The folders each side held (empty ones included); undefined when not recorded (version 1, SYNC_EMPTY_DIRS off). */
  readonly folders?: Record<Side, Set<string>> | undefined;
}

export class SnapshotCorrupt extends Error {
  constructor(file: string, detail: string) {
    super(`the snapshot ${file} is unreadable (${detail})`);
    this.name = 'SnapshotCorrupt';
  }
}

export interface ReadOptions {
  /**
   * Only the entries (files and folders) whose path this accepts are kept; the rest are checked and
   * counted, never stored. For readers that need a few paths of a large snapshot (the watcher's
   * check, the status page's conflict copies): at a million files, the maps the full read builds
   * are most of its time and all of its memory.
   */
  readonly only?: (path: string) => boolean;
  /** Told the file's size once it is open, before it is read (a run sizes its heap by it: heap.ts). */
  readonly onOpen?: (bytes: number) => void;
}

/** Returns undefined when there is no snapshot (first run of a pair). */
export async function readSnapshot(file: string, options: ReadOptions = {}): Promise<Snapshot | undefined> {
  const { only } = options;
  let stream;
  try {
    stream = createReadStream(file, { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      stream!.once('open', (fd: number) => {
        try {
          options.onOpen?.(fstatSync(fd).size);
          resolve();
        } catch (error) {
          reject(error);
        }
      });
      stream!.once('error', reject);
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const listings: Record<Side, Listing> = { path1: new Map(), path2: new Map() };
  const folders: Record<Side, Set<string>> = { path1: new Set(), path2: new Set() };
  let header: SnapshotHeader | undefined;
  let trailer: { end: true; path1: number; path2: number; folders1?: number; folders2?: number } | undefined;
  let lineNumber = 0;
  /** Entries read, kept or not: what the end marker's counts are checked against. */
  const counted = { path1: 0, path2: 0, folders1: 0, folders2: 0 };
  /** A file (with its record) or a folder (without), on one side or on both. */
  const add = (side: EntrySide, path: string, meta: FileMeta | undefined) => {
    // Version 3's: in an older file, the sign of a torn or foreign one.
    if (side === 'both' && header!.version < 3) throw new SnapshotCorrupt(file, `line ${lineNumber} is not an entry of version ${header!.version}`);
    if (side !== 'path2') counted[meta ? 'path1' : 'folders1']++;
    if (side !== 'path1') counted[meta ? 'path2' : 'folders2']++;
    if (only && !only(path)) return;
    // One record and one path string for both sides.
    if (side !== 'path2') {
      if (meta) listings.path1.set(path, meta);
      else folders.path1.add(path);
    }
    if (side !== 'path1') {
      if (meta) listings.path2.set(path, meta);
      else folders.path2.add(path);
    }
  };
  const take = (bytes: Buffer, start: number, end: number) => {
    lineNumber++;
    if (trailer) throw new SnapshotCorrupt(file, `data after the end marker at line ${lineNumber}`);
    if (header) {
      // Nearly every line is an entry: read from the bytes by hand (readEntry), JSON.parse for the rest.
      const entry = readEntry(bytes, start, end);
      if (entry) {
        add(entry.side, entry.path, entry.meta);
        return;
      }
    }
    const line = bytes.toString('utf8', start, end);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new SnapshotCorrupt(file, `line ${lineNumber} is not JSON`);
    }
    if (!header) {
      const candidate = value as SnapshotHeader;
      if (candidate?.format !== 'rclonesync-snapshot' || ![1, 2, 3].includes(candidate.version)) throw new SnapshotCorrupt(file, 'no valid header');
      header = candidate;
      return;
    }
    const sideOf = (tag: unknown): EntrySide | undefined => (tag === 1 ? 'path1' : tag === 2 ? 'path2' : tag === 3 ? 'both' : undefined);
    if (Array.isArray(value) && value.length === 2) {
      const [tag, path] = value as [unknown, unknown];
      const side = sideOf(tag);
      if (!side || typeof path !== 'string') throw new SnapshotCorrupt(file, `line ${lineNumber} is not a folder entry`);
      add(side, path, undefined);
      return;
    }
    if (Array.isArray(value)) {
      const [tag, path, size, mtime, hash] = value as [unknown, unknown, unknown, unknown, unknown];
      const side = sideOf(tag);
      if (!side || typeof path !== 'string' || typeof size !== 'number' || typeof mtime !== 'number' || typeof hash !== 'string') {
        throw new SnapshotCorrupt(file, `line ${lineNumber} is not an entry`);
      }
      add(side, path, { size, mtime, hash });
      return;
    }
    const marker = value as { end?: boolean; path1?: number; path2?: number };
    if (marker?.end !== true) throw new SnapshotCorrupt(file, `line ${lineNumber} is neither an entry nor the end marker`);
    trailer = marker as { end: true; path1: number; path2: number; folders1?: number; folders2?: number };
  };
  // Lines are found in the bytes (no decoding of whole chunks, no readline): a million-file
  // snapshot is two million lines, and each path is decoded alone, into a string of its own.
  let carry: Buffer | undefined;
  for await (const chunk of stream) {
    const bytes = carry ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    carry = undefined;
    let start = 0;
    for (let newline = bytes.indexOf(NEWLINE); newline !== -1; newline = bytes.indexOf(NEWLINE, start)) {
      take(bytes, start, newline);
      start = newline + 1;
    }
    if (start < bytes.length) carry = bytes.subarray(start);
  }
  if (carry) take(carry, 0, carry.length);
  if (!header) throw new SnapshotCorrupt(file, 'empty file');
  if (!trailer) throw new SnapshotCorrupt(file, 'truncated: no end marker');
  if (trailer.path1 !== counted.path1 || trailer.path2 !== counted.path2) {
    throw new SnapshotCorrupt(file, `entry counts do not match the end marker`);
  }
  const recorded = trailer.folders1 !== undefined && trailer.folders2 !== undefined;
  if (recorded && (trailer.folders1 !== counted.folders1 || trailer.folders2 !== counted.folders2)) {
    throw new SnapshotCorrupt(file, `folder counts do not match the end marker`);
  }
  // A path written twice would be counted twice but kept once.
  const keptAll =
    listings.path1.size === counted.path1 && listings.path2.size === counted.path2 && folders.path1.size === counted.folders1 && folders.path2.size === counted.folders2;
  if (!only && !keptAll) {
    throw new SnapshotCorrupt(file, 'a path is listed twice');
  }
  return { header, path1: listings.path1, path2: listings.path2, folders: recorded ? folders : undefined };
}

/** Beyond this many digits an integer may not be exact as a double: JSON.parse decides. */
const MOST_DIGITS = 15;

/**
 * An entry line as writeSnapshot writes it — `[1,"path",size,mtime,"hash"]` or `[1,"path"]` —
 * read from its bytes without JSON.parse (a third of a no-change run's CPU went there), the path
 * decoded alone so that it does not keep the chunk alive (see own-string.ts). Undefined for
 * anything else, escapes in the path and hashes other than lowercase hex included: JSON.parse
 * then reads the line, and says what is wrong.
 */
export function readEntry(bytes: Buffer, start = 0, end = bytes.length): { side: EntrySide; path: string; meta?: FileMeta } | undefined {
  if (bytes[start] !== 0x5b || bytes[start + 2] !== COMMA || bytes[start + 3] !== QUOTE) return undefined;
  const tag = bytes[start + 1];
  if (tag !== 0x31 && tag !== 0x32 && tag !== 0x33) return undefined;
  const side: EntrySide = tag === 0x31 ? 'path1' : tag === 0x32 ? 'path2' : 'both';
  let close = start + 4;
  for (let c = bytes[close]; c !== QUOTE; c = bytes[++close]) {
    // A backslash (an escape) or a control character (never written raw): JSON.parse's to judge.
    if (close >= end || c === BACKSLASH || c! < 0x20) return undefined;
  }
  const path = bytes.toString('utf8', start + 4, close);
  if (close + 2 === end && bytes[close + 1] === CLOSE_BRACKET) return { side, path };
  if (bytes[close + 1] !== COMMA) return undefined;
  cursor = close + 2;
  const size = readInteger(bytes, end);
  if (size === undefined || bytes[cursor] !== COMMA) return undefined;
  cursor++;
  const mtime = readInteger(bytes, end);
  if (mtime === undefined || bytes[cursor] !== COMMA || bytes[cursor + 1] !== QUOTE) return undefined;
  const hashStart = cursor + 2;
  let hashEnd = hashStart;
  for (let c = bytes[hashEnd]; c !== QUOTE; c = bytes[++hashEnd]) {
    if (hashEnd >= end || !((c! >= 0x30 && c! <= 0x39) || (c! >= 0x61 && c! <= 0x66))) return undefined;
  }
  if (hashEnd + 2 !== end || bytes[hashEnd + 1] !== CLOSE_BRACKET) return undefined;
  return { side, path, meta: { size, mtime, hash: hashEnd === hashStart ? '' : bytes.toString('latin1', hashStart, hashEnd) } };
}

/** The side an entry line is of: one, or both (version 3: the same file or folder on each). */
type EntrySide = Side | 'both';

/** readEntry's position within the line (module state: a closure or a tuple would cost an allocation a line). */
let cursor = 0;

/** `-?(0|[1-9][0-9]*)` at the cursor, as JSON writes an integer; the cursor moves past it. */
function readInteger(bytes: Buffer, end: number): number | undefined {
  const negative = bytes[cursor] === 0x2d;
  if (negative) cursor++;
  const first = cursor;
  let value = 0;
  for (let c = bytes[cursor]; cursor < end && c! >= 0x30 && c! <= 0x39; c = bytes[++cursor]) value = value * 10 + (c! - 0x30);
  const digits = cursor - first;
  if (digits === 0 || digits > MOST_DIGITS || (digits > 1 && bytes[first] === 0x30)) return undefined;
  return negative ? -value : value;
}

export async function writeSnapshot(file: string, snapshot: Snapshot): Promise<void> {
  await writeFileAtomic(file, async (write) => {
    // Whatever header it was given, the file is written as this version writes it.
    await write(`${JSON.stringify({ ...snapshot.header, version: 3 })}\n`);
    const lines = new JsonLines(write);
    const { path1, path2 } = snapshot;
    const fileLine = (tag: 1 | 2 | 3, path: string, meta: FileMeta): void => {
      lines.open(path.length + meta.hash.length);
      lines.number(tag);
      lines.string(path);
      lines.number(meta.size);
      lines.number(meta.mtime);
      lines.string(meta.hash);
      lines.close();
    };
    /** A path2 entry not met in step with path1's: written unless path1's is alike (then it was written as both). */
    const path2Line = (path: string, meta: FileMeta): void => {
      if (!sameRecord(meta, path1.get(path))) fileLine(2, path, meta);
    };
    // A file alike on both sides is one line, with path1's record. Both maps mostly hold the same
    // paths in the same order (read from one file, edited alike): while they do, each path1 entry
    // is held against path2's at the same place, and only where they part are entries looked up
    // in the other map (two lookups a file were half the writing's time at 100k files).
    const other2 = path2.entries();
    let inStep = true;
    for (const [path, meta] of path1) {
      if (lines.full) await lines.flush();
      if (inStep) {
        const next = other2.next();
        if (!next.done && next.value[0] === path) {
          const alike = sameRecord(meta, next.value[1]);
          fileLine(alike ? 3 : 1, path, meta);
          if (!alike) fileLine(2, path, next.value[1]);
          continue;
        }
        inStep = false;
        // path2's entry taken and not matched: written now, as one of the rest of path2's.
        if (!next.done) path2Line(next.value[0], next.value[1]);
      }
      fileLine(sameRecord(meta, path2.get(path)) ? 3 : 1, path, meta);
    }
    for (const [path, meta] of other2) {
      if (lines.full) await lines.flush();
      if (inStep) fileLine(2, path, meta);
      else path2Line(path, meta);
    }
    const folders = snapshot.folders;
    for (const [side, tag] of [['path1', 1], ['path2', 2]] as const) {
      for (const path of folders?.[side] ?? []) {
        const alike = folders![side === 'path1' ? 'path2' : 'path1'].has(path);
        if (alike && side === 'path2') continue;
        lines.open(path.length);
        lines.number(alike ? 3 : tag);
        lines.string(path);
        lines.close();
        if (lines.full) await lines.flush();
      }
    }
    await lines.flush();
    const folderCounts = snapshot.folders ? { folders1: snapshot.folders.path1.size, folders2: snapshot.folders.path2.size } : {};
    await write(`${JSON.stringify({ end: true, path1: snapshot.path1.size, path2: snapshot.path2.size, ...folderCounts })}\n`);
  });
}
