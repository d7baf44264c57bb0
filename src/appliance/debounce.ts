/**
 * When a watched pair's run is due. Kept apart from the file watcher (watch.ts) so the timing rules
 * can be tested with fake timers, without inotify:
 *
 * - a run is due `delayMs` (SYNC_WATCH_DELAY) after the last change: every change restarts the
 *   wait, so a burst of 10,000 changes is one run, started once the burst is over;
 * - a run started for any reason (the schedule too) covers the changes seen so far: the wait is
 *   dropped, since that run's listing happens after them;
 * - changes during a run schedule exactly one follow-up, `delayMs` after the run ended (or after
 *   the last change, whichever is later), never a second run alongside;
 * - after failed runs the wait doubles each time, up to `maxDelayMs`: a remote that is down is not
 *   hammered every few seconds because a person keeps saving a file.
 *
 * It knows nothing of paths: which changes count (the run's own copies do not) is watch.ts's job.
 */

export interface DebouncerOptions {
  readonly delayMs: number;
  /** Called when a run is due: changes have been quiet for the delay and no run is in progress. */
  readonly onDue: () => void;
  /** The longest wait after repeated failures (default: 10 minutes, at least delayMs). */
  readonly maxDelayMs?: number;
}

const DEFAULT_MAX_DELAY_MS = 10 * 60_000;

export class ChangeDebouncer {
  private readonly options: DebouncerOptions;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private changedDuringRun = false;
  private failuresInARow = 0;
  private closed = false;

  constructor(options: DebouncerOptions) {
    this.options = options;
  }

  /** A change that needs syncing was seen. */
  changed(): void {
    if (this.closed) return;
    if (this.running) {
      this.changedDuringRun = true;
      return;
    }
    this.arm();
  }

  /** A run of this pair started (whatever started it). */
  runStarted(): void {
    this.running = true;
    this.changedDuringRun = false;
    this.disarm();
  }

  /** That run ended; `succeeded: false` lengthens the next wait. */
  runEnded(result: { readonly succeeded: boolean }): void {
    this.running = false;
    this.failuresInARow = result.succeeded ? 0 : this.failuresInARow + 1;
    if (this.changedDuringRun) {
      this.changedDuringRun = false;
      this.arm();
    }
  }

  /** A run is due later (the wait is on, or a run is going and changes came in meanwhile). */
  get pending(): boolean {
    return this.timer !== undefined || this.changedDuringRun;
  }

  /** The wait the next change starts. */
  get currentDelayMs(): number {
    const max = Math.max(this.options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, this.options.delayMs);
    return Math.min(max, this.options.delayMs * 2 ** this.failuresInARow);
  }

  close(): void {
    this.closed = true;
    this.changedDuringRun = false;
    this.disarm();
  }

  private arm(): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.running && !this.closed) this.options.onDue();
    }, this.currentDelayMs);
    // A pending wait never keeps the process alive on its own (the daemon's schedule does).
    this.timer.unref?.();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
