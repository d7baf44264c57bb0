/**
 * The parsers behind the start-of-run checks: how rclone reads a path, its filter-file syntax, the
 * memory-only config values, the permission messages; and the state folder errors that reach a run
 * (the real cause named, Node's error code not printed twice).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMemoryOnlyConfig } from '../../src/appliance/rclone-config.ts';
import { ConfigError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { describeAccessProblem, type Runner } from '../../src/permissions.ts';
import { filterRuleProblems } from '../../src/rclone/filters.ts';
import { parseRclonePath } from '../../src/rclone/paths.ts';
import { ensurePairDir, pairId, pairPaths } from '../../src/state/pair.ts';
import { runSync } from '../../src/sync/run.ts';
import { loadConfig } from '../../src/config.ts';

describe('parseRclonePath (rclone fspath rules)', () => {
  it.each([
    ['/data', { kind: 'local', path: '/data' }],
    ['mynas', { kind: 'local', path: 'mynas' }],
    ['./a:b', { kind: 'local', path: './a:b' }],
    ['dir/x:y', { kind: 'local', path: 'dir/x:y' }],
    ['C:', { kind: 'local', path: 'C:' }],
    ['gdrive:', { kind: 'remote', name: 'gdrive', path: '' }],
    ['gdrive:Backup/Photos', { kind: 'remote', name: 'gdrive', path: 'Backup/Photos' }],
    ['office nas:share', { kind: 'remote', name: 'office nas', path: 'share' }],
    ['s3,region=eu:bucket', { kind: 'remote', name: 's3', path: 'bucket' }],
    [':sftp,host=h,pass=x:dir', { kind: 'on-the-fly', backend: 'sftp', path: 'dir' }],
    [':local:/tmp', { kind: 'on-the-fly', backend: 'local', path: '/tmp' }],
  ])('%s', (text, expected) => {
    expect(parseRclonePath(text)).toEqual(expected);
  });
});

describe('filterRuleProblems (rclone --filter-from syntax)', () => {
  it('accepts rules, comments, blank lines and "!"', () => {
    expect(filterRuleProblems('# c\n; c\n\n  - *.tmp  \n+ /photos/**\n!\n- {a,b}.txt\n- [ab]x\n- {{\\d+}}\n- \\{x\n')).toEqual([]);
  });

  it('names the 1-based line and the rule of each bad one', () => {
    expect(filterRuleProblems('- ok\n*.bak\n-*.tmp\n+ a{b\n- x]\n- [a\n- ***\n- {a{b}}\n')).toEqual([
      { line: 2, rule: '*.bak', problem: expect.stringMatching(/^not a filter rule: /) },
      { line: 3, rule: '-*.tmp', problem: expect.stringMatching(/a space must follow the "-"/) },
      { line: 4, rule: '+ a{b', problem: 'a "{" without its "}"' },
      { line: 5, rule: '- x]', problem: 'a "]" without its "["' },
      { line: 6, rule: '- [a', problem: 'a "[" without its "]"' },
      { line: 7, rule: '- ***', problem: expect.stringMatching(/too many stars/) },
      { line: 8, rule: '- {a{b}}', problem: expect.stringMatching(/cannot nest/) },
    ]);
  });

  it('takes CRLF files as rclone does', () => {
    expect(filterRuleProblems('- a\r\n+ b\r\n')).toEqual([]);
  });
});

describe('isMemoryOnlyConfig (rclone --config)', () => {
  it.each([
    ['', true],
    ['  ', true],
    ['/dev/null', true],
    ['/x/notfound', true],
    ['notfound', true],
    ['/state/rclone.conf', false],
    ['/x/notfound.conf', false],
  ])('%j -> %s', (value, expected) => {
    expect(isMemoryOnlyConfig(value)).toBe(expected);
  });
});

describe('describeAccessProblem', () => {
  const runner: Runner = { uid: 1000, gid: 1000, inContainer: false };
  const denied = { kind: 'denied', at: '/state', uid: 0, gid: 0, mode: 0o755, need: 'read-write' } as const;

  it('names the subject, the running uid, the owner and mode, and both fixes', () => {
    expect(describeAccessProblem('SYNC_STATE_DIR (--state-dir) "/state"', denied, runner, { recursive: true })).toBe(
      'SYNC_STATE_DIR (--state-dir) "/state" is not writable by uid 1000 (gid 1000), which runs rclonesync: "/state" belongs to uid 0 (gid 0), mode 0755. ' +
        'Fix: chown -R 1000:1000 "/state", or run rclonesync as its owner: PUID=0 and PGID=0 in .env with Docker Compose (docker run --user 0:0; runAsUser/runAsGroup in Kubernetes)',
    );
  });

  it('in a container, says the chown is made on the host', () => {
    expect(describeAccessProblem('x', denied, { ...runner, inContainer: true })).toContain('chown 1000:1000 "/state" (on the host: to what is mounted there)');
  });

  it('when the runner owns it, the fix is a chmod', () => {
    expect(describeAccessProblem('x', { ...denied, uid: 1000, mode: 0o555 }, runner, { recursive: true })).toContain('Fix: chmod -R u+rwX "/state"');
  });

  it('a read-only file system says so', () => {
    expect(describeAccessProblem('x', { kind: 'read-only-fs' }, runner)).toBe('x is on a read-only file system; mount it read-write (no ":ro" on its volume)');
  });
});

describe('state folder errors inside a run', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rs-preflight-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("a Node error's code is not printed twice (not \"EISDIR: EISDIR: …\")", async () => {
    const [path1, path2, stateDir] = ['p1', 'p2', 'state'].map((n) => join(root, n)) as [string, string, string];
    for (const dir of [path1, path2]) await mkdir(dir);
    // A snapshot that is a folder: reading it fails with a plain Node error.
    await mkdir(pairPaths(stateDir, pairId(path1, path2)).snapshot, { recursive: true });
    const config = loadConfig({ SYNC_PATH1: path1, SYNC_PATH2: path2, SYNC_STATE_DIR: stateDir, RCLONE_CONFIG: '/dev/null' });
    const report = await runSync(config.engine, { logger: createLogger({ level: 'error', format: 'json' }) });
    expect(report.exitCode).toBe(1);
    expect(report.message).toMatch(/^EISDIR: illegal operation/);
  });

  // Node's recursive mkdir reports a read-only parent as ENOENT; needs root to make a read-only bind mount.
  const mountable = (() => {
    if (process.getuid?.() !== 0) return false;
    try {
      execFileSync('mount', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.runIf(mountable)('a state folder on a read-only file system names the folder and the cause, not ENOENT', async (context) => {
    const source = join(root, 'ro-source');
    const mounted = join(root, 'ro');
    await mkdir(source);
    await mkdir(mounted);
    try {
      execFileSync('mount', ['--bind', '-o', 'ro', source, mounted], { stdio: 'ignore' });
      execFileSync('mount', ['-o', 'remount,bind,ro', mounted], { stdio: 'ignore' });
    } catch {
      context.skip();
    }
    try {
      const paths = pairPaths(join(mounted, 'state'), 'a__b-123');
      const error = await ensurePairDir(paths).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toBe(`the state folder "${paths.dir}" cannot be created: "${mounted}" is on a read-only file system; mount it read-write (no ":ro" on its volume)`);
    } finally {
      execFileSync('umount', [mounted], { stdio: 'ignore' });
    }
  });
});
