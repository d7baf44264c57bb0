/**
 * Names that are not valid UTF-8 (rclone's bisync corpus `extended_filenames`:
 * `subdir_rawchars_\x19_\x81_\xfe/file3_\x19_\x81_\xfe`), created on path2 — a local folder, or the
 * folder an SFTP server serves. lsjson prints every such byte as U+FFFD; the names must still sync
 * byte for byte, and edits, deletions and conflicts of such files must cross over like any other.
 *
 * Names are written here as latin1 strings: one character per byte, so '\xfe' is the byte 0xFE.
 */
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { actionsOf, conflictsOf, copiesOf, deletesOf } from '../helpers/logs.ts';
import { dump, type Env } from '../helpers/processes.ts';
import { type S3Server, startS3Server } from '../helpers/remotes/s3-server.ts';
import { type SftpServer, startSftpServer } from '../helpers/remotes/sftp-server.ts';
import { makeSandbox, type Sandbox, useSandbox } from '../helpers/sandbox.ts';
import { minutesAgo, TRASH_FOLDER } from '../helpers/trees.ts';

const FILE3 = 'subdir_rawchars_\x19_\x81_\xfe/file3_\x19_\x81_\xfe';
const CORPUS: Record<string, string> = {
  [FILE3]: 'file3 of the corpus',
  // Latin-1 on a UTF-8 system, a truncated sequence, and an encoded surrogate (three bad bytes).
  'latin1_gro\xdf.txt': 'gross',
  'trunc_\xe2\x82_end.txt': 'truncated',
  'surrogate_\xed\xa0\x80.txt': 'surrogate',
  // Two names lsjson prints alike, with equal sizes and times, and a real U+FFFD (valid UTF-8).
  'alike_\x81.txt': 'alike one',
  'alike_\xfe.txt': 'alike two',
  'real_\xef\xbf\xbd.txt': 'real replacement character',
  'big_alike_\x81.bin': 'x'.repeat(3000),
  'big_alike_\xfe.bin': 'y'.repeat(3000),
  // Glob characters and a space around the bad byte, for the rules that find exact names.
  'glob [x]*?{y} \xfe .txt': 'glob',
};

const bytesOf = (latin1: string) => Buffer.from(latin1, 'latin1');
const under = (root: string, latin1: string) => Buffer.concat([Buffer.from(`${root}/`), bytesOf(latin1)]);

async function writeRaw(root: string, path: string, content: string, mtime: Date): Promise<void> {
  const slash = path.lastIndexOf('/');
  if (slash > 0) await mkdir(under(root, path.slice(0, slash)), { recursive: true });
  await writeFile(under(root, path), content);
  await utimes(under(root, path), mtime, mtime);
}

/** Every file below root, keyed by its exact bytes (as latin1). */
async function rawTree(root: string, prefix = ''): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  for (const entry of await readdir(under(root, prefix.slice(0, -1)), { withFileTypes: true, encoding: 'buffer' })) {
    const path = `${prefix}${entry.name.toString('latin1')}`;
    // The side's trash is never synced: two sides in sync may differ there.
    if (path === TRASH_FOLDER) continue;
    if (entry.isDirectory()) Object.assign(tree, await rawTree(root, `${path}/`));
    else tree[path] = await readFile(under(root, path), 'utf8');
  }
  return tree;
}

interface Backend {
  readonly name: string;
  /** The folder holding path2's files. */
  path2Dir(): string;
  env(): Env;
}

const local: Backend = { name: 'local', path2Dir: () => sb.path2, env: () => ({}) };

let server: SftpServer | undefined;
let served: Sandbox | undefined;
let servedDir = '';
let counter = 0;
const sftp: Backend = {
  name: 'sftp',
  path2Dir: () => servedDir,
  env: () => ({ ...server!.clientEnv(), SYNC_PATH2: server!.remote(servedDir.slice(served!.root.length + 1)) }),
};

let s3: S3Server | undefined;
const s3Prefix = () => `pair-${counter}`;

let backend: Backend = local;
const { sandbox: sb, ok } = useSandbox('rs-raw-', { runEnv: () => backend.env(), failureDetail: () => (server ? `--- server ---\n${server.log()}` : '') });

beforeAll(async () => {
  served = await makeSandbox('rs-raw-served-');
  server = await startSftpServer(served.root, { remoteName: 'rawsftp' });
  s3 = await startS3Server({ remoteName: 'raws3', bucket: 'rclonesync-raw' });
});
afterAll(async () => {
  await server?.stop();
  await s3?.stop();
  await served?.cleanup();
});
beforeEach(async () => {
  servedDir = `${served!.root}/pair-${++counter}`;
  await mkdir(servedDir);
});

/** sftp keeps modtimes to the second. */
const whileAgo = (minutes: number) => minutesAgo(minutes, { wholeSeconds: true });

