/**
 * scripts/build.ts turns src/ into the JavaScript the image runs: types erased by Node's own
 * stripper, relative `.ts` imports pointed at `.js`, line numbers kept (stack traces line up),
 * and a build refused when a `.ts` module is named some other way. The built CLI itself runs in
 * every container test and in the bench smoke test.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { toJavaScript } from '../../scripts/build.ts';

const src = join(import.meta.dirname, '..', '..', 'src');
const relativeSpecifiers = (code: string) => [...code.matchAll(/(?:from\s*|import\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);

describe('build', () => {
  test.each([
    [`import { a } from './a.ts';`, `import { a } from './a.js';`],
    [`export { b } from "../b/c.ts";`, `export { b } from "../b/c.js";`],
    [`const { d } = await import('./appliance/d.ts');`, `const { d } = await import('./appliance/d.js');`],
    [`import './side-effect.ts';`, `import './side-effect.js';`],
    [`import pkg from '../package.json' with { type: 'json' };`, `import pkg from '../package.json' with { type: 'json' };`],
    [`import { x } from 'node:fs'; const n: number = 1;`, `import { x } from 'node:fs'; const n         = 1;`],
  ])('%s', (input, output) => {
    expect(toJavaScript(input, 'x.ts')).toBe(output);
  });

  test('refuses a .ts module it would not rewrite', () => {
    expect(() => toJavaScript(`const next = './worker.ts';`, 'src/x.ts')).toThrow(/src\/x\.ts: a relative \.ts specifier the build does not rewrite: '\.\/worker\.ts'/);
  });

  test('every module of src/ builds, keeps its lines, and imports the same modules as .js', async () => {
    const files = (await readdir(src, { recursive: true })).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(40);
    for (const file of files) {
      const code = await readFile(join(src, file), 'utf8');
      const built = toJavaScript(code, relative(src, file));
      expect(built.split('\n').length, file).toBe(code.split('\n').length);
      const before = relativeSpecifiers(code.replace(/^import type .*$/gm, '')).map((s) => s.replace(/\.ts$/, '.js'));
      expect(relativeSpecifiers(built), file).toEqual(before);
    }
  });
});
