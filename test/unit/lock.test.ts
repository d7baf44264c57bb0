/**
 * The run lock (state/lock.ts) against a real folder: held, refused, taken over when stale or when
 * its process is gone, lost when someone else takes it over or removes it.
 */
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, lockHolder } from '../../src/state/lock.ts';
import { pairPaths, type PairPaths } from '../../src/state/pair.ts';
import { LockHeld } from '../../src/errors.ts';

const exists = (path: string) => stat(path).then(() => true, () => false);
const never = () => {
  throw new Error('the lock was reported lost');
};
/** Fast refreshes, so that losing the lock shows within a test. */
const QUICK = { staleMs: 2_000, updateMs: 50 };

let stateDir: string;
let paths: PairPaths;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'rs-lock-'));
  paths = pairPaths(stateDir, 'pair');
  await mkdir(paths.dir);
});
afterEach(() => rm(stateDir, { recursive: true, force: true }));

describe('acquireLock', () => {
  it('holds the lock until released; a second run is refused with who holds it', async () => {
    const lock = await acquireLock(paths, never);
    expect(await exists(paths.lockDir)).toBe(true);
    expect(JSON.parse(await readFile(paths.lockOwner, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    expect(await lockHolder(paths)).toMatchObject({ pid: process.pid });
    const refused = await acquireLock(paths, never).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LockHeld);
    expect((refused as Error).message).toMatch(new RegExp(`another run holds the lock for this pair \\(pid ${process.pid} on .*\\); lock: .*run\\.lock$`));
    await lock.release();
    expect(await exists(paths.lockDir)).toBe(false);
    expect(await exists(paths.lockOwner)).toBe(false);
    expect(await lockHolder(paths)).toBeUndefined();
    await (await acquireLock(paths, never)).release();
  });

  it('refuses a fresh lock of another host, and takes it over once stale (not refreshed for 20 s)', async () => {
    await mkdir(paths.lockDir);
    await writeFile(paths.lockOwner, JSON.stringify({ pid: 1, host: 'elsewhere', since: '2026-01-01T00:00:00.000Z' }));
    await expect(acquireLock(paths, never)).rejects.toThrow(/\(pid 1 on elsewhere, since 2026-01-01T00:00:00.000Z\)/);
    const old = new Date(Date.now() - 21_000);
    await utimes(paths.lockDir, old, old);
    expect(await lockHolder(paths)).toBeUndefined();
    const lock = await acquireLock(paths, never);
    expect(JSON.parse(await readFile(paths.lockOwner, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('takes over at once a fresh lock whose process on this host is gone', async () => {
    await mkdir(paths.lockDir);
    // A pid far above any pid_max: no such process.
    await writeFile(paths.lockOwner, JSON.stringify({ pid: 2 ** 30, host: hostname(), since: new Date().toISOString() }));
    const lock = await acquireLock(paths, never);
    expect(JSON.parse(await readFile(paths.lockOwner, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('keeps the lock fresh while held', async () => {
    const lock = await acquireLock(paths, never, QUICK);
    const taken = (await stat(paths.lockDir)).mtimeMs;
    await expect.poll(async () => (await stat(paths.lockDir)).mtimeMs, { timeout: 2_000 }).toBeGreaterThan(taken);
    await lock.release();
  });

  it('is lost when another run took it over (its mtime is not ours) or it was removed; release then leaves the new holder alone', async () => {
    let lostWith: Error | undefined;
    const lock = await acquireLock(paths, (error) => (lostWith = error), QUICK);
    const later = new Date(Date.now() + 60_000);
    await utimes(paths.lockDir, later, later);
    await expect.poll(() => lostWith?.message, { timeout: 2_000 }).toMatch(/another run took the lock over/);
    await lock.release();
    // The lock directory is the other run's now: still there.
    expect(await exists(paths.lockDir)).toBe(true);

    await rm(paths.lockDir, { recursive: true });
    lostWith = undefined;
    const second = await acquireLock(paths, (error) => (lostWith = error), QUICK);
    await rm(paths.lockDir, { recursive: true });
    await expect.poll(() => lostWith?.message, { timeout: 2_000 }).toMatch(/was removed/);
    await second.release();
  });
});
