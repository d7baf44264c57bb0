/**
 * `rclonesync trash list` and `trash restore`, and a run killed in the middle of its trash moves.
 */
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionsOf, conflictsOf } from '../helpers/logs.ts';
import { dump, runCli, spawnCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { minutesAgo, readTree, removeFile, TRASH_FOLDER, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-trashcmd-');
const trash = (args: string[]) => runCli(['trash', ...args], sb.env());
const STAMP = /^\d{8}T\d{6}Z$/;

interface Entry {
  side: string;
  stamp: string;
  path: string;
  size: number;
  modTime: string;
}

describe('rclonesync trash', () => {
  it('list --json shows every trashed version per side, newest first; the text form too', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a1', 'b.txt': 'bb', 'keep.txt': 'k', 'sub/c.txt': 'ccc' });
    await ok();
    await writeTreeFile(sb.path1, 'a.txt', 'a2 longer', minutesAgo(1));
    await removeFile(sb.path2, 'b.txt');
    await ok({ SYNC_MAX_DELETE: '100' });
    await removeFile(sb.path2, 'sub/c.txt');
    await ok({ SYNC_MAX_DELETE: '100' });

    const listed = await trash(['list', '--json']);
    expect(listed.exitCode, dump(listed)).toBe(0);
    const entries = JSON.parse(listed.stdout) as Entry[];
    expect(entries.map((e) => `${e.side}:${e.path}:${e.size}`)).toEqual(['path1:sub/c.txt:3', 'path2:a.txt:2', 'path1:b.txt:2']);
    for (const e of entries) expect(e.stamp).toMatch(STAMP);
    expect(entries[0]!.stamp > entries[1]!.stamp).toBe(true);
    expect(entries[1]!.stamp).toBe(entries[2]!.stamp);

    const text = await trash(['list']);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/path1\s+\d{8}T\d{6}Z\s+3\s+sub\/c\.txt/);
    const one = JSON.parse((await trash(['list', '--json', '--side', 'path2'])).stdout) as Entry[];
    expect(one.map((e) => e.path)).toEqual(['a.txt']);
    // The state folder holds one pair: SYNC_PATH1/2 need not be repeated.
    const bare = await runCli(['trash', 'list', '--json'], sb.env({ SYNC_PATH1: undefined, SYNC_PATH2: undefined }));
    expect(bare.exitCode, dump(bare)).toBe(0);
    expect(JSON.parse(bare.stdout)).toEqual(entries);
  });

  it('restore puts the newest version back on its side, beside the file when the path is taken; the next run carries it', async () => {
    await writeTree(sb.path1, { 'doc.txt': 'v1', 'keep.txt': 'k' });
    await ok();
    await removeFile(sb.path2, 'doc.txt');
    await ok({ SYNC_MAX_DELETE: '100' });
    expect(await readTree(sb.path1)).toEqual({ 'keep.txt': 'k' });

    const restored = await trash(['restore', 'doc.txt']);
    expect(restored.exitCode, dump(restored)).toBe(0);
    expect(await readTree(sb.path1)).toEqual({ 'doc.txt': 'v1', 'keep.txt': 'k' });
    const carried = await ok();
    expect(actionsOf(carried.logs).map((l) => `${l.action}:${l.path}`)).toEqual(['copy:doc.txt']);
    expect(await readTree(sb.path2)).toEqual({ 'doc.txt': 'v1', 'keep.txt': 'k' });

    // Occupied: the version from the trash goes beside the file, never over it.
    await writeTreeFile(sb.path2, 'doc.txt', 'v2, edited', minutesAgo(1));
    await ok();
    const [entry] = JSON.parse((await trash(['list', '--json'])).stdout) as Entry[];
    expect(entry).toMatchObject({ side: 'path1', path: 'doc.txt', size: 2 });
    const beside = await trash(['restore', 'doc.txt', '--side', 'path1', '--from', entry!.stamp]);
    expect(beside.exitCode, dump(beside)).toBe(0);
    const tree = await readTree(sb.path1);
    expect(tree['doc.txt']).toBe('v2, edited');
    const copy = Object.keys(tree).find((p) => p.startsWith('doc.conflict-path1-'));
    expect(copy, JSON.stringify(tree)).toBeDefined();
    expect(tree[copy!]).toBe('v1');
    expect(beside.stdout).toContain(copy!);
  });

  it('restoring what the trash does not hold, or a bad request, is exit 2 naming it', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    const missing = await trash(['restore', 'nothing-here.txt']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('nothing-here.txt');
    expect((await trash(['restore'])).exitCode).toBe(2);
    expect((await trash(['empty'])).exitCode).toBe(2);
    expect((await trash(['list', '--side', 'path3'])).exitCode).toBe(2);
    expect((await trash(['restore', 'a.txt', '--from', 'yesterday'])).exitCode).toBe(2);
  });
});

describe('a run killed during its trash moves', () => {
  it('leaves every file at its path or in the trash, and the next run converges without conflicts', async () => {
    const files: Record<string, string> = { 'keep.txt': 'k' };
    for (let i = 0; i < 40; i++) files[`d/f${String(i).padStart(2, '0')}.txt`] = `content ${i}`;
    await writeTree(sb.path1, files);
    await ok();
    for (let i = 0; i < 40; i++) await removeFile(sb.path1, `d/f${String(i).padStart(2, '0')}.txt`);
    // An rclone that moves half of the list to the trash, then kills rclonesync (its parent) outright.
    const wrapper = join(sb.scratch, 'rclone-killer.sh');
    await writeFile(
      wrapper,
      `#!/bin/sh
if [ "$1" = move ]; then
  list=""; prev=""
  for a in "$@"; do [ "$prev" = --files-from-raw ] && list="$a"; prev="$a"; done
  head -n 20 "$list" > "$list.half"
  set -- $(for a in "$@"; do if [ "$a" = "$list" ]; then echo "$list.half"; else echo "$a"; fi; done)
  rclone "$@"
  kill -9 $PPID
  exit 1
fi
exec rclone "$@"
`,
    );
    await chmod(wrapper, 0o755);
    const killed = spawnCli(['run'], sb.env({ SYNC_RCLONE_BINARY: wrapper, SYNC_MAX_DELETE: '100' }), { detached: true });
    const result = await killed.result;
    expect(result.exitCode, dump(result)).not.toBe(0);
    const stamps = await readdir(join(sb.path2, TRASH_FOLDER));
    expect(stamps).toHaveLength(1);
    const inTrash = Object.keys(await readTree(join(sb.path2, TRASH_FOLDER, stamps[0]!)));
    const atPath = Object.keys(await readTree(sb.path2)).filter((p) => p.startsWith('d/'));
    expect(inTrash.length).toBeGreaterThan(0);
    expect(inTrash.length + atPath.length).toBe(40);

    const next = await ok({ SYNC_MAX_DELETE: '100' });
    expect(conflictsOf(next.logs)).toEqual([]);
    expect(await readTree(sb.path2)).toEqual({ 'keep.txt': 'k' });
    expect(await readTree(sb.path1)).toEqual({ 'keep.txt': 'k' });
    const trashed = (JSON.parse((await trash(['list', '--json'])).stdout) as Entry[]).map((e) => e.path).sort();
    expect(trashed).toEqual(Object.keys(files).filter((p) => p !== 'keep.txt').sort());
  });
});
