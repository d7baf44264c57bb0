/**
 * Regression test for issue 6, item 4: a side that goes away in the middle of a run. path2 is a
 * bind mount of a real folder, and the mount is lazily unmounted (`umount -l`, as when a NAS share
 * drops) while the run propagates: from then on rclone writes into the bare mount point. The run
 * must notice that path2 is no longer the folder it listed, exit 1 and commit nothing, so that once
 * the mount is back the next run carries the same changes again, instead of taking the real
 * folder's contents for deletions and reversions.
 *
 * Needs root (mount --bind); the test is skipped with the reason when mounting is not possible.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { dump, spawnCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { digestTree, minutesAgo, randomBytesSeeded, readTree, removeFile, sha256, writeTree, writeTreeFile } from '../helpers/trees.ts';
import { journalWritten } from '../helpers/inject.ts';

const { sandbox: sb, ok } = useSandbox('rs-vanish-');

/** Whether this process may bind-mount, and if not, why. Probed once, before the tests are declared. */
function bindMountProbe(): { readonly ok: true } | { readonly ok: false; readonly reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'mount --bind needs root' };
  const dir = mkdtempSync(join(tmpdir(), 'rs-vanish-probe-'));
  const [source, target] = [join(dir, 'source'), join(dir, 'target')];
  mkdirSync(source);
  mkdirSync(target);
  try {
    execFileSync('mount', ['--bind', source, target], { stdio: 'pipe' });
    execFileSync('umount', [target], { stdio: 'pipe' });
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `mount --bind is not permitted here (${String((error as { stderr?: Buffer }).stderr ?? error).trim()})` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const canMount = bindMountProbe();

/** How many mounts sit on `path` right now (bind mounts stack). */
function mountsOn(path: string): number {
  // The fifth field of each line is the mount point (spaces escaped as \040; sandbox paths have none).
  const real = realpathSync(path);
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.split(' ')[4] === real).length;
}
const bindMount = (source: string, target: string) => execFileSync('mount', ['--bind', source, target], { stdio: 'pipe' });
const unmountAll = (path: string) => {
  while (mountsOn(path) > 0) execFileSync('umount', ['-l', path], { stdio: 'pipe' });
};

const MB = 1024 * 1024;

it.skipIf(!canMount.ok)(
  `item 4: a side that vanishes in the middle of a run makes it exit 1 and commit nothing, and loses nothing once it is back${canMount.ok ? '' : ` (skipped: ${canMount.reason})`}`,
  { timeout: 240_000 },
  async () => {
    const real2 = join(sb.root, 'real2');
    await mkdir(real2);
    bindMount(real2, sb.path2);
    try {
      const synced = { 'keep/one.txt': 'one', 'keep/two.txt': 'two', 'keep/three.txt': 'three', 'mod.txt': 'mod.txt as synced', 'del.txt': 'deleted on path1' };
      await writeTree(sb.path1, synced);
      await ok();
      expect(await readTree(real2)).toEqual(synced);
      const snapshotFile = join(await sb.pairDir(), 'snapshot.jsonl');
      const snapshot = await readFile(snapshotFile);

      // Three new files on path1 (the first big, so the run takes a while), a modification, a deletion.
      const big = randomBytesSeeded(1.5 * MB, 4);
      const added = { 'a-big.bin': big, 'b-new.txt': 'b, new on path1', 'c-new.txt': 'c, new on path1' };
      await writeTree(sb.path1, added);
      await writeTreeFile(sb.path1, 'mod.txt', 'mod.txt, modified on path1', minutesAgo(2));
      await removeFile(sb.path1, 'del.txt');
      const env = sb.env({ SYNC_RCLONE_ARGS: '--bwlimit 200k --transfers 1 --order-by name --check-first', LOG_LEVEL: 'debug' });
      const running = spawnCli(['run'], env, { detached: true });
      await journalWritten(running, env);
      // path2 goes away while the run propagates: what it writes from now on lands in the bare mount point.
      unmountAll(sb.path2);
      const failed = await running.result;
      expect(failed.exitCode, dump(failed)).toBe(1);
      expect((await readFile(snapshotFile)).equals(snapshot), 'the run committed a snapshot after path2 had vanished').toBe(true);

      bindMount(real2, sb.path2);
      await ok();
      const expected = {
        'keep/one.txt': sha256('one'),
        'keep/two.txt': sha256('two'),
        'keep/three.txt': sha256('three'),
        'mod.txt': sha256('mod.txt, modified on path1'),
        'a-big.bin': sha256(big),
        'b-new.txt': sha256(added['b-new.txt']),
        'c-new.txt': sha256(added['c-new.txt']),
      };
      expect(await digestTree(sb.path1), 'path1').toEqual(expected);
      expect(await digestTree(real2), 'path2').toEqual(expected);
    } finally {
      unmountAll(sb.path2);
    }
  },
);
