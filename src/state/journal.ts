/**
 * The propagation journal: before the first byte moves, a run writes down every copy it is about
 * to make, and keeps touching the file while it works. If the run dies (SIGKILL, power loss), the
 * next run finds the journal and can tell a half-written destination file — written by the dead
 * run, between its start and its last heartbeat — from a user's edit, so an interrupted copy is
 * redone instead of showing up as a conflict.
 *
 * A journal holds one window per run whose copies may have been cut short: the run writing it,
 * and every earlier killed run whose half-written files are not yet replaced. Each window keeps
 * its own lifetime, so a second kill does not push the first run's leftovers out of view. A run
 * that ends without being killed keeps only those earlier entries it could not finish: rclone
 * removes what it wrote itself when a transfer fails, so anything else that changed at one of its
 * destinations during the run is a person's edit, which must never be excused.
 *
 * Format (JSON lines): `{"startedAt":N,"lastAliveAt":N|null}` opens a window (null: the run that
 * wrote it was alive until the file's own mtime, its heartbeat), then `[to, path, size, mtime, hash]`
 * per copy of that window, and `["move", side, from, to, size, mtime, hash, renamedSize, renamedMtime]`
 * per move it is about to make (a rename carried over; `renamed*`: the new name as the side that
 * renamed it listed it): a path the next run finds new on both sides, each holding exactly the
 * version its own side had then, is such a move, done before the kill, and needs no content check.
 */
import { createReadStream } from 'node:fs';
import { access, rm, stat, utimes } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from './atomic.ts';
import { JsonLines } from './json-lines.ts';
import { otherSide, SIDES, type FileMeta, type Side } from '../model.ts';

export interface JournalEntry {
  /** Side the copy writes to. */
  readonly to: Side;
  readonly path: string;
  /** The source version being copied. */
  readonly source: FileMeta;
}

export interface JournalWindow {
  readonly startedAt: number;
  /** undefined while the run that owns the window is alive (its heartbeat is the file's mtime). */
  readonly lastAliveAt: number | undefined;
  readonly copies: readonly JournalEntry[];
  /** Moves the run is about to make on `to`'s side: `path` is the new name, `source` the version moved. */
  readonly moves?: readonly (JournalEntry & { readonly from: string; readonly renamed: FileMeta })[];
}

/** A window as the next run reads it: its end resolved, its copies keyed by `journalKey`. */
export interface InterruptedWindow {
  readonly startedAt: number;
  /** The dead run wrote nothing after this (give or take one heartbeat). */
  readonly lastAliveAt: number;
  /** key: `journalKey(to, path)` -> the source version that copy was writing. */
  readonly copies: Map<string, FileMeta>;
  /** key: `journalKey(side, new name)` -> the version that move was taking there, and the renamed file on the other side. */
  readonly moves: Map<string, { readonly moved: FileMeta; readonly renamed: FileMeta }>;
}

export const HEARTBEAT_MS = 2_000;
export const journalKey = (to: Side, path: string) => `${to}\0${path}`;

/** The span in which a window's run may have written: from its start to shortly after its last sign of life. */
export const writeSpan = (window: Pick<InterruptedWindow, 'startedAt' | 'lastAliveAt'>) => ({
  from: window.startedAt - 2_000,
  to: window.lastAliveAt + HEARTBEAT_MS + 3_000,
});

