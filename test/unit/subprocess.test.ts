/**
 * The process runner under the rclone layer, with small shell children: how each way of ending
 * (exit 0, another code, a signal, no such binary, a cancellation, a timeout, a child that ignores
 * SIGTERM) settles `done`, and that stdout and stderr arrive whole.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnChild, SubprocessError } from '../../src/rclone/subprocess.ts';

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
// The scripts exec their last command, as setpriv and viaShell exec rclone: a shell killed while it
// waits on a child would leave that child holding the pipes open.
const sh = (script: string, options: Partial<Parameters<typeof spawnChild>[2]> = {}) => spawnChild('/bin/sh', ['-c', script], { env, stdout: 'collect', ...options });

async function failureOf(promise: Promise<unknown>): Promise<SubprocessError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SubprocessError);
  return error as SubprocessError;
}

async function linesOf(lines: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const line of lines) all.push(line);
  return all;
}

const scratch = mkdtempSync(join(tmpdir(), 'rs-subprocess-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('spawnChild', () => {
  it('resolves on exit 0 with stdout collected, its final newline taken off', async () => {
    const child = sh('printf "one\\ntwo\\n"');
    expect((await child.done).stdout).toBe('one\ntwo');
    expect(child.stdout).toBeNull();
  });

  it('passes the environment as given, not merged with ours', async () => {
    const child = spawnChild('/bin/sh', ['-c', 'echo "[$ONLY_THIS][$HOME]"'], { env: { ...env, ONLY_THIS: 'x' }, stdout: 'collect' });
    expect((await child.done).stdout).toBe('[x][]');
  });

  it('rejects on another exit code, keeping the code; stderr comes line by line, the last without its newline too', async () => {
    const child = sh('printf "first\\r\\nsecond\\nlast" >&2; exit 3');
    const [error, lines] = await Promise.all([failureOf(child.done), linesOf(child.stderrLines)]);
    expect(error).toMatchObject({ exitCode: 3, signal: undefined, isCanceled: false, timedOut: false });
    expect(error.message).toContain('failed with exit code 3');
    expect(lines).toEqual(['first', 'second', 'last']);
  });

  it('rejects with the signal of a child killed by one', async () => {
    const error = await failureOf(sh('kill -TERM $$').done);
    expect(error).toMatchObject({ exitCode: undefined, signal: 'SIGTERM' });
  });

  it('rejects with ENOENT for a binary that does not exist', async () => {
    const child = spawnChild(join(scratch, 'no-such-binary'), [], { env, stdout: 'collect' });
    const error = await failureOf(child.done);
    expect(error.code).toBe('ENOENT');
    expect(error.cause).toBeInstanceOf(Error);
    expect(await linesOf(child.stderrLines)).toEqual([]);
  });

  it('stops the child when the signal aborts, and says it was cancelled (also when aborted before the start)', async () => {
    const controller = new AbortController();
    const child = sh('exec sleep 30', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await failureOf(child.done)).toMatchObject({ isCanceled: true, signal: 'SIGTERM' });

    const before = new AbortController();
    before.abort();
    expect(await failureOf(sh('exec sleep 30', { signal: before.signal }).done)).toMatchObject({ isCanceled: true });
  });

  it('stops a child that outlives its timeout', async () => {
    const error = await failureOf(sh('exec sleep 30', { timeoutMs: 50 }).done);
    expect(error).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    expect(error.message).toContain('timed out');
  });

  it('kills a child that ignores SIGTERM once forceKillAfterMs has passed', async () => {
    // The shell traps SIGTERM and waits on a sleep in the background; only SIGKILL ends it.
    const child = sh('trap "" TERM; echo ready; while :; do sleep 0.05; done', { stdout: 'stream', forceKillAfterMs: 200 });
    for await (const chunk of child.stdout!) if (String(chunk).includes('ready')) break;
    const started = Date.now();
    child.kill();
    expect(await failureOf(child.done)).toMatchObject({ signal: 'SIGKILL' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('streams stdout to the caller, or writes it into a file descriptor', async () => {
    const streamed = sh('seq 1 20000', { stdout: 'stream' });
    let text = '';
    for await (const chunk of streamed.stdout!) text += String(chunk);
    await streamed.done;
    expect(text.split('\n')).toHaveLength(20001);

    const file = join(scratch, 'out.txt');
    const fd = openSync(file, 'w');
    const written = sh('echo into-a-file', { stdout: { fd } });
    closeSync(fd);
    expect((await written.done).stdout).toBe('');
    expect(written.stdout).toBeNull();
    expect(readFileSync(file, 'utf8')).toBe('into-a-file\n');
  });

  it('a rejection nobody waits for does not surface as unhandled', async () => {
    let unhandled = false;
    const onUnhandled = () => (unhandled = true);
    process.on('unhandledRejection', onUnhandled);
    try {
      sh('exit 1');
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toBe(false);
  });
});
