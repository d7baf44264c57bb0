/**
 * Reconciliation: a pure function from what changed on each side to a plan. No I/O, no clock:
 * everything it needs (current listings for name collisions, the run's timestamp, the results
 * of any content checks) is passed in, so it can be tested exhaustively.
 */
import { sameVersion, type CrossSideCompare, type Sameness } from './compare.ts';
import { type Action, type ChangeSet, type ConflictOutcome, type Plan, type SideState } from './types.ts';
import { addFoldersAbove, folderOf, inFolder, otherSide, SIDES, type ConflictResolve, type FileMeta, type Listing, type Side } from '../model.ts';
import { foldersAbove, type Renames } from './renames.ts';

export interface ReconcileInput {
  readonly changes: { readonly path1: ChangeSet; readonly path2: ChangeSet };
  /** Current listings of both sides: for the quiet side of a change, and for conflict names. */
  readonly current: { readonly path1: Listing; readonly path2: Listing };
  readonly compare: CrossSideCompare;
  readonly conflictResolve: ConflictResolve;
  /** Paths whose two current versions rclone compared and found identical. */
  readonly verifiedSame: ReadonlySet<string>;
  /** The run's start, compact UTC (20261125T143200Z): it goes into conflict names. */
  readonly stamp: string;
  /** Resync: merge both sides, delete nothing. */
  readonly resync: boolean;
  /** Renames confirmed on each side (new path -> old path; see renames.ts): carried out as moves. */
  readonly renames?: { readonly path1: Renames; readonly path2: Renames };
  /**
   * Sides whose backend takes names that differ only in case (or unicode normalization) for one
   * name (rclone's CaseInsensitive feature; see `foldsNames`).
   */
  readonly foldsNames?: { readonly path1: boolean; readonly path2: boolean };
}

/** The sides that fold names, from the backends' features (rclone backend features → CaseInsensitive). */
export const foldsNames = (features: Record<Side, { readonly caseInsensitive: boolean }>) => ({
  path1: features.path1.caseInsensitive,
  path2: features.path2.caseInsensitive,
});

/** One name, as a case-insensitive (and normalizing) backend sees it. */
export const foldedName = (path: string): string => path.normalize('NFC').toLowerCase();

export function stateOf(path: string, changes: ChangeSet, current: Listing): SideState {
  const change = changes.get(path);
  if (change) return change;
  const now = current.get(path);
  return now ? { kind: 'unchanged', now } : { kind: 'absent' };
}

const presentMeta = (state: SideState): FileMeta | undefined =>
  state.kind === 'deleted' || state.kind === 'absent' ? undefined : state.now;

/**
 * Paths whose current versions exist on both sides with one side (or both) changed, where
 * metadata cannot tell whether the contents agree. The caller checks them with rclone and passes
 * the identical ones back as `verifiedSame`.
 */
export function pathsNeedingContentCheck(input: Omit<ReconcileInput, 'verifiedSame'>): string[] {
  const result: string[] = [];
  for (const path of changedPaths(input)) {
    const s1 = stateOf(path, input.changes.path1, input.current.path1);
    const s2 = stateOf(path, input.changes.path2, input.current.path2);
    const a = presentMeta(s1);
    const b = presentMeta(s2);
    if (!a || !b || sameness(a, b, input.compare) !== 'unknown') continue;
    // Changed on one side only, with the two times apart: `decide` copies it whatever the contents
    // say (the contents, or just the time), so reading both files to compare them buys nothing.
    if (!input.resync && oneSidedEdit(s1, s2) && Math.abs(a.mtime - b.mtime) > input.compare.mtimeToleranceMs) continue;
    result.push(path);
  }
  return result;
}

const oneSidedEdit = (s1: SideState, s2: SideState): boolean =>
  (s1.kind === 'modified' && s2.kind === 'unchanged') || (s1.kind === 'unchanged' && s2.kind === 'modified');

/**
 * sameVersion, plus what the history tells. Once a path changed on either side, equal sizes and
 * mtimes agreeing within the tolerance prove nothing: a rewrite that keeps the size, made within
 * the tolerance of the synced version (a program saving twice in a second, next to a 1 s precision
 * backend), would pass for the old version and never be carried over; two programs saving a
 * same-size file in the same second on both sides (or two trees merged by a first run) would pass
 * for one version and stay different forever. Only common hashes or a content check can tell.
 */
