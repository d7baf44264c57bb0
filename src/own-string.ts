/**
 * A copy of a string that holds its own characters. V8 makes a slice of 13 characters or more a
 * view into the string it was cut from, and the view keeps the whole parent alive: every path
 * the listing and snapshot readers cut from a 1 MB chunk kept that chunk, so the whole text of
 * rclone's output and of the snapshot stayed in memory for the run. Measured at 100k files: 252
 * bytes per listed file held before, 137 after; 175 per snapshot entry before, 135 after.
 * Encoding into a scratch buffer and decoding it back costs ~150 ns a string.
 */

/** Below this length V8 copies a slice anyway (SlicedString::kMinLength). */
const SHORTEST_VIEW = 13;
const encoder = new TextEncoder();
let scratch = Buffer.allocUnsafe(4096);

export function ownString(text: string): string {
  if (text.length < SHORTEST_VIEW) return text;
  // A lone surrogate would not survive UTF-8 (rclone never prints one, but JSON can carry it).
  if (!text.isWellFormed()) return JSON.parse(JSON.stringify(text)) as string;
  if (text.length * 3 > scratch.length) scratch = Buffer.allocUnsafe(text.length * 3);
  const { written } = encoder.encodeInto(text, scratch);
  return scratch.toString('utf8', 0, written);
}
