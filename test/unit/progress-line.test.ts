import { describe, expect, it } from 'vitest';
import { formatProgress, formatRunSummary, ProgressBoard, progressWanted } from '../../src/progress-line.ts';
import type { RunProgress } from '../../src/model.ts';
import type { RunReport } from '../../src/sync/run.ts';
import { emptyCounts } from '../../src/model.ts';

const ERASE = '\r\x1b[2K';

function copying(bytes: number, files: number): RunProgress {
  return {
    phase: 'propagating',
    listed: { path1: 12_345, path2: 12_001 },
    counts: { ...emptyCounts(), copiesToPath2: 8 },
    transfers: { toPath2: { bytes, totalBytes: 10_000_000, transfers: files, totalTransfers: 8, errors: 0, checks: 0, deletes: 0, renames: 0 } },
  };
}

/** A terminal that records what was written, and what its screen's last line shows. */
function fakeTerminal(columns = 200) {
  const writes: string[] = [];
  return {
    columns,
    writes,
    write: (text: string) => writes.push(text),
    /** The bottom line after applying \r, erase-line and cursor-up, good enough for these tests. */
    screen(): string[] {
      const lines: string[] = [''];
      const text = writes.join('');
      for (let i = 0; i < text.length; ) {
        if (text.startsWith('\x1b[2K', i)) {
          lines[lines.length - 1] = '';
          i += 4;
        } else if (text.startsWith('\x1b[1A', i)) {
          lines.pop();
          i += 4;
        } else if (text[i] === '\r') {
          i++;
        } else if (text[i] === '\n') {
          lines.push('');
          i++;
        } else {
          lines.push(lines.pop()! + text[i]!);
          i++;
        }
      }
      return lines;
    },
  };
}

describe('formatProgress', () => {
  it('shows the phase, files listed on each side, files and bytes of the total, rate and ETA', () => {
    expect(formatProgress('photos', copying(4_000_000, 3), 2_000_000)).toBe('photos  copying  listed 12,345 | 12,001  files 3/8  4.0 MB/10 MB  40%  2.0 MB/s  ETA 0:03');
    expect(formatProgress('photos', { phase: 'listing', listed: { path1: 1500, path2: 0 } }, undefined)).toBe('photos  listing  listed 1,500 | 0');
    expect(formatProgress('photos', { phase: 'checking', listed: { path1: 2, path2: 3 }, counts: { ...emptyCounts(), copiesToPath1: 1, deletesOnPath2: 2 } }, undefined)).toBe(
      'photos  comparing  listed 2 | 3  plan 0 → path2, 1 → path1, 2 deletions',
    );
  });

  it('summarises a finished run', () => {
    const report = { outcome: 'success', dryRun: false, durationMs: 4_210, counts: { ...emptyCounts(), copiesToPath2: 3, bytesToPath2: 6_400_000, conflicts: 1 } } as RunReport;
    expect(formatRunSummary('photos', report)).toBe('photos: success in 4.2s: 3 copied to path2 (6.4 MB), 0 to path1 (0 B), 0 deleted, 1 conflicts');
  });
});

describe('ProgressBoard', () => {
  it('draws one line per pair, measures the rate from the updates, and erases everything on clear', () => {
    let now = 0;
    const terminal = fakeTerminal();
    const board = new ProgressBoard(terminal, () => now);
    board.update('photos', copying(0, 0));
    now = 1_000;
    board.update('docs', { phase: 'listing', listed: { path1: 10, path2: 4 } });
    now = 2_000;
    board.update('photos', copying(3_000_000, 2));
    expect(terminal.screen()).toEqual(['photos  copying  listed 12,345 | 12,001  files 2/8  3.0 MB/10 MB  30%  1.5 MB/s  ETA 0:05', 'docs  listing  listed 10 | 4']);
    board.finish('docs');
    expect(terminal.screen()).toEqual([expect.stringMatching(/^photos {2}copying/)]);
    board.clear();
    expect(terminal.screen()).toEqual(['']);
    expect(terminal.writes.at(-1)).toBe(ERASE);
  });

  it('lets log lines pass above the progress line', () => {
    let now = 0;
    const terminal = fakeTerminal();
    const board = new ProgressBoard(terminal, () => now);
    board.update('photos', copying(1_000_000, 1));
    const log = board.logStream({ write: (chunk) => terminal.write(String(chunk)) });
    log.write('[12:00:00] INFO: copy path1 -> path2\n');
    now = 1_000;
    log.write('[12:00:01] INFO: applying changes\n');
    expect(terminal.screen()).toEqual(['[12:00:00] INFO: copy path1 -> path2', '[12:00:01] INFO: applying changes', expect.stringMatching(/^photos {2}copying/)]);
  });

  it('never draws more than a few times a second, and keeps each line within the terminal', () => {
    let now = 0;
    const terminal = fakeTerminal(40);
    const board = new ProgressBoard(terminal, () => now);
    for (let i = 0; i < 100; i++) {
      now += 1;
      board.update('photos', copying(i * 1000, 1));
    }
    expect(terminal.writes.length).toBeLessThanOrEqual(2);
    expect(board.lines()[0]!.length).toBeLessThanOrEqual(39);
    board.clear();
  });
});

describe('progressWanted', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  it('is on for a terminal with pretty logs only, unless a flag says otherwise', () => {
    expect(progressWanted(undefined, 'pretty', { stdout: tty, stderr: tty })).toBe(true);
    expect(progressWanted(undefined, 'json', { stdout: tty, stderr: tty })).toBe(false);
    expect(progressWanted(undefined, 'pretty', { stdout: pipe, stderr: tty })).toBe(false);
    expect(progressWanted(undefined, 'pretty', { stdout: tty, stderr: pipe })).toBe(false);
    expect(progressWanted(false, 'pretty', { stdout: tty, stderr: tty })).toBe(false);
    expect(progressWanted(true, 'json', { stdout: pipe, stderr: pipe })).toBe(true);
  });
});

describe('formatProgress within a width', () => {
  it('shortens a long pair name in the middle before cutting any figure', () => {
    const line = formatProgress('/srv/very/long/path/to/photos <-> gdrive:Backups/Photos/2026', copying(4_000_000, 3), 2_000_000, 100);
    expect(line.length).toBeLessThanOrEqual(100);
    expect(line).toMatch(/^\/srv\/ve.*….*2026 {2}copying {2}listed 12,345 \| 12,001 {2}files 3\/8 {2}4\.0 MB\/10 MB {2}40% {2}2\.0 MB\/s {2}ETA 0:03$/);
    expect(formatProgress('p', copying(4_000_000, 3), 2_000_000, 30)).toHaveLength(30);
  });
});
