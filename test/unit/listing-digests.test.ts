/**
 * The last run's blocks as stored (listing-digests.ts): read back exactly, each side with its own
 * "exact" (one side listed differently from the snapshot must not stop the other standing in),
 * and nothing at all once the snapshot file is another, the settings differ or the file is damaged.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockDigests } from '../../src/rclone/listing-blocks.ts';
import { readListingDigests, writeListingDigests } from '../../src/state/listing-digests.ts';

let dir: string;
beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'rs-digests-'))));
afterEach(() => rm(dir, { recursive: true, force: true }));

const blocks1: BlockDigests = new Map([
  ['d1', { files: 2, parent: '', folders: ['a'] }],
  ['d2', { files: 3, parent: 'a/', folders: [] }],
]);
const blocks2: BlockDigests = new Map([['d3', { files: 1, parent: undefined, folders: [] }]]);

describe('listing digests', () => {
  it("round-trip with each side's own exactness, and stand for that snapshot file and those settings only", async () => {
    const file = join(dir, 'listing-digests.json');
    const snapshot = join(dir, 'snapshot.jsonl');
    await writeFile(snapshot, 'one\n');
    await writeListingDigests(file, snapshot, 'settings', { path1: blocks1, path2: blocks2 }, { path1: true, path2: false });
    expect(await readListingDigests(file, snapshot, 'settings')).toEqual({ path1: { blocks: blocks1, exact: true }, path2: { blocks: blocks2, exact: false } });
    expect(await readListingDigests(file, snapshot, 'other settings')).toBeUndefined();
    await writeFile(snapshot, 'another snapshot\n');
    expect(await readListingDigests(file, snapshot, 'settings')).toBeUndefined();
  });

  it('are nothing when the file is damaged or of the earlier version', async () => {
    const file = join(dir, 'listing-digests.json');
    const snapshot = join(dir, 'snapshot.jsonl');
    await writeFile(snapshot, 'one\n');
    await writeListingDigests(file, snapshot, 's', { path1: blocks1, path2: blocks2 }, { path1: true, path2: true });
    const stored = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...stored, path1: [['d1', 2, '', 'not a list']] }));
    expect(await readListingDigests(file, snapshot, 's')).toBeUndefined();
    await writeFile(file, JSON.stringify({ ...stored, version: 1, path1: [['d1', 2]] }));
    expect(await readListingDigests(file, snapshot, 's')).toBeUndefined();
    await writeFile(file, '{"format":');
    expect(await readListingDigests(file, snapshot, 's')).toBeUndefined();
  });
});
