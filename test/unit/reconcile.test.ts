import { describe, expect, it } from 'vitest';
import { changedOnSide, sameVersion, type CrossSideCompare } from '../../src/sync/compare.ts';
import {
  ConflictNamer,
  compactStamp,
  conflictName,
  pathsNeedingContentCheck,
  reconcile,
  stateOf,
  type ReconcileInput,
} from '../../src/sync/reconcile.ts';
import { countPlan, type Action, type Change, type Plan } from '../../src/sync/types.ts';
import { CONFLICT_RESOLVES, type ConflictResolve, type FileMeta, type Listing, type Side } from '../../src/model.ts';
import {
  applyPlan,
  contentsOf,
  emptyListings,
  file,
  planRun,
  sidesDiffer,
  snapshotsOf,
  type Listings,
  type ModelFile,
  type ModelOptions,
  type ModelSides,
} from '../helpers/model.ts';

const STAMP = '20261125T143200Z';
const P = 'docs/report.docx';

type Kind = 'unchanged' | 'new' | 'modified' | 'deleted' | 'absent';
const KINDS: readonly Kind[] = ['unchanged', 'new', 'modified', 'deleted', 'absent'];
const present = (kind: Kind): boolean => kind === 'unchanged' || kind === 'new' || kind === 'modified';

/**
 * How the two current versions relate when both sides hold the path. Each column of the table is
 * checked with two variants: for 'same', identical metadata and same content with a different
 * mtime (which needs the content check); for 'different', different sizes and the same size with
 * different content (metadata cannot tell: the content check says different).
 */
type Variant = 'same-meta' | 'same-content-other-mtime' | 'different-size' | 'different-same-size';
const SAME_VARIANTS: readonly Variant[] = ['same-meta', 'same-content-other-mtime'];
const DIFFERENT_VARIANTS: readonly Variant[] = ['different-size', 'different-same-size'];

const OLD = file('old version', 1_000);
function currents(variant: Variant): { path1: ModelFile; path2: ModelFile } {
  switch (variant) {
    case 'same-meta':
      return { path1: file('current', 500_000), path2: file('current', 500_000) };
    case 'same-content-other-mtime':
      return { path1: file('current', 500_000), path2: file('current', 800_000) };
    case 'different-size':
      return { path1: file('path1 version', 600_000), path2: file('p2', 700_000) };
    case 'different-same-size':
      return { path1: file('aaaa', 600_000), path2: file('bbbb', 700_000) };
  }
}

interface Scenario {
  readonly sides: ModelSides;
  readonly snapshots: Listings;
}

/** One path in state k1 on path1 and k2 on path2, built as real files and snapshots. */
function scenario(k1: Kind, k2: Kind, variant: Variant, checksum: boolean): Scenario {
  const now = currents(variant);
  const sides: ModelSides = { path1: new Map(), path2: new Map() };
  const snaps: ModelSides = { path1: new Map(), path2: new Map() };
  for (const [side, kind] of [['path1', k1], ['path2', k2]] as const) {
    if (present(kind)) sides[side].set(P, now[side]);
    if (kind === 'unchanged') snaps[side].set(P, now[side]);
    if (kind === 'modified' || kind === 'deleted') snaps[side].set(P, OLD);
  }
  return { sides, snapshots: snapshotsOf(snaps, checksum) };
}

const options = (over: Partial<ModelOptions> = {}): ModelOptions => ({
  checksum: false,
  mtimeToleranceMs: 1_000,
  conflictResolve: 'none',
  stamp: STAMP,
  resync: false,
  ...over,
});

function summary(plan: Plan): string {
  if (plan.actions.length === 0) return 'none';
  return plan.actions.map(describeAction).join('; ');
}
function describeAction(action: Action): string {
  switch (action.kind) {
    case 'copy':
      return `copy ${action.from} ${action.reason}`;
    case 'delete':
      return `delete ${action.side}`;
    case 'move':
      return `move ${action.side} ${action.from} -> ${action.path}`;
    case 'conflict':
      return 'conflict';
    case 'file-folder-clash':
      return `file-folder-clash ${action.side}`;
  }
}

/**
 * The expected outcome for each cell, as [same contents, different contents] when both sides hold
 * the path, or a single outcome otherwise. Rows are path1's state, columns path2's.
 * "unchanged" on one side with "new" or "absent" on the other cannot happen after a successful run
 * (both snapshots are saved together); they are listed with their safe outcome.
 */
type Cell = string | readonly [same: string, different: string] | readonly [sameMeta: string, sameContentOtherMtime: string, different: string];
const NORMAL: Record<`${Kind}/${Kind}`, Cell> = {
  // Neither side changed: reconciliation does not look at the path (differing snapshots: impossible).
  'unchanged/unchanged': ['none', 'none'],
  'unchanged/new': ['none', 'conflict'], // impossible: path2's snapshot lacks what path1's has
  // Same contents, a one-sided new modification time: the time alone is carried over.
  'unchanged/modified': ['none', 'copy path2 modified', 'copy path2 modified'],
  'unchanged/deleted': 'delete path1',
  'unchanged/absent': 'none', // impossible: not a change on either side, the file stays where it is
  'new/unchanged': ['none', 'conflict'], // impossible
  'new/new': ['none', 'conflict'],
  'new/modified': ['none', 'conflict'], // impossible
  'new/deleted': 'copy path1 restored', // impossible
  'new/absent': 'copy path1 new',
  'modified/unchanged': ['none', 'copy path1 modified', 'copy path1 modified'],
  'modified/new': ['none', 'conflict'], // impossible
  'modified/modified': ['none', 'conflict'],
  'modified/deleted': 'copy path1 restored',
  'modified/absent': 'copy path1 modified', // impossible
  'deleted/unchanged': 'delete path2',
  'deleted/new': 'copy path2 restored', // impossible
  'deleted/modified': 'copy path2 restored',
  'deleted/deleted': 'none',
  'deleted/absent': 'none', // impossible
  'absent/unchanged': 'none', // impossible
  'absent/new': 'copy path2 new',
  'absent/modified': 'copy path2 modified', // impossible
  'absent/deleted': 'none', // impossible
  'absent/absent': 'none',
};

