/**
 * Stopping a child process the test helpers started (a local S3 or SFTP server).
 */

/**
 * Asks `child` to stop (SIGTERM), kills it (SIGKILL) if it is still up after `killAfterMs`, and
 * waits for `ended`, the promise that settles when it has exited.
 */
export async function stopChild(
  child: { kill(signal: NodeJS.Signals): boolean },
  ended: Promise<unknown>,
  killAfterMs = 3000,
): Promise<void> {
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  try {
    await ended;
  } finally {
    clearTimeout(timer);
  }
}
