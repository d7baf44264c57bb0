/**
 * One pair of sides and a state directory per test: a `Sandbox` is a temp folder holding path1/,
 * path2/, state/ and a scratch area, removed afterwards, so test files can run in parallel;
 * `useSandbox` sets that up for a whole test file and runs the CLI on the pair.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { dump, runCli, type CliResult, type Env } from './processes.ts';
import { listFiles, readTree, writeTree } from './trees.ts';

export interface Sandbox {
  readonly root: string;
  readonly path1: string;
  readonly path2: string;
  readonly stateDir: string;
  /** A scratch folder for filters files and the like. */
  readonly scratch: string;
  /** The environment for a run of this pair: LOG_FORMAT=json, a non-existent RCLONE_CONFIG, TMPDIR inside the sandbox, plus `extra`. */
  env(extra?: Env): Env;
  /** `rclonesync run` on this pair. */
  run(extra?: Env, args?: readonly string[]): Promise<CliResult>;
  /** The pair's state folder (there is exactly one per pair). */
  pairDir(): Promise<string>;
  /** Every file in the pair's state folder with its bytes (for "left untouched" checks). */
  stateFiles(): Promise<Record<string, Buffer>>;
  cleanup(): Promise<void>;
}

export async function makeSandbox(prefix = 'rs-it-'): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const path1 = join(root, 'path1');
  const path2 = join(root, 'path2');
  const stateDir = join(root, 'state');
  const scratch = join(root, 'scratch');
  // The CLI's own temporary files (rclone file lists) go here too, so even a run killed with
  // SIGKILL leaves nothing behind once the sandbox is removed.
  const tmp = join(root, 'tmp');
  await Promise.all([mkdir(path1), mkdir(path2), mkdir(stateDir), mkdir(scratch), mkdir(tmp)]);
  const sandbox: Sandbox = {
    root,
    path1,
    path2,
    stateDir,
    scratch,
    env(extra = {}) {
      return {
        SYNC_PATH1: path1,
        SYNC_PATH2: path2,
        SYNC_STATE_DIR: stateDir,
        LOG_FORMAT: 'json',
        // No config file: rclone uses defaults and RCLONE_CONFIG_* remotes only.
        RCLONE_CONFIG: join(root, 'no-rclone.conf'),
        TMPDIR: tmp,
        ...extra,
      };
    },
    run(extra = {}, args = []) {
      return runCli(['run', ...args], sandbox.env(extra));
    },
    async pairDir() {
      const entries = (await readdir(stateDir, { withFileTypes: true })).filter((e) => e.isDirectory());
      if (entries.length !== 1) throw new Error(`expected one pair folder in ${stateDir}, found ${entries.map((e) => e.name).join(', ') || 'none'}`);
      return join(stateDir, entries[0]!.name);
    },
    async stateFiles() {
      const files: Record<string, Buffer> = {};
      for (const path of await listFiles(stateDir)) files[path] = await readFile(join(stateDir, ...path.split('/')));
      return files;
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  return sandbox;
}

export interface SandboxPerTestOptions {
  /** Added to the environment of every `ok` run (before its own `extra`). */
  readonly runEnv?: () => Env;
  /** More to show when `ok` fails (a server's log, say). */
  readonly failureDetail?: () => string;
}

export interface SandboxPerTest {
  /** The running test's sandbox: the same object in every test, it stands for a fresh one each time. */
  readonly sandbox: Sandbox;
  /** `rclonesync run [...args]` with `extra` in its environment, expecting exit 0. */
  ok(extra?: Env, args?: readonly string[]): Promise<CliResult>;
  /** Both sides hold `tree` and the pair has a snapshot of it (written on path1, then a run). */
  synced(tree: Record<string, string>): Promise<void>;
}

/** Registers beforeEach/afterEach hooks that give every test of the file its own `Sandbox` and remove it afterwards. */
export function useSandbox(prefix: string, options: SandboxPerTestOptions = {}): SandboxPerTest {
  let current: Sandbox | undefined;
  beforeEach(async () => {
    current = await makeSandbox(prefix);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  const active = (): Sandbox => {
    if (!current) throw new Error(`useSandbox('${prefix}'): the sandbox exists only while a test runs`);
    return current;
  };
  // One object for the whole file (so tests can name it at the top level) that forwards to the running test's sandbox.
  const sandbox = new Proxy({} as Sandbox, { get: (_, key) => Reflect.get(active(), key) });

  async function ok(extra: Env = {}, args: readonly string[] = []): Promise<CliResult> {
    const result = await sandbox.run({ ...options.runEnv?.(), ...extra }, args);
    const detail = options.failureDetail ? `${dump(result)}\n${options.failureDetail()}` : dump(result);
    expect(result.exitCode, detail).toBe(0);
    return result;
  }

  async function synced(tree: Record<string, string>): Promise<void> {
    await writeTree(sandbox.path1, tree);
    await ok();
    expect(await readTree(sandbox.path2)).toEqual(tree);
  }

  return { sandbox, ok, synced };
}