/**
 * Resync merges and never deletes: whatever one side lacks is copied from the other, and two
 * different versions both survive as a conflict (no side's change is "newer" without history).
 * It works from the change sets it is given: a resync proper passes changes against empty
 * snapshots (everything is new, see the next table); with real snapshots, paths neither side
 * changed are left as they are.
 */
const RESYNC: Record<`${Kind}/${Kind}`, Cell> = {
  'unchanged/unchanged': ['none', 'none'],
  'unchanged/new': ['none', 'conflict'],
  'unchanged/modified': ['none', 'conflict'],
  'unchanged/deleted': 'copy path1 resync',
  'unchanged/absent': 'none',
  'new/unchanged': ['none', 'conflict'],
  'new/new': ['none', 'conflict'],
  'new/modified': ['none', 'conflict'],
  'new/deleted': 'copy path1 resync',
  'new/absent': 'copy path1 resync',
  'modified/unchanged': ['none', 'conflict'],
  'modified/new': ['none', 'conflict'],
  'modified/modified': ['none', 'conflict'],
  'modified/deleted': 'copy path1 resync',
  'modified/absent': 'copy path1 resync',
  'deleted/unchanged': 'copy path2 resync',
  'deleted/new': 'copy path2 resync',
  'deleted/modified': 'copy path2 resync',
  'deleted/deleted': 'none',
  'deleted/absent': 'none',
  'absent/unchanged': 'none',
  'absent/new': 'copy path2 resync',
  'absent/modified': 'copy path2 resync',
  'absent/deleted': 'none',
  'absent/absent': 'none',
};

function expectedFor(cell: Cell, variant: Variant): string {
  if (typeof cell === 'string') return cell;
  if (cell.length === 3) return variant === 'same-meta' ? cell[0] : variant === 'same-content-other-mtime' ? cell[1] : cell[2];
  return SAME_VARIANTS.includes(variant) ? cell[0] : cell[1];
}

/**
 * The version a side held before the run may legitimately disappear only when that side did not
 * touch the path and the other side deleted or modified it: that version is the one both sides
 * had at the last run, and the other side's change supersedes it.
 */
function superseded(here: Kind, there: Kind, resync: boolean): boolean {
  return !resync && here === 'unchanged' && (there === 'deleted' || there === 'modified');
}
/** Nobody looks at a path neither side changed: each side keeps what it has. */
const quiet = (k1: Kind, k2: Kind): boolean => (k1 === 'unchanged' || k1 === 'absent') && (k2 === 'unchanged' || k2 === 'absent');

/** Every version that must survive is on both sides afterwards (or untouched, for quiet paths). */
function expectNothingLost(before: ModelSides, after: ModelSides, kinds: Record<Side, Kind>, resync: boolean): void {
  for (const side of ['path1', 'path2'] as const) {
    const other = side === 'path1' ? 'path2' : 'path1';
    const version = before[side].get(P);
    if (!version) continue;
    if (superseded(kinds[side], kinds[other], resync)) continue;
    if (quiet(kinds.path1, kinds.path2)) {
      expect(after[side].get(P)).toEqual(version);
      continue;
    }
    for (const s of ['path1', 'path2'] as const) {
      expect(contentsOf(after[s]).has(version.content), `${side}'s version ${JSON.stringify(version.content)} on ${s}`).toBe(true);
    }
  }
  if (!quiet(kinds.path1, kinds.path2)) expect(sidesDiffer(after)).toEqual([]);
}

function runCell(k1: Kind, k2: Kind, variant: Variant, opts: ModelOptions) {
  const { sides, snapshots } = scenario(k1, k2, variant, opts.checksum);
  const run = planRun(sides, snapshots, opts);
  // The scenario is what it claims to be.
  expect(stateOf(P, run.changes.path1, run.listings.path1).kind).toBe(k1);
  expect(stateOf(P, run.changes.path2, run.listings.path2).kind).toBe(k2);
  return { sides, run, after: applyPlan(run.plan, sides) };
}

const variantsFor = (k1: Kind, k2: Kind): readonly Variant[] =>
  present(k1) && present(k2) ? [...SAME_VARIANTS, ...DIFFERENT_VARIANTS] : ['different-size'];

