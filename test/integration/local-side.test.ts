/**
 * What src/rclone/local-side.ts does in-process on a local side must be what rclone would have
 * done or said: each case is checked against real rclone on the same files.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashLocalFiles, isPlainLocal, localTreeSize, makeLocalFolder, removeLocalFolder, renameLocal, renameLocalFolder, statLocalFiles } from '../../src/rclone/local-side.ts';
import { modTimeMs } from '../../src/rclone/lsjson-line.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'rs-local-side-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const rclone = (...args: string[]) => execFileSync('rclone', args, { encoding: 'utf8', env: { ...process.env, RCLONE_CONFIG: '/nonexistent' } });

describe('local side, in-process', () => {
  it('looks up size and time exactly as lsjson prints them (nanoseconds, before 1970, absent files)', async () => {
    await mkdir(join(root, 'a'));
    await writeFile(join(root, 'a/new.txt'), 'new');
    await writeFile(join(root, 'old.txt'), 'old one');
    await utimes(join(root, 'old.txt'), -86_400.123456, -86_400.123456);
    await writeFile(join(root, 'b c.txt'), '');
    // Absent, also below a folder that is not there, or below a file; and a file after those in its folder.
    const paths = ['a/missing/x', 'nowhere/deep/x.txt', 'nowhere/y.txt', 'old.txt/child', 'a/new.txt', 'old.txt', 'b c.txt', 'missing.txt'];
    const listed = JSON.parse(rclone('lsjson', '-R', '--files-only', root)) as { Path: string; Size: number; ModTime: string }[];
    const expected = new Map(listed.map((e) => [e.Path, { size: e.Size, mtime: modTimeMs(e.ModTime), hash: '' }]));
    expect(await statLocalFiles(root, paths)).toEqual(expected);
  });

  it('leaves to rclone what it cannot answer alike: names rclone maps, folders, symlinks', async () => {
    await writeFile(join(root, 'x.txt'), 'x');
    await mkdir(join(root, 'folder'));
    execFileSync('ln', ['-s', 'x.txt', join(root, 'link')]);
    expect(await statLocalFiles(root, ['x.txt', 'folder'])).toBeUndefined();
    expect(await statLocalFiles(root, ['link'])).toBeUndefined();
    expect(await statLocalFiles(root, ['a\uFF0Fb'])).toBeUndefined();
    expect(await statLocalFiles(root, ['bad\uDCFEname'])).toBeUndefined();
  });

  it('hashes as rclone hashsum does, and leaves the rest to it', async () => {
    const big = Buffer.alloc(3 << 20, 7);
    await writeFile(join(root, 'small.txt'), 'hello\n');
    await writeFile(join(root, 'empty'), '');
    await writeFile(join(root, 'big.bin'), big);
    for (const type of ['md5', 'sha1'] as const) {
      const { hashes, rest } = await hashLocalFiles(root, ['small.txt', 'empty', 'big.bin', 'gone.txt', 'q\u201Bname'], type);
      const theirs = new Map(
        rclone('hashsum', type, root)
          .trim()
          .split('\n')
          .map((line) => line.split(/ {2}/))
          .map(([hash, path]) => [path!, hash!] as const),
      );
      expect(hashes).toEqual(theirs);
      expect(rest.sort()).toEqual(['gone.txt', 'q\u201Bname']);
    }
  });

  it('renames files and folders as rclone moveto would, and refuses what rclone must decide', async () => {
    await mkdir(join(root, 'from'), { recursive: true });
    await writeFile(join(root, 'from/f.txt'), 'f');
    const inode = (await stat(join(root, 'from/f.txt'))).ino;
    expect(renameLocal(root, 'from/f.txt', 'new/deep/g.txt')).toBe(true);
    expect((await stat(join(root, 'new/deep/g.txt'))).ino).toBe(inode);
    expect(renameLocal(root, 'from/f.txt', 'h.txt')).toBe(false); // gone: rclone reports it
    expect(renameLocal(root, 'new', 'elsewhere')).toBe(false); // a folder is no file
    expect(renameLocalFolder(root, 'new', 'moved')).toBe(true);
    expect(await readdir(join(root, 'moved/deep'))).toEqual(['g.txt']);
    await mkdir(join(root, 'taken'));
    expect(renameLocalFolder(root, 'moved', 'taken')).toBe(false); // rclone merges into what is there
    expect(renameLocal(root, 'moved/deep/g.txt', 'odd\uFF0Fname')).toBe(false);
  });

  it('makes and removes folders; a folder that holds something stays', async () => {
    expect(makeLocalFolder(root, 'p/q/r')).toBe(true);
    await writeFile(join(root, 'p/q/file'), '1');
    expect(removeLocalFolder(root, 'p/q/r')).toBe('removed');
    expect(removeLocalFolder(root, 'p/q')).toBe('not-empty');
    expect(removeLocalFolder(root, 'p/q/r')).toBe('removed'); // already gone
    expect(removeLocalFolder(root, 'p/q/file')).toBe('removed'); // a file took the name: no folder there
  });

  it('counts what a folder holds as rclone size does; a symlink is left to rclone', async () => {
    await mkdir(join(root, 'trash/20261201T000000Z/deep'), { recursive: true });
    await writeFile(join(root, 'trash/20261201T000000Z/a.txt'), 'abc');
    await writeFile(join(root, 'trash/20261201T000000Z/deep/b.bin'), Buffer.alloc(5000));
    await writeFile(join(root, 'trash/empty'), '');
    const theirs = JSON.parse(rclone('size', '--json', join(root, 'trash'))) as { count: number; bytes: number };
    expect(await localTreeSize(join(root, 'trash'))).toEqual({ files: theirs.count, bytes: theirs.bytes });
    expect(await localTreeSize(join(root, 'nothing-here'))).toEqual({ files: 0, bytes: 0 });
    execFileSync('ln', ['-s', 'a.txt', join(root, 'trash/20261201T000000Z/link')]);
    expect(await localTreeSize(join(root, 'trash'))).toBeUndefined();
  });

  it('compares two local sides\' contents as rclone check does: small files here, large ones and mapped names by rclone', async () => {
    const one = join(root, 'one');
    const two = join(root, 'two');
    const big = Buffer.alloc((1 << 20) + 10, 1);
    const bigOther = Buffer.from(big);
    bigOther[bigOther.length - 1] = 2;
    const files: Record<string, [string | Buffer, string | Buffer | undefined]> = {
      'same.txt': ['alike', 'alike'],
      'd/differs.txt': ['one!!', 'two!!'],
      'empty': ['', ''],
      'only-one.txt': ['x', undefined],
      'big-same.bin': [big, big],
      'big-differs.bin': [big, bigOther],
      'q\u201Bname.txt': ['mapped', 'mapped'],
    };
    for (const [path, [a, b]] of Object.entries(files)) {
      await mkdir(join(one, path, '..'), { recursive: true });
      await mkdir(join(two, path, '..'), { recursive: true });
      await writeFile(join(one, path), a);
      if (b !== undefined) await writeFile(join(two, path), b);
    }
    const paths = Object.keys(files);
    const list = join(root, 'list.txt');
    const match = join(root, 'match.txt');
    await writeFile(list, paths.join('\n') + '\n');
    try {
      rclone('check', one, two, '--files-from-raw', list, '--match', match);
    } catch {
      // Exit 1: some differ (the normal answer).
    }
    const theirs = (await readFile(match, 'utf8')).split('\n').filter(Boolean).sort();
    expect(theirs).toEqual(expect.arrayContaining(['big-same.bin', 'empty', 'same.txt']));
    expect(theirs).not.toEqual(expect.arrayContaining(['d/differs.txt']));
    const { Rclone } = await import('../../src/rclone/rclone.ts');
    const { pino } = await import('pino');
    const ours = new Rclone({ binary: 'rclone', logger: pino({ level: 'silent' }), workDir: root, env: { RCLONE_CONFIG: '/nonexistent' } });
    expect([...(await ours.matchingFiles(one, two, paths, false))].sort()).toEqual(theirs);
  });

  it('is used only on local roots without options that change how local names read', () => {
    expect(isPlainLocal('/data', [], {})).toBe(true);
    expect(isPlainLocal('remote:data', [], {})).toBe(false);
    expect(isPlainLocal(':sftp,host=x:data', [], {})).toBe(false);
    expect(isPlainLocal('/data', ['--local-encoding', 'None'], {})).toBe(false);
    expect(isPlainLocal('/data', ['--links'], {})).toBe(false);
    expect(isPlainLocal('/data', [], { RCLONE_LOCAL_ENCODING: 'None' })).toBe(false);
  });
});
