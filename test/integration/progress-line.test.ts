/**
 * `rclonesync run`'s progress line under a real pseudo-terminal (util-linux `script`, which gives
 * the CLI a pty for stdout and stderr): shown during a real, slowed-down run and erased before the
 * summary; absent with --no-progress, with JSON logs, and when the output is a pipe.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { CLI, cleanEnv, dump, type Env } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { writeTree } from '../helpers/trees.ts';

const { sandbox: sb } = useSandbox('rs-progress-');
const ERASE_LINE = '\x1b[2K';
// 3 MB at 1 MB/s: rclone reports its stats every second, so the line shows transfers.
const SLOW = { SYNC_RCLONE_ARGS: '--bwlimit 1M' };

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/** `rclonesync run ...args` on a 200-column pseudo-terminal (wide enough for the sandbox paths as the name): everything it showed, escapes included. */
async function runOnTerminal(args: readonly string[], env: Env): Promise<{ exitCode: number; screen: string }> {
  const command = `stty cols 200; exec ${[process.execPath, CLI, 'run', ...args].map(quote).join(' ')}`;
  const result = await execa('script', ['-qfec', command, '/dev/null'], {
    env: cleanEnv({ ...sb.env(env), TERM: 'xterm' }),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 60_000,
  });
  return { exitCode: result.exitCode ?? -1, screen: String(result.stdout) };
}

async function bigFile(): Promise<void> {
  await writeTree(sb.path1, { 'notes.txt': 'a few words' });
  await writeTree(sb.path1, { 'video.bin': 'x'.repeat(3_000_000) });
}

describe('the progress line of rclonesync run', () => {
  it('shows phase, listing, transfers, rate and ETA on a terminal, then erases itself before the summary', async () => {
    await bigFile();
    const { exitCode, screen } = await runOnTerminal([], { ...SLOW, LOG_FORMAT: undefined });
    expect(exitCode, screen).toBe(0);
    const pair = `${sb.path1} <-> ${sb.path2}`;
    // Drawn lines: each erased with \r + erase-line, starting with the pair; log lines written
    // between an erase and the next drawing come first (a short phase may be drawn only after one).
    const drawn = screen.split(`\r${ERASE_LINE}`).flatMap((part) => part.split('\r\n')).filter((line) => line.startsWith(`${pair}  `));
    expect(drawn.some((line) => line.includes('  listing  ')), screen).toBe(true);
    expect(drawn.some((line) => /  copying  listed 2 \| 0  files \d\/2  [\d.]+ (kB|MB)\/3\.0 MB  \d+%  [\d.]+ (B|kB|MB)\/s/.test(line)), drawn.join('\n')).toBe(true);
    expect(drawn.some((line) => / ETA \d+:\d\d$/.test(line)), drawn.join('\n')).toBe(true);
    // The logs are readable text (pretty), above the line.
    expect(screen).toContain('copy path1 -> path2');
    // Last of all: the line erased, then only the summary.
    const afterLastErase = screen.slice(screen.lastIndexOf(ERASE_LINE) + ERASE_LINE.length);
    expect(afterLastErase.trim()).toBe(`${pair}: success in ${/[\d.]+s/.exec(afterLastErase)?.[0]}: 2 copied to path2 (3.0 MB), 0 to path1 (0 B), 0 deleted, 0 conflicts`);
  });

  it('shows nothing with --no-progress or with JSON logs, even on a terminal', async () => {
    await bigFile();
    const quiet = await runOnTerminal(['--no-progress'], { ...SLOW, LOG_FORMAT: undefined });
    expect(quiet.exitCode, quiet.screen).toBe(0);
    expect(quiet.screen).toContain('copy path1 -> path2');
    expect(quiet.screen).not.toContain(ERASE_LINE);
    expect(quiet.screen).not.toContain(' listed ');
    const json = await runOnTerminal([], { LOG_FORMAT: 'json', SYNC_RESYNC: 'true' });
    expect(json.exitCode, json.screen).toBe(0);
    expect(json.screen).not.toContain(ERASE_LINE);
    expect(json.screen).not.toContain(' listed ');
  });

  it('shows nothing when the output is not a terminal', async () => {
    await bigFile();
    const result = await sb.run({ ...SLOW, LOG_FORMAT: undefined });
    expect(result.exitCode, dump(result)).toBe(0);
    for (const text of [result.stdout, result.stderr]) {
      expect(text).not.toContain(ERASE_LINE);
      expect(text).not.toContain('\r');
      expect(text).not.toContain(' ETA ');
    }
    // The log is JSON, as without a terminal always.
    expect(result.logs.some((l) => l.msg === 'run success')).toBe(true);
  });
});