describe.each([
  { mode: 'normal', resync: false, table: NORMAL },
  { mode: 'resync', resync: true, table: RESYNC },
])('reconciliation table, $mode mode', ({ resync, table }) => {
  for (const checksum of [false, true]) {
    for (const k1 of KINDS) {
      for (const k2 of KINDS) {
        for (const variant of variantsFor(k1, k2)) {
          const expected = expectedFor(table[`${k1}/${k2}`], variant);
          it(`${k1} × ${k2}, ${variant}${checksum ? ', checksum' : ''}: ${expected}`, () => {
            const { sides, run, after } = runCell(k1, k2, variant, options({ checksum, resync }));
            expect(summary(run.plan)).toBe(expected);
            if (resync) expect(run.plan.actions.some((a) => a.kind === 'delete')).toBe(false);
            expectNothingLost(sides, after, { path1: k1, path2: k2 }, resync);
            // Metadata alone never decides "same" for a same-size pair whose mtimes are far apart.
            // Nor does it for any same-size pair once the path changed on either side. Except where
            // the answer changes nothing: an edit on one side only, times apart, is copied either way.
            const oneSidedFar = !resync && variant !== 'same-meta' && [k1, k2].sort().join() === 'modified,unchanged';
            if (!checksum && variant !== 'different-size' && !quiet(k1, k2)) {
              expect(run.needCheck).toEqual(oneSidedFar ? [] : [P]);
            }
            if (checksum) expect(run.needCheck).toEqual([]);
          });
        }
      }
    }
  }

  if (resync) {
    // A resync proper: no snapshots, so every present file is new.
    it.each([
      ['new', 'new', 'same-meta', 'none'],
      ['new', 'new', 'same-content-other-mtime', 'none'],
      ['new', 'new', 'different-size', 'conflict'],
      ['new', 'new', 'different-same-size', 'conflict'],
      ['new', 'absent', 'different-size', 'copy path1 resync'],
      ['absent', 'new', 'different-size', 'copy path2 resync'],
    ] as const)('from scratch: %s × %s, %s: %s', (k1, k2, variant, expected) => {
      const now = currents(variant);
      const sides: ModelSides = { path1: new Map(), path2: new Map() };
      if (k1 === 'new') sides.path1.set(P, now.path1);
      if (k2 === 'new') sides.path2.set(P, now.path2);
      const run = planRun(sides, emptyListings(), options({ resync: true }));
      expect(summary(run.plan)).toBe(expected);
      const after = applyPlan(run.plan, sides);
      expect(sidesDiffer(after)).toEqual([]);
      for (const f of [now.path1, now.path2]) {
        if ((f === now.path1 ? k1 : k2) !== 'new') continue;
        expect(contentsOf(after.path1).has(f.content)).toBe(true);
        expect(contentsOf(after.path2).has(f.content)).toBe(true);
      }
    });
  }
});

describe('conflict resolution', () => {
  const RESOLVES = CONFLICT_RESOLVES;

  /** Both sides modified to different versions with the given mtimes. */
  function conflictScenario(mtime1: number, mtime2: number, content2 = 'version two!'): ModelSides {
    return { path1: new Map([[P, file('version one', mtime1)]]), path2: new Map([[P, file(content2, mtime2)]]) };
  }
  const SNAPSHOTS: Listings = snapshotsOf({ path1: new Map([[P, OLD]]), path2: new Map([[P, OLD]]) });

  const cases: readonly [ConflictResolve, mtime1: number, mtime2: number, winner: Side | 'none'][] = [
    ['none', 2_000_000, 3_000_000, 'none'],
    ['path1', 2_000_000, 3_000_000, 'path1'],
    ['path2', 2_000_000, 3_000_000, 'path2'],
    ['path1', 3_000_000, 2_000_000, 'path1'],
    ['path2', 3_000_000, 2_000_000, 'path2'],
    ['newer', 2_000_000, 3_000_000, 'path2'],
    ['newer', 3_000_000, 2_000_000, 'path1'],
    ['older', 2_000_000, 3_000_000, 'path1'],
    ['older', 3_000_000, 2_000_000, 'path2'],
    // Equal times leave nobody to prefer: both keep a conflict name.
    ['newer', 2_000_000, 2_000_000, 'none'],
    ['older', 2_000_000, 2_000_000, 'none'],
    // Within the tolerance but not equal: still a strict comparison of the listed times.
    ['newer', 2_000_000, 2_000_001, 'path2'],
    ['older', 2_000_000, 2_000_001, 'path1'],
    ['path1', 2_000_000, 2_000_000, 'path1'],
    ['path2', 2_000_000, 2_000_000, 'path2'],
    // path1's version is 11 bytes, path2's 12: sizes decide whatever the times say.
    ['larger', 3_000_000, 2_000_000, 'path2'],
    ['smaller', 2_000_000, 3_000_000, 'path1'],
  ];

  it.each(['larger', 'smaller'] as const)('%s with equal sizes keeps both under conflict names', (resolve) => {
    const sides = conflictScenario(2_000_000, 3_000_000, 'version two');
    const run = planRun(sides, SNAPSHOTS, options({ conflictResolve: resolve }));
    expect(run.plan.actions[0]).toMatchObject({ kind: 'conflict', outcome: { winner: 'none' } });
  });

  it.each(cases)('%s with mtimes %i / %i: winner %s', (resolve, mtime1, mtime2, winner) => {
    const sides = conflictScenario(mtime1, mtime2);
    const run = planRun(sides, SNAPSHOTS, options({ conflictResolve: resolve }));
    expect(run.plan.actions).toHaveLength(1);
    const action = run.plan.actions[0]!;
    if (action.kind !== 'conflict') throw new Error(`expected a conflict, got ${action.kind}`);
    expect(action.path1).toEqual({ size: 11, mtime: mtime1, hash: '' });
    expect(action.path2).toEqual({ size: 12, mtime: mtime2, hash: '' });
    const after = applyPlan(run.plan, sides);
    expect(sidesDiffer(after)).toEqual([]);
    const v1 = sides.path1.get(P)!;
    const v2 = sides.path2.get(P)!;
    if (winner === 'none') {
      expect(action.outcome).toEqual({
        winner: 'none',
        path1Copy: 'docs/report.conflict-path1-20261125T143200Z.docx',
        path2Copy: 'docs/report.conflict-path2-20261125T143200Z.docx',
      });
      // The original name is left empty so the conflict cannot go unnoticed.
      expect(after.path1.has(P)).toBe(false);
      expect(after.path1.get('docs/report.conflict-path1-20261125T143200Z.docx')).toEqual(v1);
      expect(after.path1.get('docs/report.conflict-path2-20261125T143200Z.docx')).toEqual(v2);
      expect(after.path1.size).toBe(2);
    } else {
      const loser: Side = winner === 'path1' ? 'path2' : 'path1';
      const loserCopy = `docs/report.conflict-${loser}-20261125T143200Z.docx`;
      expect(action.outcome).toEqual({ winner, loserCopy });
      expect(after.path1.get(P)).toEqual(sides[winner].get(P));
      expect(after.path1.get(loserCopy)).toEqual(sides[loser].get(P));
      expect(after.path1.size).toBe(2);
    }
  });

  // Every conflict cell of the table, under every resolution: both versions end up on both sides,
  // the original name holds the winner's version (or nothing), and resync still never deletes.
  for (const resync of [false, true]) {
    for (const k1 of KINDS) {
      for (const k2 of KINDS) {
        for (const variant of DIFFERENT_VARIANTS) {
          if (!present(k1) || !present(k2)) continue;
          if (expectedFor((resync ? RESYNC : NORMAL)[`${k1}/${k2}`], variant) !== 'conflict') continue;
          it.each(RESOLVES)(`${resync ? 'resync ' : ''}${k1} × ${k2}, ${variant}, resolve %s`, (resolve) => {
            const { sides, run, after } = runCell(k1, k2, variant, options({ conflictResolve: resolve, resync }));
            const [action] = run.plan.actions;
            if (action?.kind !== 'conflict') throw new Error('expected a conflict');
            const v1 = sides.path1.get(P)!;
            const v2 = sides.path2.get(P)!;
            for (const s of ['path1', 'path2'] as const) {
              const contents = contentsOf(after[s]);
              expect(contents.has(v1.content) && contents.has(v2.content)).toBe(true);
            }
            // currents(): path2's version is the newer one in both different variants.
            const bySize = (larger: boolean): Side | 'none' =>
              v1.content.length === v2.content.length ? 'none' : v1.content.length > v2.content.length === larger ? 'path1' : 'path2';
            const winners: Record<ConflictResolve, Side | 'none'> = { newer: 'path2', older: 'path1', larger: bySize(true), smaller: bySize(false), path1: 'path1', path2: 'path2', none: 'none' };
            const winner = winners[resolve];
            expect(action.outcome.winner).toBe(winner);
            if (winner === 'none') expect(after.path1.has(P) || after.path2.has(P)).toBe(false);
            else expect(after.path1.get(P)).toEqual(sides[winner].get(P));
          });
        }
      }
    }
  }
});

