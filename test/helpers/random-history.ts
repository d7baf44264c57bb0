/**
 * Seeded random histories against the real CLI: people editing both sides of a pair while runs
 * come and go, some of them killed, some of them seeing edits land while they copy.
 *
 * A history is a list of concrete, JSON-serialisable steps (`Step`). `generateHistory` draws them
 * from a seed one at a time, looking at the real trees (each step has its own PRNG stream, so a
 * step's choices do not depend on how many draws earlier steps took); `replayHistory` carries out
 * a given list (what the minimiser feeds it). A step whose target is gone (a shortened script) is
 * skipped.
 *
 * The `Ledger` holds what must be true after every run that exits 0:
 *   (a) both sides hold the same files with the same bytes (files only: empty folders are not synced);
 *   (b) every content that existed on either side just before the run (or any run since the last
 *       success: a killed or failed run may already have moved things), or was written by the user
 *       while a run was going, exists somewhere on either side afterwards — except a side's
 *       unchanged version of a path that the other side alone deleted or modified since the last
 *       successful run, and except versions the user overwrote or deleted themselves;
 *   (c) with the class half-written-junk: every file on either side holds bytes a user wrote (no
 *       half-written copy of a killed run is left standing).
 * Files under `.rclonesync-trash/` count as "somewhere" for (b) and are ignored for (a).
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Side } from '../../src/model.ts';
import { type CliResult, dump, type Env, runCli, type RunningCli, sleep, spawnCli } from './processes.ts';
import { digestTree, listFiles, randomBytesSeeded, sha256, statTree } from './trees.ts';

export const SIDES: readonly Side[] = ['path1', 'path2'];
const other = (side: Side): Side => (side === 'path1' ? 'path2' : 'path1');
/** The run stamp in a conflict copy's name (see conflictName in src/sync/reconcile.ts). */
const CONFLICT_STAMP = /(?<=\.conflict-path[12]-)\d{8}T\d{6}Z(-\d+)?/;

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

/** mulberry32: a tiny 32-bit PRNG, good enough for picking test steps, and the same everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** [0, 1) */
  float(): number {
    return this.next();
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }
  /** A key of `weights`, drawn in proportion to its weight (weights of 0 never). */
  weighted<K extends string>(weights: Partial<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let x = this.next() * total;
    for (const [key, w] of entries) {
      if ((x -= w) < 0) return key;
    }
    return entries.at(-1)![0];
  }
}

