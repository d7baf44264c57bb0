/**
 * Snapshots: what each side looked like after the last successful run. One file holds both sides,
 * so committing a run is a single atomic rename — there is no moment where one side's snapshot is
 * new and the other's old.
 *
 * Format (JSON lines, streamed both ways; ~60 bytes a file plus the path):
 *   {"format":"rclonesync-snapshot","version":1,...header}
 *   [1,"dir/a.txt",1234,1764081120123,"md5hex-or-empty"]     one line per file; 1 = path1, 2 = path2
 *   [1,"dir"]                                                 one line per folder (version 2, SYNC_EMPTY_DIRS)
 *   {"end":true,"path1":N,"path2":M,"folders1":F,"folders2":G} a missing or wrong trailer = torn file
 *
 * Version 1 files (no folder lines, no folder counts) still load: their folders are unknown.
 */
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { writeFileAtomic } from './atomic.ts';
import { ownString } from '../own-string.ts';
import type { FileMeta, Listing, Side } from '../model.ts';

export interface SnapshotHeader {
  readonly format: 'rclonesync-snapshot';
  /** 2 since folders are recorded; 1 is still read. */
  readonly version: 1 | 2;
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
  return { format: 'rclonesync-snapshot', version: 2, ...fields, committedAt: committedAt.toISOString() };
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

/** Returns undefined when there is no snapshot (first run of a pair). */
export async function readSnapshot(file: string): Promise<Snapshot | undefined> {
  let stream;
  try {
    stream = createReadStream(file, { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      stream!.once('open', () => resolve());
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
  const take = (line: string) => {
    lineNumber++;
    if (trailer) throw new SnapshotCorrupt(file, `data after the end marker at line ${lineNumber}`);
    if (header) {
      // Nearly every line is an entry: read by hand (readEntry), JSON.parse for the rest.
      const entry = readEntry(line);
      if (entry) {
        if (entry.meta) listings[entry.side].set(entry.path, entry.meta);
        else folders[entry.side].add(entry.path);
        return;
      }
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new SnapshotCorrupt(file, `line ${lineNumber} is not JSON`);
    }
    if (!header) {
      const candidate = value as SnapshotHeader;
      if (candidate?.format !== 'rclonesync-snapshot' || (candidate.version !== 1 && candidate.version !== 2)) throw new SnapshotCorrupt(file, 'no valid header');
      header = candidate;
      return;
    }
    if (Array.isArray(value) && value.length === 2) {
      const [side, path] = value as [unknown, unknown];
      if ((side !== 1 && side !== 2) || typeof path !== 'string') throw new SnapshotCorrupt(file, `line ${lineNumber} is not a folder entry`);
      folders[side === 1 ? 'path1' : 'path2'].add(path);
      return;
    }
    if (Array.isArray(value)) {
      const [side, path, size, mtime, hash] = value as [unknown, unknown, unknown, unknown, unknown];
      if ((side !== 1 && side !== 2) || typeof path !== 'string' || typeof size !== 'number' || typeof mtime !== 'number' || typeof hash !== 'string') {
        throw new SnapshotCorrupt(file, `line ${lineNumber} is not an entry`);
      }
      listings[side === 1 ? 'path1' : 'path2'].set(path, { size, mtime, hash });
      return;
    }
    const end = value as { end?: boolean; path1?: number; path2?: number };
    if (end?.end !== true) throw new SnapshotCorrupt(file, `line ${lineNumber} is neither an entry nor the end marker`);
    trailer = end as { end: true; path1: number; path2: number; folders1?: number; folders2?: number };
  };
  // Lines by hand rather than readline: a million-file snapshot is two million lines.
  const decoder = new StringDecoder('utf8');
  let carry = '';
  for await (const chunk of stream) {
    const text = carry + decoder.write(chunk as Buffer);
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      take(text.slice(start, newline));
      start = newline + 1;
    }
    carry = text.slice(start);
  }
  carry += decoder.end();
  if (carry !== '') take(carry);
  if (!header) throw new SnapshotCorrupt(file, 'empty file');
  if (!trailer) throw new SnapshotCorrupt(file, 'truncated: no end marker');
  if (trailer.path1 !== listings.path1.size || trailer.path2 !== listings.path2.size) {
    throw new SnapshotCorrupt(file, `entry counts do not match the end marker`);
  }
  const recorded = trailer.folders1 !== undefined && trailer.folders2 !== undefined;
  if (recorded && (trailer.folders1 !== folders.path1.size || trailer.folders2 !== folders.path2.size)) {
    throw new SnapshotCorrupt(file, `folder counts do not match the end marker`);
  }
  return { header, path1: listings.path1, path2: listings.path2, folders: recorded ? folders : undefined };
}

const INTEGER = /^-?(0|[1-9][0-9]*)$/;
const HEX = /^[0-9a-f]*$/;

/**
 * An entry line as writeSnapshot writes it — `[1,"path",size,mtime,"hash"]` or `[1,"path"]` —
 * read without JSON.parse (a third of a no-change run's CPU went there). Undefined for anything
 * else, escapes in the path included: JSON.parse then reads it, and says what is wrong.
 */
export function readEntry(line: string): { side: Side; path: string; meta?: FileMeta } | undefined {
  if (line.charCodeAt(0) !== 0x5b || line.charCodeAt(2) !== 0x2c || line.charCodeAt(3) !== 0x22) return undefined;
  const tag = line.charCodeAt(1);
  if (tag !== 0x31 && tag !== 0x32) return undefined;
  const side: Side = tag === 0x31 ? 'path1' : 'path2';
  const close = line.indexOf('"', 4);
  if (close === -1) return undefined;
  const slash = line.indexOf('\\', 4);
  if (slash !== -1 && slash < close) return undefined;
  // Own copies: slices would keep the whole chunk of the file alive (own-string.ts).
  const path = ownString(line.slice(4, close));
  if (close + 2 === line.length && line.charCodeAt(close + 1) === 0x5d) return { side, path };
  if (line.charCodeAt(close + 1) !== 0x2c) return undefined;
  const afterSize = line.indexOf(',', close + 2);
  const afterTime = afterSize === -1 ? -1 : line.indexOf(',', afterSize + 1);
  if (afterTime === -1 || line.charCodeAt(afterTime + 1) !== 0x22 || !line.endsWith('"]')) return undefined;
  const sizeText = line.slice(close + 2, afterSize);
  const timeText = line.slice(afterSize + 1, afterTime);
  const hash = line.slice(afterTime + 2, line.length - 2);
  if (!INTEGER.test(sizeText) || !INTEGER.test(timeText) || !HEX.test(hash)) return undefined;
  return { side, path, meta: { size: Number(sizeText), mtime: Number(timeText), hash: ownString(hash) } };
}

export async function writeSnapshot(file: string, snapshot: Snapshot): Promise<void> {
  await writeFileAtomic(file, async (write) => {
    await write(`${JSON.stringify(snapshot.header)}\n`);
    for (const [side, tag] of [['path1', 1], ['path2', 2]] as const) {
      for (const [path, meta] of snapshot[side]) await write(`${JSON.stringify([tag, path, meta.size, meta.mtime, meta.hash])}\n`);
      for (const path of snapshot.folders?.[side] ?? []) await write(`${JSON.stringify([tag, path])}\n`);
    }
    const folderCounts = snapshot.folders ? { folders1: snapshot.folders.path1.size, folders2: snapshot.folders.path2.size } : {};
    await write(`${JSON.stringify({ end: true, path1: snapshot.path1.size, path2: snapshot.path2.size, ...folderCounts })}\n`);
  });
}