describe('conflictName and compactStamp', () => {
  it.each([
    ['report.docx', 'path2', 'report.conflict-path2-20261125T143200Z.docx'],
    ['report.docx', 'path1', 'report.conflict-path1-20261125T143200Z.docx'],
    // A leading dot is a hidden file, not an extension.
    ['.bashrc', 'path1', '.bashrc.conflict-path1-20261125T143200Z'],
    ['home/.bashrc', 'path2', 'home/.bashrc.conflict-path2-20261125T143200Z'],
    ['.env.local', 'path1', '.env.conflict-path1-20261125T143200Z.local'],
    // No extension.
    ['Makefile', 'path1', 'Makefile.conflict-path1-20261125T143200Z'],
    // A trailing dot is not an extension either: the name is kept whole.
    ['notes.', 'path2', 'notes..conflict-path2-20261125T143200Z'],
    // Only the last extension moves: the file still opens with the same program.
    ['backup.tar.gz', 'path1', 'backup.tar.conflict-path1-20261125T143200Z.gz'],
    // Dots in directory names are not extensions.
    ['dir.v2/README', 'path1', 'dir.v2/README.conflict-path1-20261125T143200Z'],
    ['a.b/c.d/e.f', 'path2', 'a.b/c.d/e.conflict-path2-20261125T143200Z.f'],
    ['a.b/c.d/.hidden', 'path2', 'a.b/c.d/.hidden.conflict-path2-20261125T143200Z'],
    ['my dir/my file #1.txt', 'path1', 'my dir/my file #1.conflict-path1-20261125T143200Z.txt'],
    ['ünï/cöde.tëxt', 'path1', 'ünï/cöde.conflict-path1-20261125T143200Z.tëxt'],
    ['日本/文書.txt', 'path2', '日本/文書.conflict-path2-20261125T143200Z.txt'],
  ] as const)('%s (%s) -> %s', (path, side, expected) => {
    expect(conflictName(path, side, STAMP)).toBe(expected);
  });

  it('adds a counter before the extension from the second attempt', () => {
    expect(conflictName('report.docx', 'path2', STAMP, 1)).toBe('report.conflict-path2-20261125T143200Z.docx');
    expect(conflictName('report.docx', 'path2', STAMP, 2)).toBe('report.conflict-path2-20261125T143200Z-2.docx');
    expect(conflictName('.bashrc', 'path1', STAMP, 3)).toBe('.bashrc.conflict-path1-20261125T143200Z-3');
    expect(conflictName('d.x/Makefile', 'path1', STAMP, 12)).toBe('d.x/Makefile.conflict-path1-20261125T143200Z-12');
  });

  it('compactStamp is compact UTC to the second', () => {
    expect(compactStamp(new Date(Date.UTC(2026, 10, 25, 14, 32, 0, 0)))).toBe('20261125T143200Z');
    expect(compactStamp(new Date(Date.UTC(2026, 10, 25, 14, 32, 0, 999)))).toBe('20261125T143200Z');
    expect(compactStamp(new Date('2026-01-02T03:04:05.006+02:00'))).toBe('20260102T010405Z');
    expect(compactStamp(new Date(0))).toBe('19700101T000000Z');
  });
});

