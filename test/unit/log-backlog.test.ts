/**
 * trackBacklog: how the log notices that stdout is full, so a loop logging a million lines can wait
 * for it instead of holding every line in memory.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { trackBacklog } from '../../src/log.ts';

/** A stream that reports itself full while `full` is set, recording what it was given. */
class FakeStream extends EventEmitter {
  full = false;
  readonly lines: string[] = [];
  write(line: string): boolean {
    this.lines.push(line);
    return !this.full;
  }
}

const settled = async (promise: Promise<void>): Promise<boolean> => {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

describe('trackBacklog', () => {
  it('resolves at once while the stream takes every line, and passes each line on', async () => {
    const stream = new FakeStream();
    const caughtUp = trackBacklog(stream);
    expect(stream.write('a\n')).toBe(true);
    expect(await settled(caughtUp())).toBe(true);
    expect(stream.lines).toEqual(['a\n']);
  });

  it('waits from the write that found the stream full until it drains, and no longer', async () => {
    const stream = new FakeStream();
    const caughtUp = trackBacklog(stream);
    stream.full = true;
    expect(stream.write('a\n')).toBe(false);
    expect(stream.write('b\n')).toBe(false);
    const waiting = caughtUp();
    expect(await settled(waiting)).toBe(false);
    stream.full = false;
    stream.emit('drain');
    expect(await settled(waiting)).toBe(true);
    expect(await settled(caughtUp())).toBe(true);
    expect(stream.lines).toEqual(['a\n', 'b\n']);
    // The listeners went with the wait.
    expect(['drain', 'error', 'close'].map((event) => stream.listenerCount(event))).toEqual([0, 0, 0]);
  });

  for (const event of ['error', 'close'] as const) {
    it(`stops waiting when the stream ends with '${event}' (a stdout that went away never holds a run)`, async () => {
      const stream = new FakeStream();
      stream.on('error', () => {}); // an unheard 'error' would throw
      const caughtUp = trackBacklog(stream);
      stream.full = true;
      stream.write('a\n');
      const waiting = caughtUp();
      expect(await settled(waiting)).toBe(false);
      stream.emit(event);
      expect(await settled(waiting)).toBe(true);
    });
  }

  it('waits again when the stream fills again after draining', async () => {
    const stream = new FakeStream();
    const caughtUp = trackBacklog(stream);
    stream.full = true;
    stream.write('a\n');
    stream.emit('drain');
    stream.write('b\n');
    expect(await settled(caughtUp())).toBe(false);
  });
});
