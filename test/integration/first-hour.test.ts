/**
 * The mistakes a new user makes in the first hour, each ending in exit 2 with a message that names
 * the setting, the value and the fix, before anything changes: folders the running uid cannot
 * write (tested as `nobody`: as root every permission check passes), a mistyped remote, a forgotten
 * colon, a mistyped local folder, a malformed filter rule, a schedule that never fires; and what
 * must simply work: a memory-only rclone config, a remote folder that does not exist yet.
 */
import { chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRunAsNobody, NOBODY, openTo, runCliAsNobody } from '../helpers/as-user.ts';
import { type CliResult, dump, REPO_ROOT, runCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { listFiles, readTree, writeTree } from '../helpers/trees.ts';

const { sandbox: sb, ok, synced } = useSandbox('rs-first-hour-');

/** Exit 2, stderr has every one of `parts`, and nothing was synced. */
async function expectConfigError(result: CliResult, parts: (string | RegExp)[]) {
  expect(result.exitCode, dump(result)).toBe(2);
  for (const part of parts) {
    if (typeof part === 'string') expect(result.stderr, dump(result)).toContain(part);
    else expect(result.stderr, dump(result)).toMatch(part);
  }
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(await listFiles(sb.path2)).toEqual([]);
}

describe.runIf(canRunAsNobody)('permissions, as a uid that does not own the folders (nobody)', () => {
  const asNobody = async (extra: Record<string, string | undefined> = {}, args: string[] = ['run']) => {
    await openTo(sb.root, [join(sb.root, 'tmp')]);
    return runCliAsNobody(args, sb.env(extra));
  };
  const ownAll = () => openTo(sb.root, [join(sb.root, 'tmp'), sb.path1, sb.path2, sb.stateDir]);

  it('a state folder owned by root: names SYNC_STATE_DIR, its owner, the running uid and the chown/PUID fix', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await openTo(sb.root, [join(sb.root, 'tmp'), sb.path1, sb.path2]);
    const result = await asNobody();
    await expectConfigError(result, [
      `SYNC_STATE_DIR (--state-dir) "${sb.stateDir}" is not writable by uid ${NOBODY.uid}`,
      'belongs to uid 0 (gid 0)',
      `chown -R ${NOBODY.uid}:${NOBODY.gid} "${sb.stateDir}"`,
      'PUID=0 and PGID=0',
    ]);
    expect(await readdir(sb.stateDir)).toEqual([]);
  });

  it('a state folder that does not exist under a folder nobody may write: says it cannot be created and why', async () => {
    await ownAll();
    const stateDir = join(sb.stateDir, 'locked', 'state');
    await mkdir(join(sb.stateDir, 'locked'), { mode: 0o755 });
    await chown(join(sb.stateDir, 'locked'), 0, 0);
    const result = await asNobody({ SYNC_STATE_DIR: stateDir });
    await expectConfigError(result, ['SYNC_STATE_DIR', `"${stateDir}" does not exist and cannot be created`, `"${join(sb.stateDir, 'locked')}" belongs to uid 0`]);
    expect(result.stderr).not.toContain('ENOENT');
  });

  it('an rclone.conf only root may read: names RCLONE_CONFIG, the owner and the fix (not a bare EACCES)', async () => {
    await ownAll();
    const conf = join(sb.stateDir, 'rclone.conf');
    await writeFile(conf, '[gdrive]\ntype = local\n', { mode: 0o600 });
    const result = await asNobody({ RCLONE_CONFIG: conf });
    await expectConfigError(result, [`RCLONE_CONFIG "${conf}" cannot be read by uid ${NOBODY.uid}`, 'belongs to uid 0 (gid 0), mode 0600', `chown ${NOBODY.uid}:${NOBODY.gid} "${conf}"`]);
    expect(result.stderr).not.toMatch(/tmp-\d+/);
  });

  it('a local side the uid cannot write: a dry run already says so (exit 2), rather than a real run failing later', async () => {
    await ownAll();
    await chown(sb.path2, 0, 0);
    await writeTree(sb.path1, { 'sub/a.txt': 'a' });
    await openTo(sb.root, [join(sb.root, 'tmp'), sb.path1, sb.stateDir]);
    for (const args of [['run', '--dry-run'], ['run']]) {
      const result = await asNobody({}, args);
      await expectConfigError(result, [`SYNC_PATH2 (--path2) "${sb.path2}" is not writable by uid ${NOBODY.uid}`, 'belongs to uid 0', `chown -R ${NOBODY.uid}:${NOBODY.gid} "${sb.path2}"`]);
    }
    // Nothing was recorded as done.
    expect(await readdir(sb.stateDir)).toEqual([]);
  });

  it('the daemon stops at start with exit 2 (it does not fail every scheduled run)', async () => {
    await openTo(sb.root, [join(sb.root, 'tmp'), sb.path1, sb.path2]);
    const result = await asNobody({ SYNC_SCHEDULE: '0 0 1 1 *' }, ['daemon']);
    await expectConfigError(result, ['SYNC_STATE_DIR', 'is not writable']);
    expect(result.logs.some((l) => l.level === 'error' && l.outcome === 'usage' && String(l.msg).includes('SYNC_STATE_DIR'))).toBe(true);
  });
});