describe('ConflictNamer', () => {
  const listings = (path1: string[], path2: string[]): Listings => ({
    path1: new Map(path1.map((p) => [p, { size: 1, mtime: 1, hash: '' }])),
    path2: new Map(path2.map((p) => [p, { size: 1, mtime: 1, hash: '' }])),
  });
  const name = (n: number) => conflictName('a/report.docx', 'path1', STAMP, n);
  const noChanges = { changes: { path1: new Map(), path2: new Map() } };

  it('uses the plain name when it is free', () => {
    expect(new ConflictNamer({ ...noChanges, current: listings([], []), stamp: STAMP }).allocate('a/report.docx', 'path1')).toBe(name(1));
  });
  it('counts past a name taken on path1', () => {
    expect(new ConflictNamer({ ...noChanges, current: listings([name(1)], []), stamp: STAMP }).allocate('a/report.docx', 'path1')).toBe(name(2));
  });
  it('counts past a name taken on path2', () => {
    expect(new ConflictNamer({ ...noChanges, current: listings([], [name(1)]), stamp: STAMP }).allocate('a/report.docx', 'path1')).toBe(name(2));
  });
  it('counts past names taken on both sides', () => {
    const namer = new ConflictNamer({ ...noChanges, current: listings([name(1), name(3)], [name(2)]), stamp: STAMP });
    expect(namer.allocate('a/report.docx', 'path1')).toBe(name(4));
  });
  it('counts past a name either side deleted since the last run (it is still in the last snapshot)', () => {
    const deleted = { kind: 'deleted' as const, before: { size: 1, mtime: 1, hash: '' } };
    for (const side of ['path1', 'path2'] as const) {
      const changes = { path1: new Map(), path2: new Map(), [side]: new Map([[name(1), deleted]]) };
      expect(new ConflictNamer({ changes, current: listings([], []), stamp: STAMP }).allocate('a/report.docx', 'path1')).toBe(name(2));
    }
  });
  it('counts past a reserved name', () => {
    const namer = new ConflictNamer({ ...noChanges, current: listings([], []), stamp: STAMP }, (candidate) => candidate === name(1));
    expect(namer.allocate('a/report.docx', 'path1')).toBe(name(2));
  });
  it('never hands out the same name twice in one plan', () => {
    const namer = new ConflictNamer({ ...noChanges, current: listings([], [name(2)]), stamp: STAMP });
    expect(namer.allocate('a/report.docx', 'path1')).toBe(name(1));
    expect(namer.allocate('a/report.docx', 'path1')).toBe(name(3));
    expect(namer.allocate('a/report.docx', 'path1')).toBe(name(4));
    expect(namer.allocate('a/report.docx', 'path2')).toBe(conflictName('a/report.docx', 'path2', STAMP));
  });

  it('in a plan, a taken name gets a counter and nothing is overwritten', () => {
    const c1 = conflictName(P, 'path1', STAMP);
    const c2 = conflictName(P, 'path2', STAMP);
    const sides: ModelSides = {
      // An earlier conflict copy exists on one side only (its copy to the other side is pending).
      path1: new Map([[P, file('one', 5_000)], [c2, file('earlier copy', 100)]]),
      path2: new Map([[P, file('two!', 6_000)], [c1, file('other earlier', 100)]]),
    };
    const snapshots = snapshotsOf({ path1: new Map([[P, OLD]]), path2: new Map([[P, OLD]]) });
    const run = planRun(sides, snapshots, options());
    const conflict = run.plan.actions.find((a) => a.kind === 'conflict');
    expect(conflict?.kind === 'conflict' && conflict.outcome).toEqual({
      winner: 'none',
      path1Copy: conflictName(P, 'path1', STAMP, 2),
      path2Copy: conflictName(P, 'path2', STAMP, 2),
    });
    const after = applyPlan(run.plan, sides);
    expect(sidesDiffer(after)).toEqual([]);
    for (const content of ['one', 'two!', 'earlier copy', 'other earlier']) expect(contentsOf(after.path1).has(content)).toBe(true);
  });

  it('a later conflict with the same stamp never overwrites an earlier conflict copy', () => {
    // Two runs in the same second (or a clock that went back): the second conflict on the same
    // path must not reuse the first one's names.
    const snapshots = snapshotsOf({ path1: new Map([[P, OLD]]), path2: new Map([[P, OLD]]) });
    let sides: ModelSides = { path1: new Map([[P, file('first one', 5_000)]]), path2: new Map([[P, file('first two', 60_000)]]) };
    sides = applyPlan(planRun(sides, snapshots, options()).plan, sides);
    const afterFirst = snapshotsOf(sides);
    sides.path1.set(P, file('second one', 700_000));
    sides.path2.set(P, file('second two', 800_000));
    const run = planRun(sides, afterFirst, options());
    expect(run.changes.path1.get(P)?.kind).toBe('new');
    const after = applyPlan(run.plan, sides);
    expect(sidesDiffer(after)).toEqual([]);
    expect([...after.path1.keys()].sort()).toEqual(
      [
        conflictName(P, 'path1', STAMP, 1),
        conflictName(P, 'path1', STAMP, 2),
        conflictName(P, 'path2', STAMP, 1),
        conflictName(P, 'path2', STAMP, 2),
      ].sort(),
    );
    for (const content of ['first one', 'first two', 'second one', 'second two']) expect(contentsOf(after.path2).has(content)).toBe(true);
  });

  it('a conflict copy name is allocated per plan: two conflicts, one name space', () => {
    // `a.txt` and an existing file named like its conflict copy, both in conflict.
    const a = 'a.txt';
    const aCopy = conflictName(a, 'path1', STAMP); // a.conflict-path1-STAMP.txt
    const sides: ModelSides = {
      path1: new Map([[a, file('a one', 5_000)], [aCopy, file('x one', 5_000)]]),
      path2: new Map([[a, file('a two!', 6_000)], [aCopy, file('x two!', 6_000)]]),
    };
    const snapshots = snapshotsOf({ path1: new Map([[a, OLD], [aCopy, OLD]]), path2: new Map([[a, OLD], [aCopy, OLD]]) });
    const run = planRun(sides, snapshots, options());
    const after = applyPlan(run.plan, sides);
    expect(sidesDiffer(after)).toEqual([]);
    for (const content of ['a one', 'a two!', 'x one', 'x two!']) expect(contentsOf(after.path1).has(content)).toBe(true);
    const names = run.plan.actions.flatMap((act) =>
      act.kind === 'conflict' && act.outcome.winner === 'none' ? [act.outcome.path1Copy, act.outcome.path2Copy] : [],
    );
    expect(new Set(names).size).toBe(4);
    expect(names).not.toContain(aCopy);
  });
});

