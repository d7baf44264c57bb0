/**
 * The propagation journal: before the first byte moves, a run writes down every copy it is about
 * to make, and keeps touching the file while it works. If the run dies (SIGKILL, power loss), the
 * next run finds the journal and can tell a half-written destination file — written by the dead
 * run, between its start and its last heartbeat — from a user's edit, so an interrupted copy is
 * redone instead of showing up as a conflict.
 */
import { createReadStream } from 'node:fs';
import { rm, stat, utimes } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from './atomic.ts';
import type { FileMeta, Side } from '../sync/types.ts';

export interface JournalEntry {
  /** Side the copy writes to. */
  readonly to: Side;
  readonly path: string;
  /** The source version being copied. */
  readonly source: FileMeta;
}

export interface InterruptedRun {
  readonly startedAt: number;
  /** Last heartbeat: the dead run wrote nothing after this (give or take one interval). */
  readonly lastAliveAt: number;
  /** key: `${to}\0${path}` */
  readonly copies: Map<string, FileMeta>;
}

export const HEARTBEAT_MS = 2_000;
export const journalKey = (to: Side, path: string) => `${to}\0${path}`;

export async function writeJournal(file: string, startedAt: number, entries: Iterable<JournalEntry>): Promise<void> {
  await writeFileAtomic(file, async (write) => {
    await write(`${JSON.stringify({ startedAt })}\n`);
    for (const e of entries) await write(`${JSON.stringify([e.to, e.path, e.source.size, e.source.mtime, e.source.hash])}\n`);
  });
}

/** Touches the journal every HEARTBEAT_MS until stopped. */
export function startHeartbeat(file: string): () => void {
  const timer = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  timer.unref();
  return () => clearInterval(timer);
}

export async function readJournal(file: string): Promise<InterruptedRun | undefined> {
  let info;
  try {
    info = await stat(file);
  } catch {
    return undefined;
  }
  const copies = new Map<string, FileMeta>();
  let startedAt: number | undefined;
  try {
    for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
      if (!line) continue;
      const value = JSON.parse(line) as unknown;
      if (startedAt === undefined) {
        startedAt = (value as { startedAt: number }).startedAt;
        continue;
      }
      const [to, path, size, mtime, hash] = value as [Side, string, number, number, string];
      copies.set(journalKey(to, path), { size, mtime, hash });
    }
  } catch {
    // A torn journal is as good as none: without it, an interrupted copy shows up as a conflict
    // (both versions kept), which is safe, just noisier.
    return undefined;
  }
  if (startedAt === undefined) return undefined;
  return { startedAt, lastAliveAt: info.mtimeMs, copies };
}

export async function removeJournal(file: string): Promise<void> {
  await rm(file, { force: true });
}
