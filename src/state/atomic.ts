import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file so that a reader (or a run after a crash) sees either the old content or the new,
 * never a torn mix: write a temporary file beside it, fsync it, rename over, fsync the directory.
 */
export async function writeFileAtomic(path: string, write: (chunk: (data: string | Uint8Array) => Promise<void>) => Promise<void>): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  const handle = await open(temporary, 'w', 0o600);
  try {
    // Text is buffered in 1 MiB chunks: a million small writes would cost more than the data.
    // Bytes are the caller's own buffer (reused once this resolves): written as they are.
    let buffer = '';
    const flush = async () => {
      if (buffer) await handle.write(buffer);
      buffer = '';
    };
    await write(async (data) => {
      if (typeof data !== 'string') {
        await flush();
        for (let done = 0; done < data.length; ) done += (await handle.write(data, done, data.length - done)).bytesWritten;
        return;
      }
      buffer += data;
      if (buffer.length >= 1 << 20) await flush();
    });
    await flush();
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temporary, path);
  await fsyncDirectory(dirname(path));
}

export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, (chunk) => chunk(text));
}

async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems (and some container overlays) refuse fsync on a directory; the rename stands.
  } finally {
    await handle.close();
  }
}
