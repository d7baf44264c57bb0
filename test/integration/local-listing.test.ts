/**
 * A local side listed here (src/rclone/local-listing.ts) must be exactly rclone's listing: the same
 * lines, byte for byte (rclone run with TZ=UTC, as the listing here prints times), each folder's
 * entries together and in rclone's order; and what it cannot answer so, it declines.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockComparison, PairVerdict } from '../../src/rclone/listing-blocks.ts';
import { excludeRuleFor, Rclone, RcloneError } from '../../src/rclone/rclone.ts';
import { listLocalTree, listsHereLikeRclone, writeLocalListing } from '../../src/rclone/local-listing.ts';
import { trashFolders } from '../../src/sync/trash.ts';

let root: string;
let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rs-local-listing-'));
  root = join(work, 'side');
  await mkdir(root);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const lsjson = (...args: string[]): string =>
  execFileSync('rclone', ['lsjson', '-R', '--no-mimetype', ...args, root], { encoding: 'utf8', env: { ...process.env, RCLONE_CONFIG: '/nonexistent', TZ: 'UTC' }, stdio: ['ignore', 'pipe', 'ignore'] });

/** A listing's entry lines without their separating commas, and the folders' blocks as listed (each a run of lines with one parent). */
function linesOf(text: string): { lines: string[]; blocks: string[][] } {
  const lines = text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => line.replace(/,$/, ''));
  const blocks: string[][] = [];
  let parent: string | undefined;
  for (const line of lines) {
    const path = (JSON.parse(line) as { Path: string }).Path;
    const here = path.slice(0, path.lastIndexOf('/') + 1);
    if (here !== parent) blocks.push([]);
    parent = here;
    blocks.at(-1)!.push(line);
  }
  return { lines, blocks };
}

async function listedHere(excluded: readonly string[] = [], foldersListed = true): Promise<string> {
  const file = join(work, 'listing.json');
  const outcome = await listLocalTree({ root, file, excludedFolders: excluded, foldersListed });
  expect(outcome.kind).toBe('listed');
  return readFile(file, 'utf8');
}

