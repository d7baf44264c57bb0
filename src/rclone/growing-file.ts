/**
 * rclone's listings reach us through a file rather than a pipe. lsjson makes two write calls per
 * entry (measured with strace: 202,004 for 100,000 files), and into a pipe each one wakes the
 * reader: two listings of 100,000 files took 1.9 s through pipes and 1.2 s into files (the same
 * as into /dev/null). So rclone writes into a scratch file and we read it as it grows, in large
 * chunks: still streamed (memory does not grow with the tree), the file deleted once read. It
 * costs scratch space in the state volume while a listing runs: about 115 bytes a file.
 */
import { open, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { StringDecoder } from 'node:string_decoder';

/** How long to wait for more when we have caught up with the writer. */
const POLL_MS = 8;
const CHUNK_BYTES = 1 << 20;

/**
 * The lines of `file` as they are written, in batches (one per chunk read), until `ended` has
 * settled and everything written is read. The file is removed at the end, however it ends.
 */
export async function* linesOfGrowingFile(file: string, ended: Promise<unknown>): AsyncGenerator<string[]> {
  let done = false;
  const settled = ended.then(
    () => (done = true),
    () => (done = true),
  );
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let position = 0;
    for (;;) {
      // Whether the writer had ended is read before the read: what it wrote before ending is then all there.
      const finished = done;
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position);
      if (bytesRead > 0) {
        position += bytesRead;
        const lines = (rest + decoder.write(buffer.subarray(0, bytesRead))).split('\n');
        rest = lines.pop()!;
        yield lines;
        continue;
      }
      if (finished) break;
      await Promise.race([sleep(POLL_MS), settled]);
    }
    rest += decoder.end();
    if (rest) yield [rest];
  } finally {
    await handle.close();
    await rm(file, { force: true });
  }
}
