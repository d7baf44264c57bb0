/**
 * The CLI as the image runs it: src/ built into dist/ (scripts/build.ts), rebuilt before each
 * bench so that it measures the code of the working tree.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

export function builtCli(): string {
  execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(root, 'scripts', 'build.ts')], { stdio: 'ignore' });
  return join(root, 'dist', 'cli.js');
}

/** Node's flags from a CLI's shebang (`#!/usr/bin/env -S node <flags>`): run as `rclonesync` runs. */
export function nodeFlagsOf(cli: string): string[] {
  return readFileSync(cli, 'utf8').split('\n')[0]!.split(/\s+/).filter((word) => word.startsWith('--'));
}