describe('sameVersion', () => {
  const meta = (size: number, mtime: number, hash = ''): FileMeta => ({ size, mtime, hash });
  const byTime: CrossSideCompare = { mtimeToleranceMs: 1_000, commonHash: false };
  const byHash: CrossSideCompare = { mtimeToleranceMs: 1_000, commonHash: true };

  it('different sizes are different whatever else agrees', () => {
    expect(sameVersion(meta(1, 5), meta(2, 5), byTime)).toBe('different');
    expect(sameVersion(meta(1, 5, 'h'), meta(2, 5, 'h'), byHash)).toBe('different');
  });
  it('mtimes within the tolerance (inclusive) are the same version', () => {
    expect(sameVersion(meta(3, 10_000), meta(3, 10_000), byTime)).toBe('same');
    expect(sameVersion(meta(3, 10_000), meta(3, 11_000), byTime)).toBe('same');
    expect(sameVersion(meta(3, 11_000), meta(3, 10_000), byTime)).toBe('same');
    expect(sameVersion(meta(3, 10_000), meta(3, 11_001), byTime)).toBe('unknown');
    expect(sameVersion(meta(3, 11_001), meta(3, 10_000), byTime)).toBe('unknown');
  });
  it('the smallest tolerance is exact to the millisecond', () => {
    const exact: CrossSideCompare = { mtimeToleranceMs: 1, commonHash: false };
    expect(sameVersion(meta(3, 10_000), meta(3, 10_001), exact)).toBe('same');
    expect(sameVersion(meta(3, 10_000), meta(3, 10_002), exact)).toBe('unknown');
  });
  it('common hashes decide, whatever the mtimes say', () => {
    expect(sameVersion(meta(3, 10_000, 'aa'), meta(3, 99_000_000, 'aa'), byHash)).toBe('same');
    expect(sameVersion(meta(3, 10_000, 'aa'), meta(3, 10_000, 'bb'), byHash)).toBe('different');
  });
  it('a missing hash falls back to mtimes', () => {
    expect(sameVersion(meta(3, 10_000, ''), meta(3, 10_500, 'bb'), byHash)).toBe('same');
    expect(sameVersion(meta(3, 10_000, 'aa'), meta(3, 99_000, ''), byHash)).toBe('unknown');
  });
  it('hashes of different types (no common hash) are not compared', () => {
    expect(sameVersion(meta(3, 10_000, 'aa'), meta(3, 10_000, 'bb'), byTime)).toBe('same');
    expect(sameVersion(meta(3, 10_000, 'aa'), meta(3, 50_000, 'aa'), byTime)).toBe('unknown');
  });
});

describe('changedOnSide', () => {
  const meta = (size: number, mtime: number, hash = ''): FileMeta => ({ size, mtime, hash });
  it('is exact on size and mtime', () => {
    expect(changedOnSide(meta(1, 5), meta(1, 5), false)).toBe(false);
    expect(changedOnSide(meta(1, 5), meta(2, 5), false)).toBe(true);
    expect(changedOnSide(meta(1, 5), meta(1, 6), false)).toBe(true);
    expect(changedOnSide(meta(1, 6), meta(1, 5), false)).toBe(true);
  });
  it('uses hashes only when asked and both are known', () => {
    expect(changedOnSide(meta(1, 5, 'a'), meta(1, 5, 'b'), false)).toBe(false);
    expect(changedOnSide(meta(1, 5, 'a'), meta(1, 5, 'b'), true)).toBe(true);
    expect(changedOnSide(meta(1, 5, 'a'), meta(1, 5, 'a'), true)).toBe(false);
    expect(changedOnSide(meta(1, 5, ''), meta(1, 5, 'b'), true)).toBe(false);
    expect(changedOnSide(meta(1, 5, 'a'), meta(1, 5, ''), true)).toBe(false);
  });
});

