/**
 * Notices an rclone that is alive but gets nowhere: a remote that stopped answering mid-upload
 * (rclone 1.60's sftp backend waits forever in SetModTime, whatever --timeout says), a listing
 * that prints nothing. Progress is what rclone reports: a change in its transfer stats (bytes,
 * files done, checks, deletions, renames) or, for listings, output. After `stallMs` without any,
 * `onStall` runs once (the caller stops rclone). Every `reportEveryMs` of a long transfer the
 * latest stats go to `onReport`, so a log shows that a big copy is still moving.
 */
import type { TransferProgress } from '../model.ts';

export interface WatchdogOptions {
  /** 0: never stalls (SYNC_STALL_TIMEOUT=0). */
  readonly stallMs: number;
  readonly reportEveryMs: number;
  readonly onStall: () => void;
  readonly onReport?: (progress: TransferProgress, bytesPerSecond: number) => void;
}

export const PROGRESS_REPORT_MS = 60_000;

export class Watchdog {
  private readonly options: WatchdogOptions;
  private lastProgressAt = Date.now();
  private signature = '';
  private latest: TransferProgress | undefined;
  private reported: { at: number; bytes: number } = { at: Date.now(), bytes: 0 };
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly reportTimer: NodeJS.Timeout | undefined;
  private state: 'watching' | 'stalled' | 'stopped' = 'watching';

  constructor(options: WatchdogOptions) {
    this.options = options;
    if (options.stallMs > 0) this.armStallTimer(options.stallMs);
    if (options.onReport) this.reportTimer = setInterval(() => this.report(), options.reportEveryMs);
  }

  get stalled(): boolean {
    return this.state === 'stalled';
  }

  /** Output that shows work being done (a listing's lines). */
  activity(): void {
    this.lastProgressAt = Date.now();
  }

  /** A stats line: progress only if something in it moved since the last one. */
  stats(progress: TransferProgress): void {
    this.latest = progress;
    const signature = [progress.bytes, progress.transfers, progress.checks, progress.deletes, progress.renames].join(' ');
    if (signature !== this.signature) {
      this.signature = signature;
      this.activity();
    }
  }

  stop(): void {
    if (this.state === 'watching') this.state = 'stopped';
    clearTimeout(this.stallTimer);
    clearInterval(this.reportTimer);
  }

  // One timer per stall period rather than one per line: a listing prints a million lines.
  private armStallTimer(delay: number): void {
    this.stallTimer = setTimeout(() => {
      if (this.state !== 'watching') return;
      const idle = Date.now() - this.lastProgressAt;
      if (idle < this.options.stallMs) return this.armStallTimer(this.options.stallMs - idle);
      this.state = 'stalled';
      clearInterval(this.reportTimer);
      this.options.onStall();
    }, delay);
  }

  private report(): void {
    const progress = this.latest;
    if (!progress || this.state !== 'watching') return;
    const now = Date.now();
    const rate = now > this.reported.at ? ((progress.bytes - this.reported.bytes) * 1000) / (now - this.reported.at) : 0;
    this.reported = { at: now, bytes: progress.bytes };
    this.options.onReport?.(progress, Math.max(0, rate));
  }
}

/** "5m", "90s", "1h30m": how the stall message names a duration. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let seconds = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  return parts.join('');
}