describe('remotes', () => {
  it('a mistyped remote names SYNC_PATH2, the remote, and the remotes that exist (config file and RCLONE_CONFIG_*)', async () => {
    const conf = join(sb.scratch, 'rclone.conf');
    await writeFile(conf, '[gdrive]\ntype = local\n\n[office nas]\ntype = local\n');
    const result = await sb.run({ SYNC_PATH2: 'gdirve:Backup', RCLONE_CONFIG: conf, RCLONE_CONFIG_MYS3_TYPE: 's3' });
    await expectConfigError(result, ['SYNC_PATH2 (--path2) "gdirve:Backup"', 'remote "gdirve"', `${conf} has gdrive, office nas`, 'variables define mys3', 'Did you mean "gdrive:"?']);
    expect(await readdir(sb.stateDir)).toEqual([]);
  });

  it('a remote defined only by RCLONE_CONFIG_<NAME>_TYPE, with RCLONE_CONFIG=/dev/null, empty or …/notfound (memory-only config): runs', async () => {
    const target = join(sb.root, 'remote-side');
    await mkdir(target);
    await writeTree(sb.path1, { 'a.txt': 'a' });
    for (const config of ['/dev/null', '', join(sb.root, 'notfound')]) {
      await ok({ RCLONE_CONFIG: config, RCLONE_CONFIG_MYLOCAL_TYPE: 'local', SYNC_PATH2: `mylocal:${target}` });
    }
    expect(await readTree(target)).toEqual({ 'a.txt': 'a' });
  });

  it('a remote folder that does not exist yet is fine on a first run (the backend creates it on write)', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    const target = join(sb.root, 'not-yet', 'there');
    await ok({ RCLONE_CONFIG_MYLOCAL_TYPE: 'local', SYNC_PATH2: `mylocal:${target}` });
    expect(await readTree(target)).toEqual({ 'a.txt': 'a' });
  });

  it('a remote with its colon forgotten: says it is taken as a local folder and that remotes need "name:"', async () => {
    const name = `mynas-${process.pid}`;
    const result = await runCli(['run'], sb.env({ SYNC_PATH2: name }), { cwd: REPO_ROOT });
    await expectConfigError(result, [`SYNC_PATH2 (--path2) "${name}" has no colon, so it is taken as a local folder`, `"${name}:"`]);
    await expect(readdir(join(REPO_ROOT, name))).rejects.toThrow();
  });
});

describe('a local side that does not exist on the first run', () => {
  it('is refused with exit 2 ("does not exist; create it first"), and not created and filled', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    const typo = join(sb.root, 'pth2');
    const result = await sb.run({ SYNC_PATH2: typo });
    expect(result.exitCode, dump(result)).toBe(2);
    expect(result.stderr).toContain(`SYNC_PATH2 (--path2) "${typo}" does not exist; create it first`);
    await expect(readdir(typo)).rejects.toThrow();
    expect(await readdir(sb.stateDir)).toEqual([]);
  });

  it('on later runs a vanished side is still the safety gate\'s (exit 3), not a configuration error', async () => {
    await synced({ 'a.txt': 'a' });
    await rm(sb.path2, { recursive: true });
    const result = await sb.run();
    expect(result.exitCode, dump(result)).toBe(3);
  });
});

describe('SYNC_FILTERS_FILE', () => {
  it('a malformed rule: exit 2 with the line number and the rule, even after filters that worked (no "filters changed" stop)', async () => {
    const filters = join(sb.scratch, 'filters.txt');
    await writeFile(filters, '- *.tmp\n');
    await synced({ 'a.txt': 'a' });
    await ok({ SYNC_FILTERS_FILE: filters, SYNC_RESYNC: 'true' });
    await writeFile(filters, '# my rules\n- *.tmp\n\n*.bak\n');
    const result = await sb.run({ SYNC_FILTERS_FILE: filters });
    expect(result.exitCode, dump(result)).toBe(2);
    expect(result.stderr).toContain(`SYNC_FILTERS_FILE (--filters-file) "${filters}" line 4: "*.bak" is not a filter rule`);
    expect(result.stderr).not.toContain('filters changed');
  });

  it('a pattern rclone would refuse (an unclosed brace) names its line', async () => {
    const filters = join(sb.scratch, 'filters.txt');
    await writeFile(filters, '+ *.{jpg,png\n- *\n');
    const result = await sb.run({ SYNC_FILTERS_FILE: filters });
    await expectConfigError(result, ['line 1: "+ *.{jpg,png" is a bad pattern', 'without its "}"']);
  });
});

describe('SYNC_SCHEDULE', () => {
  it.each([
    ['0 0 30 2 *', 'never fires'],
    ['0 0 0 1 1 * 2030', 'has 7 fields'],
    ['* * * *', 'has 4 fields'],
  ])('%j: the daemon exits 2 at start with a message (it never runs once and exits 0)', async (schedule, says) => {
    const result = await runCli(['daemon'], sb.env({ SYNC_SCHEDULE: schedule, SYNC_RUN_ON_START: 'true' }));
    expect(result.exitCode, dump(result)).toBe(2);
    expect(result.stderr).toContain(`SYNC_SCHEDULE (--schedule) ${says}`);
    expect(await readdir(sb.stateDir)).toEqual([]);
  });
});

describe('a safety stop', () => {
  it('names both ways out: look first with --dry-run, then SYNC_FORCE=true or SYNC_RESYNC=true (a resync deletes nothing)', async () => {
    await synced({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd' });
    for (const name of ['a.txt', 'b.txt', 'c.txt']) await rm(join(sb.path1, name));
    const result = await sb.run();
    expect(result.exitCode, dump(result)).toBe(3);
    expect(result.stderr).toMatch(/--dry-run.*SYNC_FORCE=true to carry the deletions out.*SYNC_RESYNC=true to restore the deleted files from the other side \(a resync deletes nothing\)/);
    // The resync it offers does restore them.
    await ok({ SYNC_RESYNC: 'true' });
    expect(Object.keys(await readTree(sb.path1)).sort()).toEqual(['a.txt', 'b.txt', 'c.txt', 'd.txt']);
  });
});
