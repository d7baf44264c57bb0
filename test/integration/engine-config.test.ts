/**
 * Settings as a user meets them through the CLI: a bad value ends it with exit 2 and a message on
 * stderr that names the variable (or flag) before anything touches a side or the state directory
 * (which values are bad is unit/config.test.ts's business); unknown flags and commands; flags
 * override the environment; --help lists every setting with its default.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { defaultText, SETTINGS } from '../../src/config.ts';
import { failureOf } from '../helpers/logs.ts';
import { type CliResult, dump, runCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { EVERY_SETTING } from '../helpers/settings.ts';
import { listFiles, readTree, writeTree } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-config-');
beforeEach(async () => {
  await writeTree(sb.path1, { 'a.txt': 'a' });
});

/** Exit 2, stderr names `culprit`, and nothing happened: no state, no copies. */
async function expectUsageError(result: CliResult, culprit: string | RegExp) {
  expect(result.exitCode, dump(result)).toBe(2);
  if (typeof culprit === 'string') expect(result.stderr, dump(result)).toContain(culprit);
  else expect(result.stderr, dump(result)).toMatch(culprit);
  expect(await listFiles(sb.path2)).toEqual([]);
  expect(await readdir(sb.stateDir)).toEqual([]);
}

// Each setting's bad values are refused in process (unit/config.test.ts); these check the wiring.
describe('a bad value ends the run with exit 2 naming the variable, before anything is touched', () => {
  it.each([
    ['SYNC_MAX_DELETE', '150'],
    ['SYNC_RCLONE_ARGS', '--exclude "a b'],
  ])('%s=%j', async (name, value) => {
    const result = await sb.run({ [name]: value });
    await expectUsageError(result, name);
    expect(result.stderr).toContain(value);
  });

  it('the same bad value given as a flag names the flag', async () => {
    const result = await sb.run({}, ['--max-delete', 'abc']);
    await expectUsageError(result, '--max-delete');
  });

  it('SYNC_PATH2 missing', async () => {
    await expectUsageError(await sb.run({ SYNC_PATH2: undefined }), 'SYNC_PATH2');
  });

  it('an unknown flag', async () => {
    const result = await sb.run({}, ['--max-deletes', '5']);
    await expectUsageError(result, '--max-deletes');
  });

  it('an unknown command', async () => {
    const result = await runCli(['sync'], sb.env());
    await expectUsageError(result, 'unknown command "sync"');
  });

  it('a stray positional argument after the command', async () => {
    await expectUsageError(await runCli(['run', '/some/path'], sb.env()), '/some/path');
  });

  it('no command at all prints the help and exits 2', async () => {
    const result = await runCli([], sb.env());
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toContain('Usage: rclonesync');
  });
});

describe('SYNC_FILTERS_FILE pointing at a missing file', () => {
  it('exits 2 and the run log names the variable and the file; nothing is synced', async () => {
    const missing = join(sb.scratch, 'no-such-filters.txt');
    const result = await sb.run({ SYNC_FILTERS_FILE: missing });
    expect(result.exitCode, dump(result)).toBe(2);
    const failure = failureOf(result.logs);
    expect(failure, dump(result)).toMatchObject({ outcome: 'usage' });
    expect(failure!.msg).toContain('SYNC_FILTERS_FILE');
    expect(failure!.msg).toContain(missing);
    expect(failure!.msg).toContain('ENOENT');
    expect(await listFiles(sb.path2)).toEqual([]);
  });

  // A missing filters file is only noticed inside the run; its reason still reaches stderr.
  it('exits 2 with stderr naming SYNC_FILTERS_FILE', async () => {
    const result = await sb.run({ SYNC_FILTERS_FILE: join(sb.scratch, 'no-such-filters.txt') });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('SYNC_FILTERS_FILE');
  });
});

describe('flags and environment', () => {
  it('a flag overrides its environment variable (--path2 wins over SYNC_PATH2)', async () => {
    const elsewhere = join(sb.root, 'elsewhere');
    await ok({ SYNC_PATH2: elsewhere }, ['--path2', sb.path2]);
    expect(await readTree(sb.path2)).toEqual({ 'a.txt': 'a' });
    expect(await listFiles(elsewhere)).toEqual([]);
  });

  it('a boolean flag overrides its variable both ways (--dry-run, --no-dry-run)', async () => {
    await ok({ SYNC_DRY_RUN: 'false' }, ['--dry-run']);
    expect(await listFiles(sb.path2)).toEqual([]);
    await ok({ SYNC_DRY_RUN: 'true' }, ['--no-dry-run']);
    expect(await readTree(sb.path2)).toEqual({ 'a.txt': 'a' });
  });

  it('an empty variable counts as not set (compose files write VAR= for "unset")', async () => {
    await ok({ SYNC_MAX_DELETE: '', SYNC_COMPARE: '', LOG_LEVEL: '' });
  });

  it('a filters file given by flag is used', async () => {
    const filters = join(sb.scratch, 'f.txt');
    await writeFile(filters, '- *.skip\n');
    await writeTree(sb.path1, { 'x.skip': 'no' });
    await ok({}, ['--filters-file', filters]);
    expect(await readTree(sb.path2)).toEqual({ 'a.txt': 'a' });
  });
});

describe('--help', () => {
  it('lists every setting with its flag and default, and the exit codes', async () => {
    const result = await runCli(['--help'], {});
    expect(result.exitCode, dump(result)).toBe(0);
    const help = result.stdout;
    const lineOf = (env: string) => help.split('\n').find((l) => l.trimStart().startsWith(`${env} `));
    for (const env of EVERY_SETTING) expect(lineOf(env), `${env} in --help`).toBeDefined();
    for (const setting of SETTINGS) {
      const line = lineOf(setting.env);
      expect(line, `${setting.env} in --help`).toBeDefined();
      expect(line).toContain(`--${setting.flag}`);
      expect(line).toContain(`default: ${defaultText(setting)}`);
    }
    expect(help).toMatch(/default: 50\b/);
    expect(help).toMatch(/SYNC_CONFLICT_RESOLVE.*default: newer/);
    for (const code of ['0', '1', '2', '3', '4']) expect(help).toMatch(new RegExp(`\\b${code} [a-z]`));
    // `help` as a command says the same.
    const again = await runCli(['help'], {});
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe(help);
  });
});
