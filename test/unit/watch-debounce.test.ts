import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChangeDebouncer } from '../../src/appliance/debounce.ts';

const DELAY = 10_000;

describe('ChangeDebouncer', () => {
  let due: number;
  let debouncer: ChangeDebouncer;
  beforeEach(() => {
    vi.useFakeTimers();
    due = 0;
    debouncer = new ChangeDebouncer({ delayMs: DELAY, onDue: () => due++ });
  });
  afterEach(() => {
    debouncer.close();
    vi.useRealTimers();
  });

  it('is due the delay after the last change, not the first', () => {
    debouncer.changed();
    vi.advanceTimersByTime(DELAY - 1);
    expect(due).toBe(0);
    debouncer.changed();
    vi.advanceTimersByTime(DELAY - 1);
    expect(due).toBe(0);
    vi.advanceTimersByTime(1);
    expect(due).toBe(1);
    vi.advanceTimersByTime(10 * DELAY);
    expect(due).toBe(1);
  });

  it('makes a burst of 10,000 changes one run', () => {
    for (let i = 0; i < 10_000; i++) {
      debouncer.changed();
      if (i % 100 === 0) vi.advanceTimersByTime(50);
    }
    expect(due).toBe(0);
    vi.advanceTimersByTime(DELAY);
    expect(due).toBe(1);
    vi.advanceTimersByTime(10 * DELAY);
    expect(due).toBe(1);
  });

  it('drops the wait when a run starts for another reason (the schedule): that run covers the changes', () => {
    debouncer.changed();
    vi.advanceTimersByTime(DELAY / 2);
    debouncer.runStarted();
    vi.advanceTimersByTime(2 * DELAY);
    expect(due).toBe(0);
    debouncer.runEnded({ succeeded: true });
    vi.advanceTimersByTime(2 * DELAY);
    expect(due).toBe(0);
    expect(debouncer.pending).toBe(false);
  });

  it('schedules exactly one follow-up for any number of changes during a run, the delay after the run ends', () => {
    debouncer.runStarted();
    for (let i = 0; i < 500; i++) debouncer.changed();
    vi.advanceTimersByTime(5 * DELAY);
    // Never a second run alongside the first.
    expect(due).toBe(0);
    expect(debouncer.pending).toBe(true);
    debouncer.runEnded({ succeeded: true });
    vi.advanceTimersByTime(DELAY - 1);
    expect(due).toBe(0);
    vi.advanceTimersByTime(1);
    expect(due).toBe(1);
    // The follow-up itself, with no change during it, schedules nothing more.
    debouncer.runStarted();
    debouncer.runEnded({ succeeded: true });
    vi.advanceTimersByTime(10 * DELAY);
    expect(due).toBe(1);
  });

  it('restarts the follow-up wait when changes go on after the run', () => {
    debouncer.runStarted();
    debouncer.changed();
    debouncer.runEnded({ succeeded: true });
    vi.advanceTimersByTime(DELAY - 1000);
    debouncer.changed();
    vi.advanceTimersByTime(DELAY - 1);
    expect(due).toBe(0);
    vi.advanceTimersByTime(1);
    expect(due).toBe(1);
  });

  it('no run ended without a change during it schedules nothing', () => {
    debouncer.runStarted();
    debouncer.runEnded({ succeeded: false });
    vi.advanceTimersByTime(100 * DELAY);
    expect(due).toBe(0);
  });

  it('waits twice as long after each failed run, up to the cap, and is back to the delay after a success', () => {
    const capped = new ChangeDebouncer({ delayMs: DELAY, maxDelayMs: 35_000, onDue: () => due++ });
    const waitOf = () => {
      capped.runStarted();
      capped.changed();
      capped.runEnded({ succeeded: false });
      return capped.currentDelayMs;
    };
    expect(waitOf()).toBe(20_000);
    expect(waitOf()).toBe(35_000);
    vi.advanceTimersByTime(35_000 - 1);
    expect(due).toBe(0);
    vi.advanceTimersByTime(1);
    expect(due).toBe(1);
    capped.runStarted();
    capped.runEnded({ succeeded: true });
    expect(capped.currentDelayMs).toBe(DELAY);
    capped.close();
  });

  it('is never due after close', () => {
    debouncer.changed();
    debouncer.close();
    debouncer.changed();
    vi.advanceTimersByTime(10 * DELAY);
    expect(due).toBe(0);
  });
});
