/**
 * JSON lines written as bytes (state/json-lines.ts): every line is byte for byte what
 * JSON.stringify writes, whatever the strings (escapes, lone surrogates, any Unicode) and numbers
 * (negative, fractional, huge, not finite), across flushes and lines longer than the buffer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonLines } from '../../src/state/json-lines.ts';

async function written(rows: readonly (readonly (string | number)[])[]): Promise<string> {
  const chunks: Buffer[] = [];
  const lines = new JsonLines(async (data) => {
    chunks.push(Buffer.from(data));
  });
  for (const row of rows) {
    lines.open(row.reduce<number>((sum, item) => sum + (typeof item === 'string' ? item.length : 0), 0));
    for (const item of row) {
      if (typeof item === 'string') lines.string(item);
      else lines.number(item);
    }
    lines.close();
    if (lines.full) await lines.flush();
  }
  await lines.flush();
  return Buffer.concat(chunks).toString('utf8');
}

const expected = (rows: readonly (readonly (string | number)[])[]) => rows.map((row) => `${JSON.stringify(row)}\n`).join('');

describe('JsonLines', () => {
  it('writes what JSON.stringify writes', async () => {
    const item = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc.constantFrom('', 'a"b', 'back\\slash', 'tab\t', 'nl\n', 'raw\udcfe', '\u0000', '\u001f', '\u007f'),
      fc.integer(),
      fc.double(),
      fc.constantFrom(0, -0, 2 ** 53, -(2 ** 53), 1764081120123, 1e21, NaN, Infinity, -Infinity),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(item, { maxLength: 6 }), { maxLength: 8 }), async (rows) => {
        // What JSON.stringify writes as bytes: its text, encoded as UTF-8 (it escapes lone surrogates).
        expect(await written(rows)).toBe(expected(rows));
      }),
      { numRuns: 1000 },
    );
  });

  it('writes many lines across flushes, and a line longer than its buffer', async () => {
    const rows = Array.from({ length: 30_000 }, (_, i) => [i % 3, `folder ${i % 97}/file ${i}.txt`, i * 7, 1764081120123 + i, i % 2 ? '' : 'ab12']);
    rows.push([1, 'x'.repeat(400_000), 1, 1, '']);
    rows.push([2, 'ü'.repeat(300_000), 2, 2, '']);
    expect(await written(rows)).toBe(expected(rows));
  });
});
