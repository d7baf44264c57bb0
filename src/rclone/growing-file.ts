/**
 * rclone's listings reach us through a file rather than a pipe. lsjson makes two write calls per
 * entry (measured with strace: 202,004 for 100,000 files), and into a pipe each one wakes the
 * reader: two listings of 100,000 files took 1.9 s through pipes and 1.2 s into files (the same
 * as into /dev/null). So rclone writes into a scratch file and we read it as it grows, in large
 * chunks of bytes (lines are read from the bytes: see lsjson-line.ts): still streamed (memory
 * does not grow with the tree), the file deleted once read (by the caller: it may read the start
 * again, see lineChunksOfFile). It costs scratch space in the state volume while a listing runs:
 * about 115 bytes a file.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long to wait for more when we have caught up with the writer. */
const POLL_MS = 15;
const CHUNK_BYTES = 1 << 20;
const NEWLINE = 0x0a;

/**
 * What is written to `file`, as it is written, in chunks of whole lines (each ends with its
 * newline, but the last if the writer did not end it), until `ended` has settled and everything
 * written is read. A chunk is valid until the next is asked for: its memory is reused, so the
 * consumer copies out what it keeps (decoding does).
 */
export async function* lineChunksOfGrowingFile(file: string, ended: Promise<unknown>): AsyncGenerator<Buffer> {
  let done = false;
  const settled = ended.then(
    () => (done = true),
    () => (done = true),
  );
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    /** The start of a line whose end is not written yet (a copy: the buffer is read into again). */
    let partial: Buffer | undefined;
    let position = 0;
    for (;;) {
      // Whether the writer had ended is read before the read: what it wrote before ending is then all there.
      const finished = done;
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position);
      if (bytesRead > 0) {
        position += bytesRead;
        const { lines, rest } = wholeLines(partial, buffer.subarray(0, bytesRead));
        partial = rest;
        if (lines) yield lines;
        if (bytesRead === CHUNK_BYTES || finished) continue;
      } else if (finished) break;
      // Caught up with the writer, or nearly: it gets a moment to write more. Each read is a trip
      // through libuv's thread pool; reading as fast as rclone wrote took ~1,500 reads of ~8 KB a
      // side for 100,000 files (0.24 s of CPU), against ~100 of ~120 KB this way.
      await Promise.race([sleep(POLL_MS), settled]);
    }
    if (partial) yield partial;
  } finally {
    await handle.close();
  }
}

/** The first `end` bytes of `file` (whole lines, written already), in chunks of whole lines as above. */
export function lineChunksOfFile(file: string, end: number): AsyncGenerator<Buffer> {
  return lineChunksOfRanges(file, [{ start: 0, end }]);
}

/**
 * The bytes of a finished file in these ranges [start, end), adjacent ones merged, as chunks of
 * whole lines; each range starts at a line's start and ends after a line's newline (or the file's end).
 */
export async function* lineChunksOfRanges(file: string, ranges: readonly { readonly start: number; readonly end: number }[]): AsyncGenerator<Buffer> {
  const handle: FileHandle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    for (let i = 0; i < ranges.length; ) {
      const from = ranges[i]!.start;
      let to = ranges[i]!.end;
      for (i++; i < ranges.length && ranges[i]!.start === to; i++) to = ranges[i]!.end;
      let partial: Buffer | undefined;
      for (let position = from; position < to; ) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK_BYTES, to - position), position);
        if (bytesRead === 0) break;
        position += bytesRead;
        const { lines, rest } = wholeLines(partial, buffer.subarray(0, bytesRead));
        partial = rest;
        if (lines) yield lines;
      }
      if (partial) yield partial;
    }
  } finally {
    await handle.close();
  }
}

/** The start of a line kept from before and the bytes just read, as whole lines and the start of the next. */
function wholeLines(partial: Buffer | undefined, read: Buffer): { lines: Buffer | undefined; rest: Buffer | undefined } {
  const bytes = partial ? Buffer.concat([partial, read]) : read;
  const lastNewline = bytes.lastIndexOf(NEWLINE);
  return {
    lines: lastNewline === -1 ? undefined : bytes.subarray(0, lastNewline + 1),
    // A copy: the buffer is read into again.
    rest: lastNewline + 1 < bytes.length ? Buffer.from(bytes.subarray(lastNewline + 1)) : undefined,
  };
}
