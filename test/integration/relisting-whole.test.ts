/**
 * Relisting many paths reads one listing of the whole tree instead of a lookup per path (rclone.ts,
 * WHOLE_LISTING_SHARE): it must say exactly what the lookups say, leave the trash out, and be used
 * by a run only where it is safe (no user filters) and cheaper (many paths of the tree).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Rclone } from '../../src/rclone/rclone.ts';
import { summaryOf } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { readTree, writeTree } from '../helpers/trees.ts';
import { backendDetail, backendRunEnv, currentBackend, DISK_BACKENDS, useBackend } from '../helpers/backends.ts';

describe('listPaths from one listing of the whole tree', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rs-relist-whole-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds what the lookups find, hashes included, and never reads the excluded trash', async () => {
    const root = join(dir, 'root');
    await mkdir(join(root, 'd/e'), { recursive: true });
    await mkdir(join(root, '.rclonesync-trash/20261201T000000Z/d'), { recursive: true });
    await writeFile(join(root, 'a.txt'), 'a');
    await writeFile(join(root, 'd/e/b.txt'), 'bb');
    await writeFile(join(root, 'd/not wanted.txt'), 'ccc');
    await writeFile(join(root, '.rclonesync-trash/20261201T000000Z/d/x.txt'), 'trashed');
    const debug: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => debug.push(JSON.parse(line).msg) });
    const rclone = new Rclone({ binary: 'rclone', logger, workDir: dir, env: { RCLONE_CONFIG: '/nonexistent' } });
    const wanted = ['a.txt', 'd/e/b.txt', 'missing.txt', 'd/e/missing/x'];
    // An on-the-fly remote: rclone's local backend, but no plain local root (no in-process lookup).
    const remote = `:local:${root}`;
    const wholeListings = () => debug.filter((m) => m.includes('one listing of the whole tree')).length;
    const oneByOne = await rclone.listPaths(remote, wanted);
    expect(wholeListings()).toBe(0);
    const whole = await rclone.listPaths(remote, wanted, '', { files: 3, excludes: ['/.rclonesync-trash/**'] });
    expect(wholeListings()).toBe(1);
    expect(whole).toEqual(oneByOne);
    expect([...whole.keys()].sort()).toEqual(['a.txt', 'd/e/b.txt']);
    // The excluded trash is not walked: a path there is not found (one by one, it would be).
    const inTrash = '.rclonesync-trash/20261201T000000Z/d/x.txt';
    expect((await rclone.listPaths(remote, [inTrash, 'a.txt'], '', { files: 0, excludes: ['/.rclonesync-trash/**'] })).has(inTrash)).toBe(false);
    expect((await rclone.listPaths(remote, [inTrash])).has(inTrash)).toBe(true);
    expect(wholeListings()).toBe(2);
    // A few paths of a large tree are looked up one by one; with hashes, always (a whole listing
    // would hash every file).
    await rclone.listPaths(remote, ['a.txt'], '', { files: 1000, excludes: [] });
    expect((await rclone.listPaths(remote, wanted, 'md5', { files: 0, excludes: [] })).get('a.txt')?.hash).toBe('0cc175b9c0f1b6a831c399e269772661');
    expect(wholeListings()).toBe(2);
    // A tree that is not there is empty, as for the lookups.
    expect(await rclone.listPaths(`:local:${join(dir, 'nowhere')}`, wanted, '', { files: 0, excludes: [] })).toEqual(new Map());
    expect(wholeListings()).toBe(3);
  });
});

const { sandbox: sb, ok } = useSandbox('rs-relist-whole-run-', { runEnv: backendRunEnv, failureDetail: backendDetail });
const WHOLE = 'looking paths up in one listing of the whole tree';
/** A whole listing of a side (not of this run's trash folder, which is always listed whole on a remote). */
const listedWhole = (logs: readonly { msg: string; root?: unknown }[]) => logs.some((l) => l.msg === WHOLE && !String(l.root).includes('.rclonesync-trash'));

describe.each(DISK_BACKENDS)('a first run onto an empty side ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2);

  it('relists what it copied in one listing on a remote (none with a filters file), and leaves nothing to do', { timeout: 180_000 }, async () => {
    const tree: Record<string, string> = {};
    for (let i = 0; i < 60; i++) tree[`d${i % 4}/f${i}.txt`] = `file ${i}`;
    await writeTree(sb.path1, tree);
    const first = await ok({ LOG_LEVEL: 'debug' });
    expect(summaryOf(first.logs)?.copiesToPath2).toBe(60);
    expect(await readTree(currentBackend().dir2)).toEqual(tree);
    // On a plain local side the paths are looked up in-process, which costs less than any listing.
    const remote = kind !== 'local';
    expect(listedWhole(first.logs), `${kind}: a whole listing`).toBe(remote);
    const again = await ok({});
    expect(summaryOf(again.logs)).toMatchObject({ copiesToPath1: 0, copiesToPath2: 0 });

    // With the user's filters, a whole listing would have to bypass them: paths are looked up one by one.
    await writeFile(join(sb.scratch, 'filters.txt'), '- *.skip\n');
    await writeTree(sb.path1, { 'late/g1.txt': 'g1', 'late/g2.txt': 'g2' });
    const filtered = await ok({ LOG_LEVEL: 'debug', SYNC_FILTERS_FILE: join(sb.scratch, 'filters.txt'), SYNC_RESYNC: 'true' });
    expect(listedWhole(filtered.logs)).toBe(false);
    expect(await readTree(currentBackend().dir2)).toMatchObject({ 'late/g1.txt': 'g1', 'late/g2.txt': 'g2' });
  });
});