function sameness(m1: FileMeta, m2: FileMeta, compare: CrossSideCompare): Sameness {
  const result = sameVersion(m1, m2, compare);
  const byHash = compare.commonHash && m1.hash !== '' && m2.hash !== '';
  return result === 'same' && !byHash ? 'unknown' : result;
}

function* changedPaths(input: Pick<ReconcileInput, 'changes'>): Generator<string> {
  yield* input.changes.path1.keys();
  for (const path of input.changes.path2.keys()) if (!input.changes.path1.has(path)) yield path;
}

export function reconcile(input: ReconcileInput): Plan {
  const names = new ConflictNamer(input);
  const { moves, handled } = movesOf(input);
  const actions: Action[] = [...moves];
  // Sorted so that plans, logs and conflict names are deterministic.
  const paths = [...changedPaths(input)].sort();
  for (const path of paths) {
    if (handled.has(path)) continue;
    const s1 = stateOf(path, input.changes.path1, input.current.path1);
    const s2 = stateOf(path, input.changes.path2, input.current.path2);
    const action = decide(path, s1, s2, input, names);
    if (action) actions.push(action);
  }
  // Moves first came from their own pass: the plan stays sorted by path all the same.
  if (moves.length > 0) actions.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { actions: resolveNameClashes(resolveFileFolderClashes(actions, input, names), input, names) };
}

/**
 * Two names that differ only in case (`Report.pdf`, `report.pdf`) or unicode normalization are one
 * name on a backend that folds names: carried there, the second would overwrite the first. So a
 * copy into such a side whose name folds onto another name that side keeps or receives is renamed
 * on its own side to a conflict-style name and carried under that name (the engine warns, naming
 * both); a deletion there of a name an incoming file folds onto is left out (it would remove the
 * file just written). The first name, in name order, keeps it; a name already there keeps it first.
 */
function resolveNameClashes(actions: Action[], input: ReconcileInput, names: ConflictNamer): Action[] {
  const folds = input.foldsNames;
  if (!folds || (!folds.path1 && !folds.path2)) return actions;
  let result = actions;
  for (const target of SIDES) {
    if (!folds[target]) continue;
    const from = otherSide(target);
    const removed = new Set<string>();
    for (const a of result) {
      if (a.kind === 'delete' && a.side === target) removed.add(a.path);
      if (a.kind === 'move' && a.side === target) removed.add(a.from);
    }
    // Names the target keeps: its files not removed, and what moves there.
    const taken = new Map<string, string>();
    for (const path of input.current[target].keys()) if (!removed.has(path)) taken.set(foldedName(path), path);
    for (const a of result) if (a.kind === 'move' && a.side === target) taken.set(foldedName(a.path), a.path);
    const incoming = new Set<string>();
    result = result.map((action) => {
      if (action.kind !== 'copy' || action.from !== from) return action;
      const key = foldedName(action.path);
      const holder = taken.get(key);
      if (holder === undefined || holder === action.path) {
        taken.set(key, action.path);
        incoming.add(key);
        return action;
      }
      const meta = input.current[from].get(action.path)!;
      return { kind: 'file-folder-clash', side: from, path: action.path, to: names.allocate(action.path, from), meta, sameNameAs: holder };
    });
    result = result.filter((a) => !(a.kind === 'delete' && a.side === target && incoming.has(foldedName(a.path)) && !input.current[from].has(a.path)));
  }
  return result;
}

/**
 * Confirmed renames the other side can follow as they are: the old path gone here and still the
 * synced version there, the new path new here and free there (no file, no folder of that name).
 * Anything else — renamed on one side and modified, deleted or renamed differently on the other —
 * is left to the per-path decisions, which keep every version: a change beats a deletion, and two
 * new names are two new files.
 */
function movesOf(input: ReconcileInput): { moves: Action[]; handled: Set<string> } {
  const moves: Action[] = [];
  const handled = new Set<string>();
  if (input.resync || !input.renames) return { moves, handled };
  for (const side of SIDES) {
    const renames = input.renames[side];
    if (renames.size === 0) continue;
    const other = otherSide(side);
    const theirFolders = new Set<string>();
    for (const path of input.current[other].keys()) for (const folder of foldersAbove(path)) theirFolders.add(folder);
    for (const [to, from] of [...renames].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (handled.has(to) || handled.has(from)) continue;
      if (input.changes[side].get(from)?.kind !== 'deleted' || input.changes[side].get(to)?.kind !== 'new') continue;
      if (input.changes[other].has(from) || input.changes[other].has(to)) continue;
      const meta = input.current[other].get(from);
      if (!meta || input.current[other].has(to) || theirFolders.has(to)) continue;
      // A new folder's name taken by a file over there (which this plan would have to remove first).
      if ([...foldersAbove(to)].some((folder) => input.current[other].has(folder))) continue;
      moves.push({ kind: 'move', side: other, from, path: to, meta });
      handled.add(from);
      handled.add(to);
    }
  }
  return { moves, handled };
}

