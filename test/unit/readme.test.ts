import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.ts';

const readme = await readFile(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('README', () => {
  it.each(SETTINGS.map((s) => [s.env, s.flag] as const))('documents %s and its flag --%s', (env, flag) => {
    expect(readme).toContain(`| \`${env}\` | \`--${flag}\` |`);
  });

  it('documents every exit code', () => {
    for (const code of [0, 1, 2, 3, 4]) expect(readme).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
  });

  it('gives the test command that .ci/run runs', async () => {
    const ci = await readFile(join(import.meta.dirname, '..', '..', '.ci', 'run'), 'utf8');
    expect(readme).toContain('npm test');
    expect(ci).toMatch(/^npm test\b/m);
  });
});