/** A seed for step `index` of history `seed`: each step draws from its own stream. */
const stepSeed = (seed: number, index: number): number => (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

/** A modification time: milliseconds, or 'keep' (the file's own, set back with utimes), or 'now' (a user's program writing). */
export type Mtime = number | 'keep' | 'now';

export type UserOp =
  /** `tag` makes the content unique; the bytes are `contentOf(tag, size)`. */
  | { readonly kind: 'create'; readonly side: Side; readonly path: string; readonly size: number; readonly tag: string; readonly mtime: Mtime }
  | { readonly kind: 'edit'; readonly side: Side; readonly path: string; readonly size: number | 'same'; readonly tag: string; readonly mtime: Mtime }
  /** Both sides rewrite `path` to different contents of the same size with the same modification time. */
  | { readonly kind: 'twin-edit'; readonly path: string; readonly tag: string; readonly mtime: number }
  | { readonly kind: 'delete'; readonly side: Side; readonly path: string }
  | { readonly kind: 'rename'; readonly side: Side; readonly from: string; readonly to: string }
  | { readonly kind: 'rename-folder'; readonly side: Side; readonly from: string; readonly to: string }
  | { readonly kind: 'touch'; readonly side: Side; readonly path: string; readonly mtime: number };

/** A large file written just before a slow run, so that the run is still copying when something happens. */
export interface SlowFile {
  readonly side: Side;
  readonly path: string;
  readonly size: number;
  readonly tag: string;
}

/** When, during a run, the harness acts: `delayMs` after the run started, or after its journal appeared. */
export interface Trigger {
  readonly after: 'start' | 'journal';
  readonly delayMs: number;
}

export type Step =
  | UserOp
  /**
   * `settle`: a second run right after, which finds nothing to change and records its listings'
   * blocks, so that the next run after edits reads only the folders they touched (listing-blocks.ts).
   */
  | { readonly kind: 'sync'; readonly settle?: true }
  | { readonly kind: 'sync-injected'; readonly slow: SlowFile; readonly trigger: Trigger; readonly inject: UserOp }
  /** `startAfterMs`: a pause first, so that what an earlier killed run left is older than this run's start. */
  | { readonly kind: 'sync-killed'; readonly slow: SlowFile; readonly trigger: Trigger; readonly startAfterMs?: number };

/** The bytes of a created or edited file: unique to its tag, exactly `size` long. */
export function contentOf(tag: string, size: number): Buffer {
  let text = `${tag}:`;
  for (let i = 0; text.length < size; i++) text += sha256(`${tag}/${i}`);
  return Buffer.from(text.slice(0, size));
}

const slowContentOf = (file: SlowFile): Buffer => randomBytesSeeded(file.size, Number.parseInt(sha256(file.tag).slice(0, 8), 16));

export function describeStep(step: Step): string {
  const t = (m: Mtime) => (typeof m === 'number' ? new Date(m).toISOString().slice(5, 19) : m);
  switch (step.kind) {
    case 'create':
      return `create ${step.side}:${step.path} (${step.size} B, mtime ${t(step.mtime)})`;
    case 'edit':
      return `edit ${step.side}:${step.path} (size ${step.size}, mtime ${t(step.mtime)})`;
    case 'twin-edit':
      return `twin-edit both:${step.path} (same size, mtime ${t(step.mtime)})`;
    case 'delete':
      return `delete ${step.side}:${step.path}`;
    case 'rename':
      return `rename ${step.side}:${step.from} -> ${step.to}`;
    case 'rename-folder':
      return `rename-folder ${step.side}:${step.from}/ -> ${step.to}/`;
    case 'touch':
      return `touch ${step.side}:${step.path} (mtime ${t(step.mtime)})`;
    case 'sync':
      return step.settle ? 'sync, and a run after it (it records the listings)' : 'sync';
    case 'sync-injected':
      return `sync (slow ${step.slow.side}:${step.slow.path}), ${step.trigger.delayMs} ms after ${step.trigger.after}: ${describeStep(step.inject)}`;
    case 'sync-killed':
      return `${step.startAfterMs ? `after ${step.startAfterMs} ms, ` : ''}sync (slow ${step.slow.side}:${step.slow.path}), SIGKILL ${step.trigger.delayMs} ms after ${step.trigger.after}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Operation classes: what a history may do
// ---------------------------------------------------------------------------------------------

/**
 * Operation classes beyond the default set, each tied to a known engine bug of issue 6 (the item
 * number in brackets). RANDOM_OPS=all enables every one; RANDOM_OPS=<name>,<name> some of them.
 */
export const EXTRA_OP_CLASSES = {
  /** [6] Both sides rewrite a file to different contents of the same size, with the same mtime. */
  'same-size-same-mtime': 'twin edits: both sides rewrite a file to the same size with the same mtime (issue 6 item 6)',
  /** [7] A new file takes the name of a folder (possibly an empty one left behind by a folder rename). */
  'file-named-like-folder': 'new files named like folders, e.g. where a renamed folder left an empty one (item 7)',
  /** [1, 2, 3] The edit injected during a run hits a file that run is syncing. */
  'edits-in-plan': 'edits injected during a run hit files the run is copying or deleting (items 1, 2, 3)',
  /** [5] A killed run followed by another killed run. */
  'kills-in-a-row': 'two killed runs without a successful one between them (item 5)',
  /**
   * After each successful run, no file holds bytes nobody wrote: a half-written copy left by a
   * killed run must never stand as a file or a conflict copy (item 5; and a killed run's
   * half-written copy whose source is edited again before the next run, found by these histories).
   */
  'half-written-junk': 'after each successful run, every file holds bytes a user wrote: no half-written copy left as a file or conflict copy (item 5 and a kill followed by an edit of the source)',
  /** [10] After each successful run, modification times agree too (to the second). */
  'touch-times': 'after each successful run, modification times must agree too: a one-sided touch must be carried (item 10)',
} as const;
export type OpClass = keyof typeof EXTRA_OP_CLASSES;

export function parseOpClasses(value: string | undefined): ReadonlySet<OpClass> {
  const known = Object.keys(EXTRA_OP_CLASSES) as OpClass[];
  if (!value || value === 'default') return new Set();
  if (value === 'all') return new Set(known);
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(known as string[]).includes(n));
  if (unknown.length > 0) throw new Error(`RANDOM_OPS: unknown class ${unknown.join(', ')}; use "all" or a comma list of ${known.join(', ')}`);
  return new Set(names as OpClass[]);
}

// ---------------------------------------------------------------------------------------------
// The pair a history runs on
// ---------------------------------------------------------------------------------------------

export interface HistoryTarget {
  readonly backend: string;
  /** The folder on disk that holds each side's files (for a remote: the folder its server serves). */
  readonly dirs: Record<Side, string>;
  readonly stateDir: string;
  /** The environment of a run of this pair, plus `extra`. */
  env(extra?: Env): Env;
}

/** Every run of a history: deletions of any share are expected, so the max-delete gate is opened. */
const RUN_ENV: Env = { SYNC_MAX_DELETE: '100' };
/**
 * Slow enough that a few hundred KB keep a run copying for a second or more; one transfer at a
 * time, largest first, so the small files wait (already re-checked, not yet written) behind the
 * slow one while an injected edit lands. An edit landing in the very instant rclone writes that
 * same file is a race no tool can win without locks (README, limits); under a shared --bwlimit
 * with parallel transfers that instant stretched to most of a second and made histories flaky.
 */
const SLOW_ENV: Env = { ...RUN_ENV, SYNC_RCLONE_ARGS: '--bwlimit 200k --transfers 1 --order-by size,descending --check-first' };

// ---------------------------------------------------------------------------------------------
// Generating steps
// ---------------------------------------------------------------------------------------------

const FOLDERS = ['a', 'b', 'a/deep'] as const;
const FOLDER_RENAME_TARGETS = ['c', 'd', 'b/inner', 'e'] as const;
const FILE_NAMES = ['f1.txt', 'f2.txt', 'f3.txt', 'f4.txt', 'f5.txt', 'f6.txt', 'notes.md', 'data.bin', 'README', '.hidden'] as const;
/** Synthetic modification times start here, a whole second, and advance by whole seconds. */
const CLOCK_BASE = Date.UTC(2025, 0, 1);

interface SideView {
  readonly files: readonly string[];
  /** Folders that exist on disk (also empty ones), relative. */
  readonly folders: ReadonlySet<string>;
}
type View = Record<Side, SideView>;

export interface GeneratorState {
  readonly seed: number;
  readonly classes: ReadonlySet<OpClass>;
  /** Paths changed on each side since the last successful run. */
  readonly touched: Record<Side, ReadonlySet<string>>;
  /** A run was killed since the last successful run. */
  readonly killedSinceSuccess: boolean;
}

const INITIAL_FILES = { path1: 8, path2: 4 } as const;

/**
 * Folders of files that no step aims at (steps pick among all files, so some reach them): most of
 * a tree is untouched by any one batch, as in real trees, and a run after a settling one reads
 * only the folders that changed instead of the whole listing (listing-blocks.ts).
 */
const STILL_FOLDERS = 5;
const STILL_FILES = 8;

/** The steps that set a history up: a few files on each side, untouched folders on path1, then the first run (a resync). */
export function initialSteps(seed: number): Step[] {
  const rng = new Rng(stepSeed(seed, -1));
  const steps: Step[] = [];
  for (const side of SIDES) {
    const taken = new Set<string>();
    for (let i = 0; i < INITIAL_FILES[side]; i++) {
      let path: string;
      do path = joinPath(rng.pick(['', ...FOLDERS]), rng.pick(FILE_NAMES));
      while (taken.has(path));
      taken.add(path);
      steps.push({ kind: 'create', side, path, size: fileSize(rng), tag: `${seed}.0.${side}.${i}`, mtime: CLOCK_BASE + i * 1000 });
    }
  }
  for (let k = 0; k < STILL_FOLDERS; k++) {
    for (let j = 0; j < STILL_FILES; j++) steps.push({ kind: 'create', side: 'path1', path: `still/s${k}/f${j}.txt`, size: 64, tag: `${seed}.0.still.${k}.${j}`, mtime: CLOCK_BASE + 50_000 + k * 1000 + j });
  }
  steps.push({ kind: 'sync' });
  return steps;
}

const joinPath = (folder: string, name: string) => (folder ? `${folder}/${name}` : name);
/** A few bytes to a few KB, at least enough for the tag that makes contents unique. */
const fileSize = (rng: Rng) => (rng.chance(0.6) ? rng.int(24, 200) : rng.int(201, 4000));

/** The next step of history `seed`, number `index`, drawn against the trees as they are now. */
export function nextStep(state: GeneratorState, index: number, view: View): Step {
  const rng = new Rng(stepSeed(state.seed, index));
  const mtime = CLOCK_BASE + 3_600_000 + index * 10_000;
  const tag = (what: string) => `${state.seed}.${index}.${what}`;
  const canKill = !state.killedSinceSuccess || state.classes.has('kills-in-a-row');
  const weights = {
    create: 3,
    edit: 4,
    delete: 2,
    rename: 2,
    'rename-folder': state.classes.has('file-named-like-folder') ? 2 : 1,
    touch: 1,
    'twin-edit': state.classes.has('same-size-same-mtime') ? 1.5 : 0,
    sync: 4,
    'sync-injected': 1.2,
    'sync-killed': !canKill ? 0 : state.killedSinceSuccess ? 4 : 1.2,
  };
  for (let attempt = 0; attempt < 20; attempt++) {
    const kind = rng.weighted(weights);
    let step: Step | undefined;
    switch (kind) {
      case 'sync':
        step = rng.chance(0.5) ? { kind: 'sync', settle: true } : { kind: 'sync' };
        break;
      case 'sync-killed':
        step = {
          kind: 'sync-killed',
          slow: slowFile(rng, view, tag('slow')),
          trigger: rng.chance(0.5) ? { after: 'journal', delayMs: rng.int(0, 1000) } : { after: 'start', delayMs: rng.int(0, 2500) },
          // A second kill in a row (issue 6 item 5) bites when the first run's half-written files
          // are older than the second run's journal window.
          ...(state.killedSinceSuccess ? { startAfterMs: rng.int(2500, 4000) } : {}),
        };
        break;
      case 'sync-injected': {
        const slow = slowFile(rng, view, tag('slow'));
        const inject = injectedOp(rng, state, view, slow, tag('inject'));
        if (inject) step = { kind: 'sync-injected', slow, inject, trigger: rng.chance(0.6) ? { after: 'journal', delayMs: rng.int(0, 800) } : { after: 'start', delayMs: rng.int(300, 1500) } };
        break;
      }
      default:
        step = userOp(kind, rng, state, view, mtime, tag(kind));
    }
    if (step) return step;
  }
  return { kind: 'sync' };
}

function userOp(kind: UserOp['kind'], rng: Rng, state: GeneratorState, view: View, mtime: number, tag: string): UserOp | undefined {
  const side = rng.pick(SIDES);
  const { files } = view[side];
  switch (kind) {
    case 'create': {
      const path = freePath(rng, state, view, side);
      return path === undefined ? undefined : { kind, side, path, size: fileSize(rng), tag, mtime };
    }
    case 'edit': {
      if (files.length === 0) return undefined;
      const path = rng.pick(files);
      // A same-size edit must move the mtime, and an edit that keeps the mtime must change the
      // size: a one-sided rewrite that keeps both is invisible to size,modtime by definition.
      if (rng.chance(0.35)) return { kind, side, path, size: 'same', tag, mtime };
      return { kind, side, path, size: fileSize(rng), tag, mtime: rng.chance(0.35) ? 'keep' : mtime };
    }
    case 'twin-edit': {
      const both = files.filter((p) => view[other(side)].files.includes(p));
      return both.length === 0 ? undefined : { kind, path: rng.pick(both), tag, mtime };
    }
    case 'delete':
      // Never empty a side: a side that lost every file is (rightly) a safety stop.
      return files.length <= 3 ? undefined : { kind, side, path: rng.pick(files) };
    case 'rename': {
      if (files.length === 0) return undefined;
      const from = rng.pick(files);
      const to = freePath(rng, state, view, side);
      return to === undefined || to === from ? undefined : { kind, side, from, to };
    }
    case 'rename-folder': {
      const withFiles = [...new Set(files.flatMap((f) => foldersAbove(f)))].sort();
      if (withFiles.length === 0) return undefined;
      const from = rng.pick(withFiles);
      const to = rng.pick(FOLDER_RENAME_TARGETS);
      if (to === from || to.startsWith(`${from}/`) || from.startsWith(`${to}/`) || blocked(to, view[side], true)) return undefined;
      return { kind, side, from, to };
    }
    case 'touch':
      return files.length === 0 ? undefined : { kind, side, path: rng.pick(files), mtime };
  }
}

/** What to do to a side while a run is going: an edit, a new file or a deletion (written "now"). */
function injectedOp(rng: Rng, state: GeneratorState, view: View, slow: SlowFile, tag: string): UserOp | undefined {
  const side = rng.pick(SIDES);
  // By default only paths the run is not syncing (neither side changed them since the last
  // success): a run can never protect what it is copying until items 1-3 of issue 6 are fixed.
  const inPlan = (p: string) => state.touched.path1.has(p) || state.touched.path2.has(p) || p === slow.path;
  const candidates = state.classes.has('edits-in-plan')
    ? (() => {
        const planned = view[side].files.filter(inPlan);
        return planned.length > 0 && rng.chance(0.7) ? planned : view[side].files;
      })()
    : view[side].files.filter((p) => !inPlan(p));
  const what = rng.weighted({ edit: 4, create: 1, delete: candidates.length > 3 ? 1 : 0 });
  if (what === 'create') {
    const path = freePath(rng, state, view, side);
    return path === undefined || path === slow.path ? undefined : { kind: 'create', side, path, size: fileSize(rng), tag, mtime: 'now' };
  }
  if (candidates.length === 0) return undefined;
  const path = rng.pick(candidates);
  if (what === 'delete') return { kind: 'delete', side, path };
  return { kind: 'edit', side, path, size: rng.chance(0.3) ? 'same' : fileSize(rng), tag, mtime: 'now' };
}

function slowFile(rng: Rng, view: View, tag: string): SlowFile {
  const side = rng.pick(SIDES);
  const folder = rng.pick(['', ...FOLDERS].filter((f) => !blocked(joinPath(f, 'x'), view[side], false)));
  return { side, path: joinPath(folder, `slow-${tag.split('.')[1]}.bin`), size: rng.int(400, 700) * 1024, tag };
}

/** A path for a new file on a side: nothing there yet, no file where a folder of it must be. */
function freePath(rng: Rng, state: GeneratorState, view: View, side: Side): string | undefined {
  const here = view[side];
  const folderNames = state.classes.has('file-named-like-folder');
  // Where a folder rename left an empty folder on the other side, a file of that name is the case to try.
  const folderElsewhere = [...view[other(side)].folders].filter((f) => !blocked(f, here, true)).sort();
  for (let i = 0; i < 10; i++) {
    const path =
      folderNames && folderElsewhere.length > 0 && rng.chance(0.4)
        ? rng.pick(folderElsewhere)
        : folderNames && rng.chance(0.15)
          ? rng.pick([...FOLDERS, ...FOLDER_RENAME_TARGETS])
          : joinPath(rng.pick(['', ...FOLDERS, ...FOLDER_RENAME_TARGETS]), rng.pick(FILE_NAMES));
    if (!blocked(path, here, true)) return path;
  }
  return undefined;
}

/** Cannot put a file (or, `asFolder`, a folder) at `path` on this side: something is in the way. */
function blocked(path: string, side: SideView, exact: boolean): boolean {
  if (exact && (side.files.includes(path) || side.folders.has(path) || side.files.some((f) => f.startsWith(`${path}/`)))) return true;
  return foldersAbove(path).some((folder) => side.files.includes(folder));
}

function foldersAbove(path: string): string[] {
  const result: string[] = [];
  for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) result.push(path.slice(0, slash));
  return result;
}

async function viewOf(dir: string): Promise<SideView> {
  const files = await listFiles(dir);
  const folders = new Set<string>();
  const candidates = new Set([...FOLDERS, ...FOLDER_RENAME_TARGETS, ...files.flatMap(foldersAbove)]);
  for (const folder of candidates) if (isDirectory(join(dir, folder))) folders.add(folder);
  return { files, folders };
}

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

// ---------------------------------------------------------------------------------------------
// The ledger: what must hold after a successful run
// ---------------------------------------------------------------------------------------------

const locationKey = (side: Side, path: string) => `${side}\0${path}`;

export class Ledger {
  /** Paths each side's user changed since the last successful run. */
  readonly touched: Record<Side, Set<string>> = { path1: new Set(), path2: new Set() };
  /**
   * Every content seen at a location just before a run since the last success (or written there
   * during one), and whether it may go: at some moment since, it was that side's unchanged version
   * of a path only the other side had changed. Once it may go, it stays so: a killed run may rightly
   * have replaced it before the user then touched the path on its side too.
   */
  private readonly required = new Map<string, Map<string, boolean>>();
  /**
   * Every content the user ever wrote, on either side, or adopted: a file they renamed or touched
   * is theirs even if a killed run had left it half-written.
   */
  readonly written = new Set<string>();

  markTouched(side: Side, path: string): void {
    this.touched[side].add(path);
    const otherSide = other(side);
    if (this.touched[otherSide].has(path)) return;
    const theirs = this.required.get(locationKey(otherSide, path));
    for (const digest of theirs?.keys() ?? []) theirs!.set(digest, true);
  }

  /**
   * The user overwrote or deleted the version at this location: it need not survive — wherever it
   * was first recorded (a killed run may have renamed it there, say as a conflict copy).
   */
  forget(side: Side, path: string, digest: string | undefined): void {
    if (digest === undefined) return;
    this.required.get(locationKey(side, path))?.delete(digest);
    for (const digests of this.required.values()) digests.delete(digest);
  }

  /** A content that must survive unless `mayGo`. */
  require(side: Side, path: string, digest: string, mayGo = false): void {
    const key = locationKey(side, path);
    let digests = this.required.get(key);
    if (!digests) this.required.set(key, (digests = new Map()));
    digests.set(digest, mayGo || (digests.get(digest) ?? false));
  }

  /** Records both sides as they are just before a run. */
  beforeRun(trees: Record<Side, Record<string, string>>): void {
    for (const side of SIDES) {
      for (const [path, digest] of Object.entries(trees[side])) this.require(side, path, digest, this.mayGo(side, path));
    }
  }

  private mayGo(side: Side, path: string): boolean {
    return !this.touched[side].has(path) && this.touched[other(side)].has(path);
  }

  /** The required contents missing from both sides, as readable lines. */
  missing(trees: Record<Side, Record<string, string>>): string[] {
    const present = new Set(SIDES.flatMap((side) => Object.values(trees[side])));
    const lost: string[] = [];
    for (const [key, digests] of this.required) {
      const [side, path] = key.split('\0') as [Side, string];
      // Only what the user wrote must survive: a killed run's half-written bytes (often an empty
      // file) are nobody's, and the next run may rightly replace or remove them.
      for (const [digest, mayGo] of digests) if (!mayGo && !present.has(digest) && this.written.has(digest)) lost.push(`${side}:${path} (sha256 ${digest.slice(0, 12)})`);
    }
    return lost.sort();
  }

  /** A run succeeded and was checked: start over. */
  reset(): void {
    this.touched.path1.clear();
    this.touched.path2.clear();
    this.required.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Running a history
// ---------------------------------------------------------------------------------------------

export type FailureKind = 'exit-code' | 'sides-differ' | 'content-lost' | 'junk' | 'mtimes-differ' | 'harness';

export interface HistoryFailure {
  readonly kind: FailureKind;
  /** Index in `steps` of the step that failed. */
  readonly at: number;
  readonly message: string;
  /** The CLI output that goes with it. */
  readonly detail: string;
}

export interface HistoryResult {
  /** The steps carried out, in order (skipped ones included, marked in `skipped`). */
  readonly steps: Step[];
  readonly skipped: ReadonlySet<number>;
  readonly failure?: HistoryFailure;
  readonly stats: HistoryStats;
}

/** What a history really did (a kill may come after the run ended; an injected run may exit 0 or 1). */
export interface HistoryStats {
  runs: number;
  killed: number;
  /** Runs with an injected edit that exited 1 (noticed the change) / 0. */
  injectedNoticed: number;
  injectedPassed: number;
  conflicts: number;
  /** Runs that exited 0 having read only the folders that changed (on either side). */
  readInPart: number;
}

export const describeStats = (s: HistoryStats) =>
  `${s.runs} runs, ${s.killed} killed, ${s.injectedNoticed + s.injectedPassed} with an injected edit (${s.injectedNoticed} exited 1), ${s.conflicts} conflicts, ${s.readInPart} read in part`;

class Failed extends Error {
  readonly failure: Omit<HistoryFailure, 'at'>;
  constructor(failure: Omit<HistoryFailure, 'at'>) {
    super(failure.message);
    this.failure = failure;
  }
}

/** Both sides' files (sha256 per path); `.rclonesync-trash/` kept apart. */
async function treesOf(target: HistoryTarget): Promise<{ files: Record<Side, Record<string, string>>; all: Record<Side, Record<string, string>> }> {
  // digestTree leaves the trash out unless asked: `all` is where a version may still be found.
  const all = { path1: await digestTree(target.dirs.path1, { withTrash: true }), path2: await digestTree(target.dirs.path2, { withTrash: true }) };
  return { files: { path1: await digestTree(target.dirs.path1), path2: await digestTree(target.dirs.path2) }, all };
}

export interface HistoryOptions {
  readonly target: HistoryTarget;
  readonly classes: ReadonlySet<OpClass>;
  /** Progress lines (one per step). */
  readonly log?: (line: string) => void;
}

/** Draws and carries out history `seed`: the set-up steps, `steps` random ones, then a final sync. */
export function generateHistory(seed: number, steps: number, options: HistoryOptions): Promise<HistoryResult> {
  return new HistoryRun(options).run(seed, initialSteps(seed), steps);
}

/** Carries out exactly these steps (then a final sync, if they do not end with one). */
export function replayHistory(steps: readonly Step[], options: HistoryOptions): Promise<HistoryResult> {
  return new HistoryRun(options).run(0, [...steps], 0);
}

class HistoryRun {
  private readonly ledger = new Ledger();
  private readonly target: HistoryTarget;
  private readonly options: HistoryOptions;
  private killedSinceSuccess = false;
  private readonly stats: HistoryStats = { runs: 0, killed: 0, injectedNoticed: 0, injectedPassed: 0, conflicts: 0, readInPart: 0 };

  constructor(options: HistoryOptions) {
    this.options = options;
    this.target = options.target;
  }

  async run(seed: number, given: Step[], randomSteps: number): Promise<HistoryResult> {
    const done: Step[] = [];
    const skipped = new Set<number>();
    const total = given.length + randomSteps;
    for (let i = 0; i <= total; i++) {
      let step: Step;
      if (i < given.length) step = given[i]!;
      else if (i < total) {
        const view = { path1: await viewOf(this.target.dirs.path1), path2: await viewOf(this.target.dirs.path2) };
        const state = { seed, classes: this.options.classes, touched: this.ledger.touched, killedSinceSuccess: this.killedSinceSuccess };
        step = nextStep(state, i, view);
      } else if (done.at(-1)?.kind !== 'sync') step = { kind: 'sync' };
      else break;
      done.push(step);
      this.options.log?.(`${String(i).padStart(3)} ${describeStep(step)}`);
      try {
        if (!(await this.perform(step))) {
          skipped.add(i);
          this.options.log?.('      (skipped: its target is not there)');
        }
      } catch (error) {
        const failure = error instanceof Failed ? error.failure : { kind: 'harness' as const, message: String((error as Error)?.stack ?? error), detail: '' };
        return { steps: done, skipped, failure: { ...failure, at: i }, stats: this.stats };
      }
    }
    return { steps: done, skipped, stats: this.stats };
  }

  /** Carries out one step; false when it could not (its target is gone). */
  private async perform(given: Step): Promise<boolean> {
    const step = await this.withConflictCopiesOfNow(given);
    switch (step.kind) {
      case 'sync': {
        for (let run = 0; run < (step.settle ? 2 : 1); run++) {
          const result = await this.sync();
          if (result.exitCode !== 0) throw new Failed({ kind: 'exit-code', message: `a normal run exited ${result.exitCode}`, detail: dump(result) });
          await this.checkAfterSuccess(result);
        }
        return true;
      }
      case 'sync-killed':
        return this.killedSync(step);
      case 'sync-injected':
        return this.injectedSync(step);
      default:
        return this.userOp(step);
    }
  }

  private async sync(): Promise<CliResult> {
    await this.recordBeforeRun();
    return runCli(['run'], this.target.env(RUN_ENV), { timeoutMs: 120_000 });
  }

  private async recordBeforeRun(): Promise<void> {
    this.stats.runs++;
    this.ledger.beforeRun((await treesOf(this.target)).all);
  }

  private async checkAfterSuccess(result: CliResult): Promise<void> {
    this.stats.conflicts += result.logs.filter((l) => l.action === 'conflict').length;
    if (result.logs.some((l) => typeof l.changedFolders === 'number')) this.stats.readInPart++;
    const { files, all } = await treesOf(this.target);
    const differ = diffTrees(files.path1, files.path2);
    if (differ.length > 0) throw new Failed({ kind: 'sides-differ', message: `after a run that exited 0 the sides differ:\n  ${differ.join('\n  ')}`, detail: dump(result) });
    const lost = this.ledger.missing(all);
    if (lost.length > 0) throw new Failed({ kind: 'content-lost', message: `after a run that exited 0 these versions exist on neither side:\n  ${lost.join('\n  ')}`, detail: dump(result) });
    // The engine only ever moves what people wrote: anything else is a half-written copy left standing
    // (in the synced tree; the trash is where such bytes may rightly go).
    const junk = !this.options.classes.has('half-written-junk') ? [] : SIDES.flatMap((side) => Object.entries(files[side]).filter(([, digest]) => !this.ledger.written.has(digest)).map(([path]) => `${side}:${path}`));
    if (junk.length > 0) throw new Failed({ kind: 'junk', message: `after a run that exited 0 these files hold bytes nobody wrote (half-written copies?):\n  ${junk.join('\n  ')}`, detail: dump(result) });
    if (this.options.classes.has('touch-times')) {
      const [s1, s2] = [await statTree(this.target.dirs.path1), await statTree(this.target.dirs.path2)];
      const off = Object.keys(files.path1).filter((p) => Math.abs(s1[p]!.mtimeMs - s2[p]!.mtimeMs) >= 1000);
      if (off.length > 0) {
        const lines = off.map((p) => `${p}: ${new Date(s1[p]!.mtimeMs).toISOString()} vs ${new Date(s2[p]!.mtimeMs).toISOString()}`);
        throw new Failed({ kind: 'mtimes-differ', message: `after a run that exited 0 modification times differ:\n  ${lines.join('\n  ')}`, detail: dump(result) });
      }
    }
    this.ledger.reset();
    this.killedSinceSuccess = false;
  }

  private async writeSlowFile(slow: SlowFile): Promise<boolean> {
    const full = join(this.target.dirs[slow.side], slow.path);
    if (existsSync(full) || (await this.blockedOnDisk(slow.side, slow.path))) return false;
    await this.userOp({ kind: 'create', side: slow.side, path: slow.path, size: slow.size, tag: slow.tag, mtime: 'now' }, slowContentOf(slow));
    return true;
  }

  private async killedSync(step: Extract<Step, { kind: 'sync-killed' }>): Promise<boolean> {
    if (step.startAfterMs) await sleep(step.startAfterMs);
    await this.writeSlowFile(step.slow);
    await this.recordBeforeRun();
    const journalBefore = await this.journalIdentity();
    const running = spawnCli(['run'], this.target.env(SLOW_ENV), { detached: true });
    const reached = await this.waitFor(step.trigger, running, journalBefore);
    if (reached) {
      try {
        running.killGroup('SIGKILL');
      } catch {
        // It ended on its own just now.
      }
    }
    const result = await running.result;
    if (result.exitCode === 0) {
      // Done before the kill: an ordinary successful run.
      await this.checkAfterSuccess(result);
      return true;
    }
    if (reached && result.exitCode < 0) {
      this.stats.killed++;
      this.killedSinceSuccess = true;
      return true;
    }
    // SIGKILL shows as no exit code (-1 here); anything else is the run failing on its own.
    throw new Failed({ kind: 'exit-code', message: `a run that was to be killed exited ${result.exitCode} by itself`, detail: dump(result) });
  }

  private async injectedSync(step: Extract<Step, { kind: 'sync-injected' }>): Promise<boolean> {
    await this.writeSlowFile(step.slow);
    await this.recordBeforeRun();
    const journalBefore = await this.journalIdentity();
    const running = spawnCli(['run'], this.target.env(SLOW_ENV));
    await this.waitFor(step.trigger, running, journalBefore);
    const injected = await this.userOp(step.inject);
    const result = await running.result;
    // Exit 1 is fine here (the run noticed a file changing under it); the next run must then succeed.
    if (result.exitCode !== 0 && result.exitCode !== 1) {
      throw new Failed({ kind: 'exit-code', message: `a run with an edit injected exited ${result.exitCode}`, detail: dump(result) });
    }
    if (result.exitCode === 0) this.stats.injectedPassed++;
    else this.stats.injectedNoticed++;
    const followUp = await this.sync();
    if (followUp.exitCode !== 0) {
      throw new Failed({ kind: 'exit-code', message: `the run after a run with an injected edit (which exited ${result.exitCode}) exited ${followUp.exitCode}`, detail: `${dump(followUp)}\n--- the run with the injected edit ---\n${dump(result)}` });
    }
    await this.checkAfterSuccess(followUp);
    return injected;
  }

  /**
   * A replayed step that names a conflict copy (its name holds the stamp of the run that made it)
   * means the conflict copy of this replay: same name, another stamp.
   */
  private async withConflictCopiesOfNow(step: Step): Promise<Step> {
    const resolve = async (side: Side, path: string): Promise<string> => {
      if (!CONFLICT_STAMP.test(path) || existsSync(join(this.target.dirs[side], path))) return path;
      const pattern = path.replace(CONFLICT_STAMP, '\0');
      const files = await listFiles(this.target.dirs[side]);
      return files.find((f) => f.replace(CONFLICT_STAMP, '\0') === pattern) ?? path;
    };
    switch (step.kind) {
      case 'edit':
      case 'delete':
      case 'touch':
        return { ...step, path: await resolve(step.side, step.path) };
      case 'rename':
        return { ...step, from: await resolve(step.side, step.from) };
      case 'twin-edit':
        return { ...step, path: await resolve('path1', step.path) };
      case 'sync-injected':
        return step.inject.kind === 'edit' || step.inject.kind === 'delete' ? { ...step, inject: { ...step.inject, path: await resolve(step.inject.side, step.inject.path) } } : step;
      default:
        return step;
    }
  }

  /** Resolves once the trigger's moment came (true), or the run ended first (false). */
  private async waitFor(trigger: Trigger, running: RunningCli, journalBefore: string | undefined): Promise<boolean> {
    let ended = false;
    void running.result.then(() => (ended = true));
    if (trigger.after === 'journal') {
      const deadline = Date.now() + 30_000;
      while (!ended && Date.now() < deadline && (await this.journalIdentity()) === journalBefore) await sleep(10);
    }
    const until = Date.now() + trigger.delayMs;
    while (!ended && Date.now() < until) await sleep(Math.min(20, until - Date.now()));
    return !ended;
  }

  /** The journal file's inode and mtime, or undefined without one (a run writes a new one atomically). */
  private async journalIdentity(): Promise<string | undefined> {
    const pairs = await listFiles(this.target.stateDir);
    const journal = pairs.find((p) => p.endsWith('/journal.jsonl'));
    if (!journal) return undefined;
    try {
      const s = await stat(join(this.target.stateDir, journal));
      return `${s.ino}`;
    } catch {
      return undefined;
    }
  }

  private async blockedOnDisk(side: Side, path: string): Promise<boolean> {
    const root = this.target.dirs[side];
    if (isDirectory(join(root, path))) return true;
    for (const folder of foldersAbove(path)) if (existsSync(join(root, folder)) && !isDirectory(join(root, folder))) return true;
    return false;
  }

  private async digestAt(side: Side, path: string): Promise<string | undefined> {
    try {
      return sha256(await readFile(join(this.target.dirs[side], path)));
    } catch {
      return undefined;
    }
  }

  /** Carries out a user's change; false when its target is not there (or its place is taken). */
  private async userOp(op: UserOp, bytes?: Buffer): Promise<boolean> {
    const { ledger } = this;
    switch (op.kind) {
      case 'create': {
        const full = join(this.target.dirs[op.side], op.path);
        if (existsSync(full) || (await this.blockedOnDisk(op.side, op.path))) return false;
        await this.write(op.side, op.path, bytes ?? contentOf(op.tag, op.size), op.mtime, undefined);
        return true;
      }
      case 'edit': {
        const full = join(this.target.dirs[op.side], op.path);
        const before = await stat(full).catch(() => undefined);
        if (!before?.isFile()) return false;
        ledger.forget(op.side, op.path, await this.digestAt(op.side, op.path));
        // Keeping the mtime and the size would make the edit invisible to size,modtime by definition.
        const size = op.size === 'same' ? before.size : op.size === before.size && op.mtime === 'keep' ? op.size + 1 : op.size;
        await this.write(op.side, op.path, contentOf(op.tag, size), op.mtime, before.mtime);
        return true;
      }
      case 'twin-edit': {
        const [a, b] = [await stat(join(this.target.dirs.path1, op.path)).catch(() => undefined), await stat(join(this.target.dirs.path2, op.path)).catch(() => undefined)];
        if (!a?.isFile() || !b?.isFile()) return false;
        for (const side of SIDES) {
          ledger.forget(side, op.path, await this.digestAt(side, op.path));
          await this.write(side, op.path, contentOf(`${op.tag}.${side}`, a.size), op.mtime, undefined);
        }
        return true;
      }
      case 'delete': {
        const digest = await this.digestAt(op.side, op.path);
        if (digest === undefined) return false;
        ledger.forget(op.side, op.path, digest);
        ledger.markTouched(op.side, op.path);
        await rm(join(this.target.dirs[op.side], op.path));
        return true;
      }
      case 'rename': {
        const digest = await this.digestAt(op.side, op.from);
        const root = this.target.dirs[op.side];
        if (digest === undefined || existsSync(join(root, op.to)) || (await this.blockedOnDisk(op.side, op.to))) return false;
        ledger.forget(op.side, op.from, digest);
        ledger.written.add(digest);
        ledger.markTouched(op.side, op.from);
        ledger.markTouched(op.side, op.to);
        await mkdir(dirname(join(root, op.to)), { recursive: true });
        await rename(join(root, op.from), join(root, op.to));
        return true;
      }
      case 'rename-folder': {
        const root = this.target.dirs[op.side];
        if (!isDirectory(join(root, op.from)) || existsSync(join(root, op.to)) || (await this.blockedOnDisk(op.side, op.to))) return false;
        const moved = await listFiles(join(root, op.from));
        for (const file of moved) {
          const from = `${op.from}/${file}`;
          const digest = await this.digestAt(op.side, from);
          ledger.forget(op.side, from, digest);
          if (digest !== undefined) ledger.written.add(digest);
          ledger.markTouched(op.side, from);
          ledger.markTouched(op.side, `${op.to}/${file}`);
        }
        await mkdir(dirname(join(root, op.to)), { recursive: true });
        await rename(join(root, op.from), join(root, op.to));
        return true;
      }
      case 'touch': {
        const full = join(this.target.dirs[op.side], op.path);
        const digest = await this.digestAt(op.side, op.path);
        if (digest === undefined) return false;
        ledger.written.add(digest);
        ledger.markTouched(op.side, op.path);
        await utimes(full, new Date(op.mtime), new Date(op.mtime));
        return true;
      }
    }
  }

  /** Writes a file a user's program would: the new bytes (required to survive), then the mtime. */
  private async write(side: Side, path: string, bytes: Buffer, mtime: Mtime, previous: Date | undefined): Promise<void> {
    const full = join(this.target.dirs[side], path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, bytes);
    if (mtime === 'keep' && previous) await utimes(full, previous, previous);
    else if (typeof mtime === 'number') await utimes(full, new Date(mtime), new Date(mtime));
    this.ledger.markTouched(side, path);
    const digest = sha256(bytes);
    this.ledger.written.add(digest);
    this.ledger.require(side, path, digest);
  }
}

/** The differences between two trees of digests, one line each. */
export function diffTrees(a: Record<string, string>, b: Record<string, string>): string[] {
  const lines: string[] = [];
  for (const path of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (!(path in b)) lines.push(`${path}: only on path1`);
    else if (!(path in a)) lines.push(`${path}: only on path2`);
    else if (a[path] !== b[path]) lines.push(`${path}: different contents`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Minimising a failing history
// ---------------------------------------------------------------------------------------------

/**
 * Shortens a failing step list while it still fails the same way (same failure kind): first by
 * dropping chunks, then single steps (delta debugging, greedy). `attempt` replays a candidate on a
 * fresh pair. Timing-dependent failures may not reproduce on every try; `tries` replays each
 * candidate up to that many times.
 */
export async function minimise(
  steps: readonly Step[],
  kind: FailureKind,
  attempt: (steps: readonly Step[]) => Promise<HistoryResult>,
  options: { tries?: number; log?: (line: string) => void } = {},
): Promise<Step[]> {
  let current = [...steps];
  const fails = async (candidate: readonly Step[]) => {
    for (let t = 0; t < (options.tries ?? 1); t++) if ((await attempt(candidate)).failure?.kind === kind) return true;
    return false;
  };
  for (let chunk = Math.max(1, Math.floor(current.length / 2)); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let start = 0; start < current.length; ) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)];
      if (candidate.length > 0 && (await fails(candidate))) {
        current = candidate;
        options.log?.(`minimise: ${current.length} steps still fail (${kind})`);
      } else start += chunk;
    }
  }
  return current;
}