/**
 * A file copied to a side where its name is a folder that keeps files after this plan (a file on
 * one side, a folder on the other, say two trees merged by a first run) cannot be copied: neither
 * may win. The folder keeps the name; the file is renamed beside it and both are kept everywhere.
 * A folder whose files this plan deletes (a folder that became a file) is not a clash.
 */
function resolveFileFolderClashes(actions: Action[], input: ReconcileInput, names: ConflictNamer): Action[] {
  const copiesInto = { path1: 0, path2: 0 };
  for (const action of actions) if (action.kind === 'copy') copiesInto[otherSide(action.from)]++;
  if (copiesInto.path1 + copiesInto.path2 === 0) return actions;
  const keptFolders = { path1: undefined as Set<string> | undefined, path2: undefined as Set<string> | undefined };
  /** The folders of a side that still hold a file after this plan. */
  const foldersKeptOn = (side: Side): Set<string> => {
    if (keptFolders[side]) return keptFolders[side];
    const deleted = new Set<string>();
    const kept = new Set<string>();
    const keep = (path: string) => addFoldersAbove(kept, path);
    for (const action of actions) {
      if (action.kind === 'delete' && action.side === side) deleted.add(action.path);
      if (action.kind === 'move' && action.side === side) {
        deleted.add(action.from);
        keep(action.path);
      }
    }
    // The folders above a file are those above the first file kept in its folder: listings hold a
    // folder's files together, so most files need only a prefix check (walking up from every file
    // was ~40 ms for both sides of W2 at 100k files, in the serial part of a run).
    let folderOfLastKept: string | undefined;
    for (const path of input.current[side].keys()) {
      if (deleted.has(path)) continue;
      if (folderOfLastKept !== undefined && inFolder(path, folderOfLastKept)) continue;
      folderOfLastKept = folderOf(path);
      keep(path);
    }
    return (keptFolders[side] = kept);
  };
  return actions.map((action) => {
    if (action.kind !== 'copy') return action;
    const to = otherSide(action.from);
    if (copiesInto[to] === 0 || !foldersKeptOn(to).has(action.path)) return action;
    const meta = input.current[action.from].get(action.path)!;
    return { kind: 'file-folder-clash', side: action.from, path: action.path, to: names.allocate(action.path, action.from), meta };
  });
}

function decide(path: string, s1: SideState, s2: SideState, input: ReconcileInput, names: ConflictNamer): Action | undefined {
  const m1 = presentMeta(s1);
  const m2 = presentMeta(s2);

  if (m1 && m2) {
    // Present on both sides and at least one changed. The same content means nothing to do;
    // otherwise one side's change is safe to carry over only if the other side is untouched.
    const same = input.verifiedSame.has(path) || sameness(m1, m2, input.compare) === 'same';
    if (same) {
      // Same contents; a one-sided change of the modification time alone is still a change to
      // carry (rclone then updates just the time), or the two sides keep different times forever.
      if (!input.resync && Math.abs(m1.mtime - m2.mtime) > input.compare.mtimeToleranceMs) {
        if (s2.kind === 'unchanged' && s1.kind === 'modified') return copy('path1', path, 'modified', m1);
        if (s1.kind === 'unchanged' && s2.kind === 'modified') return copy('path2', path, 'modified', m2);
      }
      return undefined;
    }
    if (!input.resync) {
      if (s2.kind === 'unchanged' && s1.kind === 'modified') return copy('path1', path, 'modified', m1);
      if (s1.kind === 'unchanged' && s2.kind === 'modified') return copy('path2', path, 'modified', m2);
    }
    return conflict(path, m1, m2, input, names);
  }
  if (m1 && !m2) return carryOrDelete('path1', path, m1, s1, s2, input);
  if (m2 && !m1) return carryOrDelete('path2', path, m2, s2, s1, input);
  // Gone from both sides (deleted on both, or deleted on one and never on the other): nothing.
  return undefined;
}

