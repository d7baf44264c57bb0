/**
 * Reconciliation: a pure function from what changed on each side to a plan. No I/O, no clock:
 * everything it needs (current listings for name collisions, the run's timestamp, the results
 * of any content checks) is passed in, so it can be tested exhaustively.
 */
import { sameVersion, type CrossSideCompare, type Sameness } from './compare.ts';
import { type Action, type ChangeSet, type ConflictOutcome, type Plan, type SideState } from './types.ts';
import { otherSide, type ConflictResolve, type FileMeta, type Listing, type Side } from '../model.ts';

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
}

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
    if (a && b && sameness(a, b, input.compare) === 'unknown') result.push(path);
  }
  return result;
}

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
  const actions: Action[] = [];
  const names = new ConflictNamer(input);
  // Sorted so that plans, logs and conflict names are deterministic.
  const paths = [...changedPaths(input)].sort();
  for (const path of paths) {
    const s1 = stateOf(path, input.changes.path1, input.current.path1);
    const s2 = stateOf(path, input.changes.path2, input.current.path2);
    const action = decide(path, s1, s2, input, names);
    if (action) actions.push(action);
  }
  return { actions: resolveFileFolderClashes(actions, input, names) };
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
  const keptFiles = { path1: undefined as Map<string, number> | undefined, path2: undefined as Map<string, number> | undefined };
  const filesKeptUnder = (side: Side): Map<string, number> => {
    if (keptFiles[side]) return keptFiles[side];
    const deleted = new Set<string>();
    for (const action of actions) if (action.kind === 'delete' && action.side === side) deleted.add(action.path);
    const counts = new Map<string, number>();
    for (const path of input.current[side].keys()) {
      if (deleted.has(path)) continue;
      for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
        const folder = path.slice(0, slash);
        counts.set(folder, (counts.get(folder) ?? 0) + 1);
      }
    }
    return (keptFiles[side] = counts);
  };
  return actions.map((action) => {
    if (action.kind !== 'copy') return action;
    const to = otherSide(action.from);
    if (copiesInto[to] === 0 || !filesKeptUnder(to).has(action.path)) return action;
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
 */
export class ConflictNamer {
  private readonly taken = new Set<string>();
  private readonly input: Pick<ReconcileInput, 'current' | 'stamp'>;
  constructor(input: Pick<ReconcileInput, 'current' | 'stamp'>) {
    this.input = input;
  }

  allocate(path: string, side: Side): string {
    for (let n = 1; ; n++) {
      const candidate = conflictName(path, side, this.input.stamp, n);
      if (this.taken.has(candidate) || this.input.current.path1.has(candidate) || this.input.current.path2.has(candidate)) continue;
      this.taken.add(candidate);
      return candidate;
    }
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