describe.each([local, sftp])('names that are not valid UTF-8, local <-> $name', (which) => {
  beforeEach(() => {
    backend = which;
  });

  it('sync byte for byte from path2, and a second run has nothing to do', async () => {
    const made = whileAgo(20);
    for (const [path, content] of Object.entries(CORPUS)) await writeRaw(backend.path2Dir(), path, content, made);
    await writeRaw(sb.path1, 'plain.txt', 'plain', made);

    // Human-readable sizes ("2.9Ki") must not get in the way of reading exact names.
    const first = await ok({ RCLONE_HUMAN_READABLE: 'true' });
    expect(copiesOf(first.logs), dump(first)).toHaveLength(Object.keys(CORPUS).length + 1);
    const union = { ...CORPUS, 'plain.txt': 'plain' };
    expect(await rawTree(sb.path1)).toEqual(union);
    expect(await rawTree(backend.path2Dir())).toEqual(union);
    expect(first.logs.filter((l) => l.level === 'warn'), dump(first)).toEqual([]);

    const second = await ok();
    expect(actionsOf(second.logs), dump(second)).toEqual([]);
    expect(await rawTree(sb.path1)).toEqual(union);
  });

  it('an edit, a deletion and a conflict of such files cross over', async () => {
    const made = whileAgo(20);
    for (const [path, content] of Object.entries(CORPUS)) await writeRaw(backend.path2Dir(), path, content, made);
    await ok();

    await writeRaw(sb.path1, FILE3, 'file3 edited on path1', whileAgo(5));
    await rm(under(backend.path2Dir(), 'latin1_gro\xdf.txt'));
    await writeRaw(sb.path1, 'alike_\x81.txt', 'alike one, path1 edit', whileAgo(4));
    await writeRaw(backend.path2Dir(), 'alike_\x81.txt', 'alike one, path2 edit', whileAgo(3));

    const result = await ok({ SYNC_MAX_DELETE: '100', SYNC_CONFLICT_RESOLVE: 'none' });
    // Log lines print each such byte as U+FFFD.
    expect(copiesOf(result.logs).map((l) => [l.from, l.path]), dump(result)).toEqual([['path1', 'subdir_rawchars_␙_\ufffd_\ufffd/file3_␙_\ufffd_\ufffd']]);
    expect(deletesOf(result.logs).map((l) => [l.side, l.path])).toEqual([['path1', 'latin1_gro\ufffd.txt']]);
    expect(conflictsOf(result.logs)).toHaveLength(1);

    const tree = await rawTree(sb.path1);
    expect(await rawTree(backend.path2Dir())).toEqual(tree);
    expect(tree[FILE3]).toBe('file3 edited on path1');
    expect(tree).not.toHaveProperty(['latin1_gro\xdf.txt']);
    // Both versions kept under conflict names that still start with the same bytes.
    const alike = Object.entries(tree).filter(([path]) => path.startsWith('alike_\x81'));
    expect(alike.map(([, content]) => content).sort()).toEqual(['alike one, path1 edit', 'alike one, path2 edit']);
    expect(alike.map(([path]) => path)).not.toContain('alike_\x81.txt');
    expect(tree['alike_\xfe.txt']).toBe('alike two');

    expect(actionsOf((await ok()).logs)).toEqual([]);
  });
});

describe('names that are not valid UTF-8, local <-> s3', () => {
  beforeEach(() => {
    backend = { name: 's3', path2Dir: () => '', env: () => ({ ...s3!.clientEnv(), SYNC_PATH2: s3!.remote(s3Prefix()) }) };
  });

  // Without the corpus's control character: s3rver's listings cannot carry it (XML 1.0 has no \x19).
  const corpus = Object.fromEntries(Object.entries(CORPUS).map(([path, content]) => [path.replaceAll('\x19_', ''), content]));

  it('keys hold each such byte as rclone quotes it, and come back as the same bytes', async () => {
    const made = whileAgo(20);
    for (const [path, content] of Object.entries(corpus)) await writeRaw(sb.path1, path, content, made);
    const first = await ok();
    expect(copiesOf(first.logs), dump(first)).toHaveLength(Object.keys(corpus).length);
    expect(actionsOf((await ok()).logs)).toEqual([]);
    const keys = Object.keys(await rawTree(s3!.storeDir(s3Prefix())));
    expect(keys.some((key) => Buffer.from(key, 'latin1').toString('utf8').includes('file3_‛81_‛FE')), keys.join('\n')).toBe(true);

    // Another local folder paired with the same prefix receives the exact bytes.
    const again = `${sb.scratch}/again`;
    await mkdir(again);
    const back = await ok({ SYNC_PATH1: again, SYNC_STATE_DIR: `${sb.scratch}/state-again` });
    expect(copiesOf(back.logs), dump(back)).toHaveLength(Object.keys(corpus).length);
    expect(await rawTree(again)).toEqual(corpus);
  });
});
