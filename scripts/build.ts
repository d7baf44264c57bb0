#!/usr/bin/env node
/**
 * Builds dist/: src/ as plain JavaScript, what the image runs. Node can run src/*.ts as they are
 * (type stripping), but then it loads its TypeScript stripper on every start: a 100k-file
 * no-change run took 0.2–0.5 s longer and peaked 25 MB higher (bench/PROFILE.md). Types are
 * erased by Node's own stripper (the same one, so the code is exactly what `node src/cli.ts`
 * runs, line for line), and relative imports of `.ts` files are pointed at the `.js` ones.
 *
 *   node scripts/build.ts      (npm run build)
 *
 * dist/ sits beside src/ because modules reach outside src/ (main.ts reads ../package.json).
 */
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const source = join(root, 'src');
const out = join(root, 'dist');

/** `from './x.ts'`, `import './x.ts'`, `import('./x.ts')`: the relative specifiers our modules use. */
const RELATIVE_TS_IMPORT = /(\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"\n]+)\.ts\2/g;

export function toJavaScript(code: string, file: string): string {
  const stripped = stripTypeScriptTypes(code, { mode: 'strip' });
  const rewritten = stripped.replace(RELATIVE_TS_IMPORT, (_, keyword: string, quote: string, path: string) => `${keyword}${quote}${path}.js${quote}`);
  // Anything else naming a .ts module would fail at run time only: refuse to build instead.
  const left = /(['"])\.{1,2}\/[^'"\n]+\.ts\1/.exec(rewritten);
  if (left) throw new Error(`${file}: a relative .ts specifier the build does not rewrite: ${left[0]}`);
  return rewritten;
}

async function* typeScriptFiles(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* typeScriptFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

if (import.meta.main) {
  await rm(out, { recursive: true, force: true });
  let count = 0;
  for await (const file of typeScriptFiles(source)) {
    const target = join(out, relative(source, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, toJavaScript(await readFile(file, 'utf8'), relative(root, file)));
    count++;
  }
  await chmod(join(out, 'cli.js'), 0o755);
  console.log(`built ${count} modules into ${relative(process.cwd(), out)}`);
}