/** The file exists only on `side`. */
function carryOrDelete(side: Side, path: string, meta: FileMeta, here: SideState, there: SideState, input: ReconcileInput): Action | undefined {
  if (input.resync) return copy(side, path, 'resync', meta);
  if (there.kind === 'deleted') {
    // Deleted over there: propagate the deletion only if nothing changed here since.
    if (here.kind === 'unchanged') return { kind: 'delete', side, path };
    return copy(side, path, 'restored', meta);
  }
  return copy(side, path, here.kind === 'modified' ? 'modified' : 'new', meta);
}

const copy = (from: Side, path: string, reason: 'new' | 'modified' | 'restored' | 'resync', meta: FileMeta): Action => ({
  kind: 'copy',
  from,
  path,
  reason,
  size: meta.size,
});

function conflict(path: string, m1: FileMeta, m2: FileMeta, input: ReconcileInput, names: ConflictNamer): Action {
  const winner = pickWinner(m1, m2, input.conflictResolve);
  let outcome: ConflictOutcome;
  if (winner === 'none') {
    outcome = { winner, path1Copy: names.allocate(path, 'path1'), path2Copy: names.allocate(path, 'path2') };
  } else {
    outcome = { winner, loserCopy: names.allocate(path, otherSide(winner)) };
  }
  return { kind: 'conflict', path, outcome, path1: m1, path2: m2 };
}

/** Who keeps the original name; a tie on the deciding property leaves nobody to prefer. */
function pickWinner(m1: FileMeta, m2: FileMeta, resolve: ConflictResolve): Side | 'none' {
  switch (resolve) {
    case 'none':
      return 'none';
    case 'path1':
    case 'path2':
      return resolve;
    case 'newer':
    case 'older':
      return preferred(m1.mtime, m2.mtime, resolve === 'newer');
    case 'larger':
    case 'smaller':
      return preferred(m1.size, m2.size, resolve === 'larger');
  }
}

// Equal values fall back to keeping both under conflict names.
const preferred = (value1: number, value2: number, higherWins: boolean): Side | 'none' =>
  value1 === value2 ? 'none' : value1 > value2 === higherWins ? 'path1' : 'path2';

/**
 * Conflict copy names: `dir/report.conflict-path2-20261125T143200Z.docx`. The extension stays last
 * so the file still opens with the right program. A name already taken on either side, or by
 * another conflict in this plan, gets a counter, so a later conflict never overwrites an earlier copy.
 * So does a name either side deleted since the last run: it is still in the last snapshot, and a run
 * that fails before its conflict is done commits that snapshot's entries back for every name the
 * conflict uses. A copy sitting under such a name would then look like a file the other side deleted,
 * and the next run would delete it.
 */
export class ConflictNamer {
  private readonly taken = new Set<string>();
  private readonly input: Pick<ReconcileInput, 'current' | 'changes' | 'stamp'>;
  private readonly reserved: (name: string) => boolean;
  /** `reserved`: names something else will write (asked only of a candidate, so nothing is copied up front). */
  constructor(input: Pick<ReconcileInput, 'current' | 'changes' | 'stamp'>, reserved: (name: string) => boolean = () => false) {
    this.input = input;
    this.reserved = reserved;
  }

  allocate(path: string, side: Side): string {
    for (let n = 1; ; n++) {
      const candidate = conflictName(path, side, this.input.stamp, n);
      if (this.taken.has(candidate) || this.inUse(candidate) || this.reserved(candidate)) continue;
      this.taken.add(candidate);
      return candidate;
    }
  }

  /** On either side now, or in either side's last snapshot (every snapshot name is listed now or changed). */
  private inUse(name: string): boolean {
    const { current, changes } = this.input;
    return current.path1.has(name) || current.path2.has(name) || changes.path1.has(name) || changes.path2.has(name);
  }
}

export function conflictName(path: string, side: Side, stamp: string, attempt = 1): string {
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  // A leading dot is a hidden file, not an extension (.bashrc); so is a dot at the very end.
  const dot = base.lastIndexOf('.');
  const hasExtension = dot > 0 && dot < base.length - 1;
  const stem = hasExtension ? base.slice(0, dot) : base;
  const extension = hasExtension ? base.slice(dot) : '';
  const counter = attempt > 1 ? `-${attempt}` : '';
  return `${dir}${stem}.conflict-${side}-${stamp}${counter}${extension}`;
}

/** Conflict names and trash folders share the run's stamp. */
export { compactStamp } from './trash.ts';
