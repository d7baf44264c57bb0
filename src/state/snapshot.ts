/**
 * Snapshots: what each side looked like after the last successful run. One file holds both sides,
 * so committing a run is a single atomic rename — there is no moment where one side's snapshot is
 * new and the other's old.
 *
 * Format (JSON lines, streamed both ways; ~60 bytes a file plus the path):
 *   {"format":"rclonesync-snapshot","version":1,...header}
 *   [1,"dir/a.txt",1234,1764081120123,"md5hex-or-empty"]     one line per file; 1 = path1, 2 = path2
 *   {"end":true,"path1":N,"path2":M}                          a missing or wrong trailer = torn file
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from './atomic.ts';
import type { FileMeta, Listing, Side } from '../model.ts';

export interface SnapshotHeader {
  readonly format: 'rclonesync-snapshot';
  readonly version: 1;
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
  return { format: 'rclonesync-snapshot', version: 1, ...fields, committedAt: committedAt.toISOString() };
}

export interface Snapshot {
  readonly header: SnapshotHeader;
  readonly path1: Listing;
  readonly path2: Listing;
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
    stream = createReadStream(file, { encoding: 'utf8' });
    await new Promise<void>((resolve, reject) => {
      stream!.once('open', () => resolve());
      stream!.once('error', reject);
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const listings: Record<Side, Listing> = { path1: new Map(), path2: new Map() };
  let header: SnapshotHeader | undefined;
  let trailer: { end: true; path1: number; path2: number } | undefined;
  let lineNumber = 0;
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    lineNumber++;
    if (trailer) throw new SnapshotCorrupt(file, `data after the end marker at line ${lineNumber}`);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new SnapshotCorrupt(file, `line ${lineNumber} is not JSON`);
    }
    if (!header) {
      const candidate = value as SnapshotHeader;
      if (candidate?.format !== 'rclonesync-snapshot' || candidate.version !== 1) throw new SnapshotCorrupt(file, 'no valid header');
      header = candidate;
      continue;
    }
    if (Array.isArray(value)) {
      const [side, path, size, mtime, hash] = value as [unknown, unknown, unknown, unknown, unknown];
      if ((side !== 1 && side !== 2) || typeof path !== 'string' || typeof size !== 'number' || typeof mtime !== 'number' || typeof hash !== 'string') {
        throw new SnapshotCorrupt(file, `line ${lineNumber} is not an entry`);
      }
      listings[side === 1 ? 'path1' : 'path2'].set(path, { size, mtime, hash });
      continue;
    }
    const end = value as { end?: boolean; path1?: number; path2?: number };
    if (end?.end !== true) throw new SnapshotCorrupt(file, `line ${lineNumber} is neither an entry nor the end marker`);
    trailer = end as { end: true; path1: number; path2: number };
  }
  if (!header) throw new SnapshotCorrupt(file, 'empty file');
  if (!trailer) throw new SnapshotCorrupt(file, 'truncated: no end marker');
  if (trailer.path1 !== listings.path1.size || trailer.path2 !== listings.path2.size) {
    throw new SnapshotCorrupt(file, `entry counts do not match the end marker`);
  }
  return { header, path1: listings.path1, path2: listings.path2 };
}

export async function writeSnapshot(file: string, snapshot: Snapshot): Promise<void> {
  await writeFileAtomic(file, async (write) => {
    await write(`${JSON.stringify(snapshot.header)}\n`);
    for (const [side, tag] of [['path1', 1], ['path2', 2]] as const) {
      for (const [path, meta] of snapshot[side]) await write(`${JSON.stringify([tag, path, meta.size, meta.mtime, meta.hash])}\n`);
    }
    await write(`${JSON.stringify({ end: true, path1: snapshot.path1.size, path2: snapshot.path2.size })}\n`);
  });
}

