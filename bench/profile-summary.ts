#!/usr/bin/env node
/**
 * Where a run's time went, from a V8 CPU profile (`node --cpu-prof --cpu-prof-dir=DIR src/cli.ts run`):
 * the top functions by self time (file:line function), self time per source file, and time per
 * engine phase (each sample goes to the innermost phase function on its stack).
 *
 *   node bench/profile-summary.ts FILE.cpuprofile [--top 20]
 *
 * Or of a heap profile (`--heap-prof`, FILE.heapprofile): the top allocation sites by bytes.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
  selfSize?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}
interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** The engine's phases and the functions that mark them (the innermost on a stack wins). */
const PHASE_OF = new Map<string, string>(Object.entries({
  listSide: 'listing', list: 'listing', lineBatchesOf: 'listing', parseListLine: 'listing', parseModTime: 'listing',
  readSnapshot: 'snapshot read', features: 'backend features', observe: 'observe (other)',
  detect: 'detect', detectChanges: 'detect', plan: 'plan', gate: 'gate', propagate: 'propagate',
  writeSnapshot: 'commit (snapshot write)', commit: 'commit', runSync: 'run (other)',
  '(garbage collector)': '(garbage collector)', '(idle)': '(idle: waiting for rclone or I/O)', '(program)': '(program)',
}));

const where = (f: CallFrame) => {
  const file = f.url.replace(/^file:\/\/.*?\/(src|node_modules)\//, '$1/').replace(/^node:/, 'node:');
  return `${file || '(native)'}:${f.lineNumber + 1} ${f.functionName || '(anonymous)'}`;
};
const ms = (us: number) => `${(us / 1000).toFixed(0)} ms`;

function top(map: Map<string, number>, n: number, total: number): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${ms(v).padStart(9)} ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}

function cpu(profile: CpuProfile, n: number): string[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
  const phase = new Map<string, number>();
  const span = new Map<string, [number, number]>();
  let total = 0;
  profile.samples.forEach((id, k) => {
    const dt = profile.timeDeltas[k] ?? 0;
    total += dt;
    const node = byId.get(id)!;
    const key = where(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const file = key.slice(0, key.lastIndexOf(':'));
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
    let p = 'outside the engine (start-up, stream and process plumbing)';
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const found = PHASE_OF.get(byId.get(at)!.callFrame.functionName);
      if (found) {
        p = found;
        break;
      }
    }
    phase.set(p, (phase.get(p) ?? 0) + dt);
    const [first, last] = span.get(p) ?? [total, total];
    span.set(p, [Math.min(first, total), Math.max(last, total)]);
  });
  const spans = [...span.entries()].filter(([p]) => !p.startsWith('(')).sort((a, b) => a[1][0] - b[1][0]);
  return [
    `sampled ${ms(total)} (profile spans ${ms(profile.endTime - profile.startTime)})`,
    '',
    `top ${n} functions by self time:`,
    ...top(self, n, total),
    '',
    'self time by file:',
    ...top(byFile, 12, total),
    '',
    'by phase (innermost phase function on the stack):',
    ...top(phase, 20, total),
    '',
    'when (first–last sample of the phase, ms from the profile start):',
    ...spans.map(([p, [a, b]]) => `  ${(a / 1000).toFixed(0).padStart(6)}–${(b / 1000).toFixed(0).padEnd(6)} ${p}`),
  ];
}

function heap(root: HeapNode, n: number): string[] {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode) => {
    total += node.selfSize;
    const key = where(node.callFrame);
    bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(root);
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
  return [
    `sampled allocations still live at the end of sampling ${mb(total)}`,
    ...[...bySite.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${mb(v).padStart(9)} ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`),
  ];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' } } });
const n = Number(values.top);
for (const file of positionals) {
  const data = JSON.parse(await readFile(file, 'utf8')) as CpuProfile & { head?: HeapNode };
  console.log(`== ${file}`);
  console.log((data.head ? heap(data.head, n) : cpu(data, n)).join('\n'));
}
