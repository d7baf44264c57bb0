/**
 * The live progress of `rclonesync run` on a terminal: one line per pair at the bottom of the
 * screen (phase, files listed on each side, files and bytes transferred of the total, rate, ETA),
 * redrawn at most a few times a second from the engine's onProgress, and erased when the run is
 * done so that only the summary stays. Log lines keep scrolling above it: the logger writes through
 * `logStream()`, which erases the lines, writes the log line and draws them again.
 *
 * Shown only on a terminal with readable logs (progressWanted): never in JSON logs, a pipe or a
 * file, where the escape sequences would be noise. `--progress`/`--no-progress` override.
 */
import { Writable } from 'node:stream';
import type { LogFormat } from './config.ts';
import type { RunPhase, RunProgress } from './model.ts';
import type { RunReport } from './sync/run.ts';

const PHASES: Record<RunPhase, string> = {
  locking: 'waiting for the lock',
  listing: 'listing',
  checking: 'comparing',
  propagating: 'copying',
  committing: 'committing',
  done: 'done',
};
const REDRAW_MS = 200;
/** The rate is the bytes moved over this last stretch of time. */
const RATE_WINDOW_MS = 5_000;
const ERASE_LINE = '\r\x1b[2K';
const LINE_UP = '\x1b[1A';

/** Whether to show it: the flag decides; without one, a terminal on both outputs and readable logs. */
export function progressWanted(flag: boolean | undefined, logFormat: LogFormat, streams: { stdout: { isTTY?: boolean }; stderr: { isTTY?: boolean } }): boolean {
  if (flag !== undefined) return flag;
  return logFormat === 'pretty' && streams.stdout.isTTY === true && streams.stderr.isTTY === true;
}

interface Terminal {
  write(text: string): unknown;
  readonly columns?: number;
}

interface PairLine {
  progress: RunProgress;
  /** (time, bytes transferred) samples of the last RATE_WINDOW_MS. */
  samples: { at: number; bytes: number }[];
}

export class ProgressBoard {
  private readonly terminal: Terminal;
  private readonly now: () => number;
  private readonly pairs = new Map<string, PairLine>();
  private drawnLines = 0;
  private lastDraw = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(terminal: Terminal, now: () => number = Date.now) {
    this.terminal = terminal;
    this.now = now;
  }

  update(pair: string, progress: RunProgress): void {
    const line = this.pairs.get(pair) ?? { progress, samples: [] };
    line.progress = progress;
    const at = this.now();
    line.samples.push({ at, bytes: transferred(progress).bytes });
    while (line.samples.length > 2 && at - line.samples[0]!.at > RATE_WINDOW_MS) line.samples.shift();
    this.pairs.set(pair, line);
    this.scheduleDraw();
  }

  /** The pair's run ended: its line goes. */
  finish(pair: string): void {
    this.pairs.delete(pair);
    this.redraw();
  }

  /** Erases every line; nothing is drawn again until the next update. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pairs.clear();
    this.erase();
  }

  /** Output that passes under the progress lines (the log): erase, write, draw again. */
  around(write: () => void): void {
    this.erase();
    write();
    this.draw();
  }

  /** A stream for the logger: each log line is written to `out` beneath nothing, above the progress. */
  logStream(out: { write(chunk: string | Uint8Array): unknown }): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.around(() => out.write(chunk));
        callback();
      },
    });
  }

  /** The lines as they would be drawn now (also for tests). */
  lines(): string[] {
    const width = Math.max(20, (this.terminal.columns || 80) - 1);
    return [...this.pairs].map(([pair, line]) => formatProgress(pair, line.progress, rateOf(line.samples), width));
  }

  private scheduleDraw(): void {
    const wait = this.lastDraw + REDRAW_MS - this.now();
    if (wait <= 0) {
      this.redraw();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.redraw();
    }, wait);
    this.timer.unref?.();
  }

  private redraw(): void {
    this.erase();
    this.draw();
  }

  private draw(): void {
    const lines = this.lines();
    if (lines.length === 0) return;
    this.terminal.write(lines.join('\n'));
    this.drawnLines = lines.length;
    this.lastDraw = this.now();
  }

  private erase(): void {
    if (this.drawnLines === 0) return;
    this.terminal.write(ERASE_LINE + `${LINE_UP}${ERASE_LINE}`.repeat(this.drawnLines - 1));
    this.drawnLines = 0;
  }
}