describe('a local side listed here', () => {
  it("prints rclone's lines, byte for byte, block by block: odd names, empty folders, times to the nanosecond and before 1970, links and pipes left out", async () => {
    await mkdir(join(root, 'a/b/c'), { recursive: true });
    await mkdir(join(root, 'empty/deeper'), { recursive: true });
    await writeFile(join(root, 'a/x.txt'), 'x');
    await writeFile(join(root, 'a/b/y.txt'), 'yy');
    await writeFile(join(root, 'a/b/c/z'), '');
    for (const name of ['q"uote', 'back\\slash', 'amp&<lt>gt', 'café', 'cafe\u0301', '日本語', 'emoji😀', 'z\uE000private', ' lead space', '-dash', '.hidden', 'UPPER', 'upper']) {
      await writeFile(join(root, 'a', name), name);
    }
    await mkdir(join(root, 'a/dir "quoted" & more'));
    await writeFile(join(root, 'a/dir "quoted" & more/inside'), 'i');
    await utimes(join(root, 'a/x.txt'), -86_400.123456, -86_400.123456);
    await utimes(join(root, 'a/b/y.txt'), 1_700_000_000.999999, 1_700_000_000.999999);
    await writeFile(join(root, 'sparse'), '');
    await truncate(join(root, 'sparse'), 5 * 1024 ** 3);
    await symlink('a/x.txt', join(root, 'link-to-file'));
    await symlink('a', join(root, 'link-to-folder'));
    execFileSync('mkfifo', [join(root, 'a/pipe')]);

    const here = linesOf(await listedHere());
    const theirs = linesOf(lsjson());
    expect(here.lines.length).toBeGreaterThan(20);
    expect([...here.lines].sort()).toEqual([...theirs.lines].sort());
    // The same blocks (a folder's lines together, in the same order), whatever order the folders come in.
    const asText = (blocks: string[][]) => blocks.map((block) => block.join('\n')).sort();
    expect(asText(here.blocks)).toEqual(asText(theirs.blocks));
    // Without folders' lines, as lsjson --files-only.
    const filesOnly = linesOf(await listedHere([], false)).lines;
    expect(filesOnly.length).toBeLessThan(here.lines.length);
    expect([...filesOnly].sort()).toEqual([...linesOf(lsjson('--files-only')).lines].sort());
  });

  it('leaves out the folders our rules exclude (the trash, also one whose name has glob characters), as rclone does', async () => {
    await mkdir(join(root, '.rclonesync-trash/20260101T000000Z'), { recursive: true });
    await writeFile(join(root, '.rclonesync-trash/20260101T000000Z/old'), 'old');
    await mkdir(join(root, 'my [trash]*/run'), { recursive: true });
    await writeFile(join(root, 'my [trash]*/run/f'), 'f');
    await mkdir(join(root, 'keep/.rclonesync-trash'), { recursive: true });
    await writeFile(join(root, 'keep/.rclonesync-trash/not-ours'), 'n');
    const excluded = trashFolders(root, join(root, 'my [trash]*'));
    expect(excluded).toEqual(['.rclonesync-trash', 'my [trash]*']);
    const here = linesOf(await listedHere(excluded)).lines;
    const theirs = linesOf(lsjson(...excluded.flatMap((folder) => ['--exclude', excludeRuleFor(folder)]))).lines;
    expect([...here].sort()).toEqual([...theirs].sort());
    expect(here.some((line) => line.includes('not-ours'))).toBe(true);
    expect(here.some((line) => line.includes('old') || line.includes('"f"'))).toBe(false);
  });

  it('prints an empty root as lsjson does', async () => {
    expect(await listedHere()).toBe(lsjson());
  });

  it('declines what only rclone can answer: names its encoding maps (control characters too) or that are not UTF-8, a missing root, a root that is a file', async () => {
    const file = join(work, 'listing.json');
    for (const name of ['a\uFF0Fb', 'tab\tname', 'line\nbreak', 'del\u007F', 'quoted\u201Bname', 'sym\u2400bol']) {
      await writeFile(join(root, name), 'mapped');
      expect(writeLocalListing({ root, file, excludedFolders: [], foldersListed: true }), JSON.stringify(name)).toMatchObject({ kind: 'declined', reason: expect.stringContaining('name') });
      await rm(join(root, name));
    }
    expect(writeLocalListing({ root, file, excludedFolders: [], foldersListed: true }).kind).toBe('listed');
    await writeFile(Buffer.concat([Buffer.from(`${root}/bad`), Buffer.from([0xfe]), Buffer.from('name')]), 'raw');
    expect(writeLocalListing({ root, file, excludedFolders: [], foldersListed: true }).kind).toBe('declined');
    expect(writeLocalListing({ root: join(work, 'nowhere'), file, excludedFolders: [], foldersListed: true })).toEqual({ kind: 'declined', reason: 'the root does not exist' });
    await writeFile(join(work, 'plain-file'), 'x');
    expect(writeLocalListing({ root: join(work, 'plain-file'), file, excludedFolders: [], foldersListed: true })).toEqual({ kind: 'declined', reason: 'the root is not a folder' });
  });

  it('lists here only in an environment that leaves a listing as it is', () => {
    expect(listsHereLikeRclone({ RCLONE_CONFIG: '/x', RCLONE_CONFIG_REMOTE_TYPE: 'sftp', RCLONE_TRANSFERS: '8', RCLONE_IMAGE: 'rclone/rclone', PATH: '/bin' })).toBe(true);
    for (const name of ['RCLONE_EXCLUDE', 'RCLONE_MAX_AGE', 'RCLONE_COPY_LINKS', 'RCLONE_LOCAL_NOUNC', 'RCLONE_FILTER_FROM', 'RCLONE_SKIP_LINKS', 'RCLONE_FILES_ONLY', 'RCLONE_ONE_FILE_SYSTEM', 'RCLONE_LOCAL_ENCODING']) {
      expect(listsHereLikeRclone({ [name]: 'x' }), name).toBe(false);
    }
  });

  it('reports the files found as it walks, before any line is read (a status keeps moving through a long walk)', async () => {
    for (let f = 0; f < 9; f++) {
      await mkdir(join(root, `f${f}`));
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(root, `f${f}`, `${i}.txt`), 'x')));
    }
    const counts: number[] = [];
    const outcome = await listLocalTree({ root, file: join(work, 'l.json'), excludedFolders: [], foldersListed: true }, { onWalked: (files) => counts.push(files) });
    expect(outcome).toEqual({ kind: 'listed', files: 9000, folders: 9 });
    // A heartbeat every 4096 entries (files and folders): two of them in 9,009.
    expect(counts).toHaveLength(2);
    expect(counts[0]).toBeGreaterThan(4000);
    expect(counts[1]! - counts[0]!).toBeGreaterThan(4000);
    expect(counts[1]).toBeLessThan(9000);
  });

  it('gives up on a walk that reads no folder for the stall timeout (a hung mount)', async () => {
    // A thread takes longer than 1 ms to start: the walk has read nothing by then.
    expect(await listLocalTree({ root, file: join(work, 'l.json'), excludedFolders: [], foldersListed: true }, { stallMs: 1 })).toMatchObject({ kind: 'stalled' });
  });

  it("a listing stopped before it began fails as a stopped rclone would, and the other side's verdict does not wait for it", async () => {
    await writeFile(join(root, 'a.txt'), 'a');
    const stop = new AbortController();
    stop.abort(new Error('stopped by the test'));
    const rclone = new Rclone({ binary: 'rclone', logger: pino({ level: 'silent' }), workDir: join(work, 'rclone-work'), env: { RCLONE_CONFIG: '/nonexistent' }, signal: stop.signal });
    const verdict = new PairVerdict();
    const blocks = new BlockComparison({ blocks: new Map(), exact: true }, verdict);
    expect(verdict.missed).toBe(false);
    const listing = async () => {
      for await (const _ of rclone.list(root, { blocks, onFolder: () => {} }));
    };
    const error = await listing().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RcloneError);
    expect((error as RcloneError).cancelled).toBe(true);
    expect(verdict.missed).toBe(true);
    await rclone.dispose();
  });

  it('stops when the run stops', async () => {
    const stop = new AbortController();
    stop.abort(new Error('stopped by the test'));
    await expect(listLocalTree({ root, file: join(work, 'l.json'), excludedFolders: [], foldersListed: true }, { signal: stop.signal })).rejects.toThrow('stopped by the test');
  });
});