describe('pathsNeedingContentCheck and verifiedSame', () => {
  /** Several paths at once; snapshots equal (after a sync) unless a path says otherwise. */
  function build(): { sides: ModelSides; snapshots: Listings } {
    const base = file('base', 10_000);
    const snap = new Map<string, ModelFile>();
    for (const p of ['same-size-far', 'touched', 'diff-size', 'deleted', 'same-meta-both', 'quiet', 'one-side-new']) snap.set(p, base);
    snap.delete('one-side-new');
    const sides: ModelSides = {
      path1: new Map([
        ['same-size-far', file('aaaa', 90_000)], // modified, path2 unchanged: size agrees, mtime far
        ['touched', file('base', 50_000)], // touched only
        ['diff-size', file('longer', 90_000)],
        ['same-meta-both', file('cccc', 70_000)],
        ['quiet', base],
        ['one-side-new', file('xxxx', 70_000)],
        ['both-new-far', file('yyyy', 70_000)],
      ]),
      path2: new Map([
        ['same-size-far', base],
        ['touched', base],
        ['diff-size', base],
        ['deleted', base],
        ['same-meta-both', file('cccc', 70_000)],
        ['quiet', base],
        ['both-new-far', file('zzzz', 99_000)],
      ]),
    };
    return { sides, snapshots: snapshotsOf({ path1: snap, path2: snap }) };
  }

  it('lists exactly the changed paths present on both sides whose metadata cannot tell', () => {
    const { sides, snapshots } = build();
    const run = planRun(sides, snapshots, options());
    // same-size-far and touched changed on path1 only, times apart: copied whatever their contents.
    expect([...run.needCheck].sort()).toEqual(['both-new-far', 'same-meta-both']);
    expect([...run.verifiedSame].sort()).toEqual(['same-meta-both']);
  });

  it('needs no content check when common hashes decide', () => {
    const { sides, snapshots } = build();
    expect(planRun(sides, snapshots, options({ checksum: true })).needCheck).toEqual([]);
  });

  it('a verified path is left alone; an unverified one is treated as different', () => {
    const { sides, snapshots } = build();
    const run = planRun(sides, snapshots, options());
    expect(summary(run.plan)).toBe(
      [
        'conflict', // both-new-far
        'delete path2', // deleted
        'copy path1 modified', // diff-size
        'copy path1 new', // one-side-new
        'copy path1 modified', // same-size-far
        'copy path1 modified', // touched: same contents, its new time carried over
      ].join('; '),
    );
    // Without the check's answer, the touched file is treated as different: copied, nothing lost.
    const unverified = reconcile({ ...run.input, verifiedSame: new Set() });
    expect(unverified.actions.map((a) => a.path)).toEqual(['both-new-far', 'deleted', 'diff-size', 'one-side-new', 'same-meta-both', 'same-size-far', 'touched']);
    expect(unverified.actions.at(-1)).toEqual({ kind: 'copy', from: 'path1', path: 'touched', reason: 'modified', size: 4 });
  });

  it('a path in verifiedSame gets no content copied: at most a one-sided new time is carried over', () => {
    const { sides, snapshots } = build();
    const run = planRun(sides, snapshots, options());
    const plan = reconcile({ ...run.input, verifiedSame: new Set(['both-new-far', 'same-meta-both', 'same-size-far', 'touched']) });
    // both-new-far and same-meta-both changed on both sides: nothing to carry.
    expect(plan.actions.map((a) => a.path)).toEqual(['deleted', 'diff-size', 'one-side-new', 'same-size-far', 'touched']);
  });

  it('a file rewritten within the mtime tolerance of its synced version, keeping its size, is still carried over', () => {
    // path2 is a backend with 1 s modtime precision (tolerance 1000 ms). A program rewrites a
    // fixed-size file on path1 500 ms after the version both sides share. path1's own history
    // proves it changed; path2 still holds the old version, so metadata cannot call them the same.
    const synced = file('v1-data', 10_000);
    const snapshots = snapshotsOf({ path1: new Map([['db.bin', synced]]), path2: new Map([['db.bin', synced]]) });
    const sides: ModelSides = { path1: new Map([['db.bin', file('v2-data', 10_500)]]), path2: new Map([['db.bin', synced]]) };
    const run = planRun(sides, snapshots, options({ mtimeToleranceMs: 1_000 }));
    expect(run.needCheck).toEqual(['db.bin']);
    expect(run.plan.actions).toEqual([{ kind: 'copy', from: 'path1', path: 'db.bin', reason: 'modified', size: 7 }]);
    expect(sidesDiffer(applyPlan(run.plan, sides))).toEqual([]);
    // The same from path2, and a touch within the tolerance: checked, found identical, left alone.
    const mirrored: ModelSides = { path1: new Map([['db.bin', synced]]), path2: new Map([['db.bin', file('v2-data', 9_200)]]) };
    expect(summary(planRun(mirrored, snapshots, options()).plan)).toBe('copy path2 modified');
    const touched: ModelSides = { path1: new Map([['db.bin', file('v1-data', 10_700)]]), path2: new Map([['db.bin', synced]]) };
    const touchRun = planRun(touched, snapshots, options());
    expect(touchRun.needCheck).toEqual(['db.bin']);
    expect(touchRun.plan.actions).toEqual([]);
    // A touch beyond the tolerance: same contents, the new time is carried over (rclone sets just the time).
    const retimed: ModelSides = { path1: new Map([['db.bin', file('v1-data', 90_000)]]), path2: new Map([['db.bin', synced]]) };
    const retimeRun = planRun(retimed, snapshots, options());
    // No content check: the time is carried over whatever the contents say.
    expect(retimeRun.needCheck).toEqual([]);
    expect(retimeRun.plan.actions).toEqual([{ kind: 'copy', from: 'path1', path: 'db.bin', reason: 'modified', size: 7 }]);
  });

  it('both sides changed to the same size and mtime: contents are compared, never assumed (issue 6 item 6)', () => {
    // rclone's bisync corpus `resolve`: both sides rewrote file1.txt to different 33-byte contents
    // with the same mtime. Metadata says "same"; only the content check can say otherwise.
    const synced = file('v1-data', 10_000);
    const snapshots = snapshotsOf({ path1: new Map([['f', synced]]), path2: new Map([['f', synced]]) });
    const differ: ModelSides = { path1: new Map([['f', file('v2-aaaa', 20_000)]]), path2: new Map([['f', file('v2-bbbb', 20_000)]]) };
    const run = planRun(differ, snapshots, options());
    expect(run.needCheck).toEqual(['f']);
    expect(summary(run.plan)).toBe('conflict');
    // The same file written to both sides (or a rerun before the state was saved): checked, left alone.
    const alike: ModelSides = { path1: new Map([['f', file('v2-data', 20_000)]]), path2: new Map([['f', file('v2-data', 20_000)]]) };
    const same = planRun(alike, snapshots, options());
    expect(same.needCheck).toEqual(['f']);
    expect(same.plan.actions).toEqual([]);
    // A first run: two trees holding differing same-size, same-mtime files.
    const first = planRun(differ, emptyListings(), options({ resync: true }));
    expect(first.needCheck).toEqual(['f']);
    expect(summary(first.plan)).toBe('conflict');
  });
});