function transferred(progress: RunProgress): { files: number; totalFiles: number; bytes: number; totalBytes: number } {
  const sum = { files: 0, totalFiles: 0, bytes: 0, totalBytes: 0 };
  for (const t of Object.values(progress.transfers ?? {})) {
    if (!t) continue;
    sum.files += t.transfers;
    sum.totalFiles += t.totalTransfers;
    sum.bytes += t.bytes;
    sum.totalBytes += t.totalBytes;
  }
  return sum;
}

/** Bytes a second over the samples kept, or undefined before there are two. */
function rateOf(samples: readonly { at: number; bytes: number }[]): number | undefined {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || last.at - first.at < 500) return undefined;
  return Math.max(0, (last.bytes - first.bytes) / ((last.at - first.at) / 1000));
}

/**
 * `photos  copying  listed 1,234 | 1,200  files 3/8  6.4 MB/10 MB  64%  1.2 MB/s  ETA 0:03`, within
 * `width` characters (a wrapped line could not be erased): a long pair name gives way first.
 */
export function formatProgress(pair: string, progress: RunProgress, bytesPerSecond: number | undefined, width = Infinity): string {
  const figures = progressFigures(progress, bytesPerSecond);
  const room = width - figures.length - 2;
  const name = pair.length <= room ? pair : room >= 12 ? `${pair.slice(0, Math.ceil(room / 2) - 1)}…${pair.slice(pair.length - Math.floor(room / 2))}` : pair.slice(0, 10);
  const line = `${name}  ${figures}`;
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}

function progressFigures(progress: RunProgress, bytesPerSecond: number | undefined): string {
  const parts = [PHASES[progress.phase] ?? progress.phase];
  if (progress.phase !== 'locking') parts.push(`listed ${count(progress.listed.path1)} | ${count(progress.listed.path2)}`);
  const t = transferred(progress);
  if (t.totalFiles > 0 || t.totalBytes > 0) {
    parts.push(`files ${count(t.files)}/${count(t.totalFiles)}`, `${size(t.bytes)}/${size(t.totalBytes)}`);
    if (t.totalBytes > 0) parts.push(`${Math.floor((100 * t.bytes) / t.totalBytes)}%`);
    if (bytesPerSecond !== undefined) {
      parts.push(`${size(bytesPerSecond)}/s`);
      const left = t.totalBytes - t.bytes;
      if (bytesPerSecond > 0 && left > 0) parts.push(`ETA ${clock(left / bytesPerSecond)}`);
    }
  } else if (progress.counts) {
    const c = progress.counts;
    parts.push(`plan ${count(c.copiesToPath2)} → path2, ${count(c.copiesToPath1)} → path1, ${count(c.deletesOnPath1 + c.deletesOnPath2)} deletions`);
  }
  return parts.join('  ');
}

/** The line that stays once the progress is erased: `photos: success in 4.2s: 3 copied to path2 (6.4 MB), …`. */
export function formatRunSummary(pair: string, report: RunReport): string {
  const c = report.counts;
  const seconds = `${(report.durationMs / 1000).toFixed(1)}s`;
  const work = c
    ? `: ${count(c.copiesToPath2)} copied to path2 (${size(c.bytesToPath2)}), ${count(c.copiesToPath1)} to path1 (${size(c.bytesToPath1)}), ${count(c.deletesOnPath1 + c.deletesOnPath2)} deleted, ${count(c.conflicts)} conflicts`
    : '';
  return `${pair}: ${report.outcome}${report.dryRun ? ' (dry run)' : ''} in ${seconds}${work}`;
}

const count = (n: number) => n.toLocaleString('en-US');

export function size(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Seconds as m:ss or h:mm:ss. */
function clock(seconds: number): string {
  const s = Math.ceil(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