export async function writeJournal(file: string, windows: readonly JournalWindow[]): Promise<void> {
  await writeFileAtomic(file, async (write) => {
    // A first run onto an empty side journals every file it copies: a million lines, before the first copy.
    const lines = new JsonLines(write);
    for (const window of windows) {
      // The window's header, as text, after the lines before it.
      await lines.flush();
      await write(`${JSON.stringify({ startedAt: window.startedAt, lastAliveAt: window.lastAliveAt ?? null })}\n`);
      for (const e of window.copies) {
        lines.open(e.to.length + e.path.length + e.source.hash.length);
        lines.string(e.to);
        lines.string(e.path);
        lines.number(e.source.size);
        lines.number(e.source.mtime);
        lines.string(e.source.hash);
        lines.close();
        if (lines.full) await lines.flush();
      }
      for (const e of window.moves ?? []) {
        lines.open('move'.length + e.to.length + e.from.length + e.path.length + e.source.hash.length);
        lines.string('move');
        lines.string(e.to);
        lines.string(e.from);
        lines.string(e.path);
        lines.number(e.source.size);
        lines.number(e.source.mtime);
        lines.string(e.source.hash);
        lines.number(e.renamed.size);
        lines.number(e.renamed.mtime);
        lines.close();
        if (lines.full) await lines.flush();
      }
    }
    await lines.flush();
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

export async function readJournal(file: string): Promise<InterruptedWindow[] | undefined> {
  let info;
  try {
    info = await stat(file);
  } catch {
    return undefined;
  }
  const windows: InterruptedWindow[] = [];
  try {
    for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
      if (!line) continue;
      const value = JSON.parse(line) as unknown;
      if (!Array.isArray(value)) {
        const header = value as { startedAt: number; lastAliveAt?: number | null };
        if (typeof header.startedAt !== 'number') return undefined;
        windows.push({ startedAt: header.startedAt, lastAliveAt: header.lastAliveAt ?? info.mtimeMs, copies: new Map(), moves: new Map() });
        continue;
      }
      const window = windows.at(-1);
      if (!window) return undefined;
      if (value[0] === 'move') {
        const [, side, , path, size, mtime, hash, renamedSize, renamedMtime] = value as [string, Side, string, string, number, number, string, number, number];
        window.moves.set(journalKey(side, path), { moved: { size, mtime, hash }, renamed: { size: renamedSize, mtime: renamedMtime, hash: '' } });
        continue;
      }
      const [to, path, size, mtime, hash] = value as [Side, string, number, number, string];
      window.copies.set(journalKey(to, path), { size, mtime, hash });
    }
  } catch {
    // A torn journal is as good as none: without it, an interrupted copy shows up as a conflict
    // (both versions kept), which is safe, just noisier.
    return undefined;
  }
  return windows.length > 0 ? windows : undefined;
}

/** Whether a journal is there at all (an earlier run was interrupted), without reading it. */
/**
 * The start of every window in the journal (none when there is none), reading only the windows'
 * header lines: a killed first run's journal holds a line for each of a million copies, which
 * readJournal parses and keeps, and the run that follows reads it whole once already (detect).
 */
export async function journalStarts(file: string): Promise<number[]> {
  const starts: number[] = [];
  try {
    for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
      if (!line.startsWith('{')) continue;
      const startedAt = (JSON.parse(line) as { startedAt?: unknown }).startedAt;
      if (typeof startedAt === 'number') starts.push(startedAt);
    }
  } catch {
    // No journal, or a torn one: detect reports the latter; a stamp needs no more than what was read.
  }
  return starts;
}

export async function journalExists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

export async function removeJournal(file: string): Promise<void> {
  await rm(file, { force: true });
}

/** A run's own window: every copy about to start, by source side, with the version it writes. */
export function windowOfCopies(
  startedAt: number,
  copiesFrom: Record<Side, readonly string[]>,
  versionWritten: (to: Side, path: string) => FileMeta | undefined,
): JournalWindow {
  const copies: JournalEntry[] = [];
  for (const from of SIDES) {
    const to = otherSide(from);
    for (const path of copiesFrom[from]) {
      const source = versionWritten(to, path);
      if (source) copies.push({ to, path, source });
    }
  }
  return { startedAt, lastAliveAt: undefined, copies };
}

/** Of the carried windows, the copies whose paths a run did not finish: what the journal keeps. */
export function unfinishedWindows(windows: readonly JournalWindow[], unfinished: ReadonlySet<string>): JournalWindow[] {
  return windows.map((window) => ({ ...window, copies: window.copies.filter((entry) => unfinished.has(entry.path)) })).filter((window) => window.copies.length > 0);
}