describe('determinism', () => {
  const PATHS = ['z', 'a/b.txt', 'B', 'a.txt', 'ä.txt', 'a b', 'a#b', '.x', 'a/.b', 'x.', '日本', 'a/b/c.d'];

  function input(order: readonly string[]): ReconcileInput {
    const sides: ModelSides = { path1: new Map(), path2: new Map() };
    const snap = new Map<string, ModelFile>();
    order.forEach((p) => {
      // A mix of conflicts, copies both ways and deletes, fixed per path whatever the order.
      const i = PATHS.indexOf(p);
      const old = file(`old ${p}`, 1_000);
      snap.set(p, old);
      switch (i % 4) {
        case 0:
          sides.path1.set(p, file(`one ${p}`, 5_000));
          sides.path2.set(p, file(`two! ${p}`, 6_000));
          break;
        case 1:
          sides.path1.set(p, file(`one ${p}`, 5_000));
          sides.path2.set(p, old);
          break;
        case 2:
          sides.path2.set(p, old);
          break;
        case 3:
          sides.path2.set(p, file(`two ${p}`, 5_000));
          break;
      }
    });
    // Insert in the given order, so the change sets' iteration order follows it.
    const ordered = (m: Map<string, ModelFile>) => new Map(order.filter((p) => m.has(p)).map((p) => [p, m.get(p)!]));
    const orderedSides = { path1: ordered(sides.path1), path2: ordered(sides.path2) };
    return planRun(orderedSides, snapshotsOf({ path1: snap, path2: snap }), options()).input;
  }

  it('the plan does not depend on the order of the change sets, and is sorted by path', () => {
    const forward = reconcile(input(PATHS));
    const backward = reconcile(input([...PATHS].reverse()));
    const shuffled = reconcile(input([...PATHS].sort((a, b) => (a.length - b.length) || (a < b ? 1 : -1))));
    expect(backward).toEqual(forward);
    expect(shuffled).toEqual(forward);
    const paths = forward.actions.map((a) => a.path);
    expect(paths).toEqual([...paths].sort());
    expect(forward.actions.map((a) => a.kind)).toContain('conflict');
    expect(forward.actions.map((a) => a.kind)).toContain('delete');
  });

  it('the same input gives the same plan twice', () => {
    const i = input(PATHS);
    expect(reconcile(i)).toEqual(reconcile(i));
  });

  it('pathsNeedingContentCheck does not depend on the order either (as a set)', () => {
    const a = pathsNeedingContentCheck(input(PATHS));
    const b = pathsNeedingContentCheck(input([...PATHS].reverse()));
    expect([...a].sort()).toEqual([...b].sort());
  });
});

describe('a file on one side, a folder of the same name on the other', () => {
  const m = (size: number, mtime: number): FileMeta => ({ size, mtime, hash: '' });
  const input = (path1: Listing, path2: Listing, deleted2: string[] = []) => {
    const changes = {
      path1: new Map([...path1].map(([p, now]) => [p, { kind: 'new' as const, now }])),
      path2: new Map<string, Change>([...path2].map(([p, now]) => [p, { kind: 'new' as const, now }])),
    };
    for (const p of deleted2) changes.path2.set(p, { kind: 'deleted', before: m(1, 1) });
    return { changes, current: { path1, path2 }, compare: { mtimeToleranceMs: 1, commonHash: false }, conflictResolve: 'none' as const, verifiedSame: new Set<string>(), stamp: STAMP, resync: false };
  };

  it('keeps both: the folder keeps the name, the file is renamed beside it and copied across', () => {
    const plan = reconcile(input(new Map([['x', m(3, 10)]]), new Map([['x/a', m(1, 10)], ['x/b/c', m(1, 10)]])));
    const clash = plan.actions.find((a) => a.kind === 'file-folder-clash');
    expect(clash).toEqual({ kind: 'file-folder-clash', side: 'path1', path: 'x', to: conflictName('x', 'path1', STAMP), meta: m(3, 10) });
    expect(plan.actions.filter((a) => a.kind === 'copy').map((a) => a.path)).toEqual(['x/a', 'x/b/c']);
    expect(countPlan(plan).conflicts).toBe(1);
    // The renamed file crosses over (3 bytes to path2); the two copies of x/… 1 byte each to path1.
    expect(countPlan(plan)).toMatchObject({ bytesToPath2: 3, bytesToPath1: 2 });
  });

  it('counts the bytes a conflict sends across: both versions with none, winner and loser copy otherwise', () => {
    const conflict = (outcome: Extract<Action, { kind: 'conflict' }>['outcome']): Plan => ({
      actions: [{ kind: 'conflict', path: 'a.txt', outcome, path1: m(10, 1), path2: m(300, 2) }],
    });
    expect(countPlan(conflict({ winner: 'none', path1Copy: 'a1', path2Copy: 'a2' }))).toMatchObject({ conflicts: 1, bytesToPath2: 10, bytesToPath1: 300 });
    expect(countPlan(conflict({ winner: 'path2', loserCopy: 'a1' }))).toMatchObject({ conflicts: 1, bytesToPath2: 10, bytesToPath1: 300 });
    expect(countPlan(conflict({ winner: 'path1', loserCopy: 'a2' }))).toMatchObject({ conflicts: 1, bytesToPath1: 300, bytesToPath2: 10 });
  });

  it('is no clash when the folder is being emptied by this plan (a folder that became a file)', () => {
    // path1 replaced its folder x/ by a file x; path2 still holds x/a, unchanged.
    const base = input(new Map([['x', m(3, 10)]]), new Map([['x/a', m(1, 5)]]));
    const changes = {
      path1: new Map<string, Change>([['x', { kind: 'new', now: m(3, 10) }], ['x/a', { kind: 'deleted', before: m(1, 5) }]]),
      path2: new Map<string, Change>(),
    };
    const plan = reconcile({ ...base, changes });
    expect(summary(plan)).toBe('copy path1 new; delete path2');
  });

  it('a name that only starts like the folder is no clash', () => {
    const plan = reconcile(input(new Map([['x', m(3, 10)]]), new Map([['xy/a', m(1, 10)], ['x.txt', m(1, 10)]])));
    expect(plan.actions.every((a) => a.kind === 'copy')).toBe(true);
  });
});
