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
import { NEWLINE } from '../bytes.ts';

/** How long to wait for more when we have caught up with the writer. */
const POLL_MS = 15;
const CHUNK_BYTES = 1 << 20;

/**
 * What is written to `file`, as it is written, in chunks of whole lines (each ends with its
 * newline, but the last if the writer did not end it), until `ended` has settled and everything
 * written is read. A chunk is valid until the next is asked for: its memory is reused, so the
 * consumer copies out what it keeps (decoding does).
 */
export async function* lineChunksOfGrowingFile(file: string, ended: Promise<unknown>, chunkBytes = CHUNK_BYTES): AsyncGenerator<Buffer> {
  let done = false;
  const settled = ended.then(
    () => (done = true),
    () => (done = true),
  );
  const handle = await open(file, 'r');
  try {
    const reads = new LineReads(chunkBytes);
    let position = 0;
    for (;;) {
      // Whether the writer had ended is read before the read: what it wrote before ending is then all there.
      const finished = done;
      const into = reads.target();
      const { bytesRead } = await handle.read(into.buffer, into.offset, into.length, position);
      if (bytesRead > 0) {
        position += bytesRead;
        const lines = reads.lines(bytesRead);
        if (lines) yield lines;
        if (bytesRead === into.length || finished) continue;
      } else if (finished) break;
      // Caught up with the writer, or nearly: it gets a moment to write more. Each read is a trip
      // through libuv's thread pool; reading as fast as rclone wrote took ~1,500 reads of ~8 KB a
      // side for 100,000 files (0.24 s of CPU), against ~100 of ~120 KB this way.
      await Promise.race([sleep(POLL_MS), settled]);
    }
    const rest = reads.rest();
    if (rest) yield rest;
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
export async function* lineChunksOfRanges(
  file: string,
  ranges: readonly { readonly start: number; readonly end: number }[],
  chunkBytes = CHUNK_BYTES,
): AsyncGenerator<Buffer> {
  const handle: FileHandle = await open(file, 'r');
  try {
    const reads = new LineReads(chunkBytes);
    for (let i = 0; i < ranges.length; ) {
      const from = ranges[i]!.start;
      let to = ranges[i]!.end;
      for (i++; i < ranges.length && ranges[i]!.start === to; i++) to = ranges[i]!.end;
      for (let position = from; position < to; ) {
        const into = reads.target();
        const { bytesRead } = await handle.read(into.buffer, into.offset, Math.min(into.length, to - position), position);
        if (bytesRead === 0) break;
        position += bytesRead;
        const lines = reads.lines(bytesRead);
        if (lines) yield lines;
      }
      const rest = reads.rest();
      if (rest) yield rest;
      reads.clear();
    }
  } finally {
    await handle.close();
  }
}

/**
 * One buffer that reads go into, handing out whole lines. The start of a line a read cut off is
 * moved to the buffer's front before the next read, which goes in after it: no allocation per
 * read. (Joining it to each read with Buffer.concat allocated a copy of every chunk: ~24 MB of
 * garbage, and as much peak RSS, in a no-change run over 2 × 100,000 files.)
 */
export class LineReads {
  private buffer: Buffer;
  /** The kept start of a line: buffer[restStart, restEnd). */
  private restStart = 0;
  private restEnd = 0;

  constructor(bytes: number) {
    this.buffer = Buffer.allocUnsafe(bytes);
  }

  /**
   * Where the next read goes (after the kept start of a line, moved to the front now that the
   * chunk handed out before is done with). A line longer than the buffer doubles it.
   */
  target(): { buffer: Buffer; offset: number; length: number } {
    const kept = this.restEnd - this.restStart;
    if (kept === this.buffer.length) {
      const bigger = Buffer.allocUnsafe(this.buffer.length * 2);
      this.buffer.copy(bigger, 0, this.restStart, this.restEnd);
      this.buffer = bigger;
    } else if (this.restStart > 0) this.buffer.copyWithin(0, this.restStart, this.restEnd);
    this.restStart = 0;
    this.restEnd = kept;
    return { buffer: this.buffer, offset: kept, length: this.buffer.length - kept };
  }

  /** After `bytesRead` bytes went in at target(): the whole lines so far (valid until the next target()), if any. */
  lines(bytesRead: number): Buffer | undefined {
    const end = this.restEnd + bytesRead;
    // The kept bytes hold no newline, so the last one is in what was just read.
    const lastNewline = end === 0 ? -1 : this.buffer.lastIndexOf(NEWLINE, end - 1);
    this.restEnd = end;
    if (lastNewline === -1) return undefined;
    this.restStart = lastNewline + 1;
    return this.buffer.subarray(0, lastNewline + 1);
  }

  /** The start of a line no newline ended (valid until the next target()), if any. */
  rest(): Buffer | undefined {
    return this.restEnd > this.restStart ? this.buffer.subarray(this.restStart, this.restEnd) : undefined;
  }

  /** Forgets the kept bytes (a new range starts). */
  clear(): void {
    this.restStart = this.restEnd = 0;
  }
}
