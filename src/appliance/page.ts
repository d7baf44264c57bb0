/**
 * The status page, `GET /` on SYNC_HTTP_PORT: one self-contained HTML document (inline CSS and
 * script, no build step, nothing fetched from elsewhere: the appliance has no internet) for people
 * on a phone or a desktop. It polls `status` (relative, so it also works behind a reverse proxy's
 * sub-path) every 2 seconds and redraws in place.
 *
 * It reads a list of pairs: `{"pairs": [...]}` (as `rclonesync status --json` prints it), or a
 * single pair object (today's daemon /status), shown as a list of one. Both shapes of the run in
 * progress are understood (`startedAt` from the daemon, `since` from the state folder).
 *
 * It shows only what /status serves, which is masked already (credentials in paths and messages);
 * everything is put in the page as text (textContent), never as HTML, so no name can inject markup.
 * The response's Content-Security-Policy (STATUS_PAGE_CSP) allows nothing but this page's own
 * script and style (by their hashes) and requests to the same origin.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f4f5f7; --card: #fff; --text: #1c1e21; --muted: #5f6670; --line: #e3e5e8;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #c62828; --bad-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5;
  --accent: #0969da; --bar: #dfe3e8;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --card: #181c22; --text: #e6e8eb; --muted: #9aa3ad; --line: #2a3038;
    --ok: #4ac26b; --ok-bg: #12301c; --bad: #ff7b72; --bad-bg: #3b1618; --warn: #d4a72c; --warn-bg: #33290b;
    --accent: #4493f8; --bar: #2a3038;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: baseline; gap: .75rem; flex-wrap: wrap; padding: 1rem 1rem .25rem; max-width: 72rem; margin: 0 auto; }
header h1 { font-size: 1.25rem; margin: 0; }
header .summary { color: var(--muted); }
header .updated { margin-left: auto; color: var(--muted); font-size: .85rem; }
main { padding: .5rem 1rem 2rem; max-width: 72rem; margin: 0 auto; display: grid; gap: 1rem; grid-template-columns: repeat(auto-fill, minmax(min(100%, 30rem), 1fr)); }
.banner { max-width: 72rem; margin: .5rem auto 0; padding: .5rem 1rem; border-radius: .5rem; background: var(--warn-bg); color: var(--warn); }
.banner[hidden] { display: none; }
.pair { background: var(--card); border: 1px solid var(--line); border-radius: .75rem; padding: 1rem; min-width: 0; }
.pair h2 { font-size: 1.05rem; margin: 0 0 .15rem; display: flex; align-items: center; gap: .5rem; flex-wrap: wrap; }
.paths { color: var(--muted); font-size: .85rem; overflow-wrap: anywhere; margin-bottom: .5rem; }
.badge { font-size: .75rem; font-weight: 600; padding: .1rem .5rem; border-radius: 1rem; white-space: nowrap; }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.run { background: var(--bar); color: var(--accent); }
.reason { font-size: .9rem; margin: 0 0 .75rem; overflow-wrap: anywhere; }
section { border-top: 1px solid var(--line); padding-top: .6rem; margin-top: .6rem; }
section h3 { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 .35rem; }
.facts { display: grid; grid-template-columns: auto 1fr; gap: .1rem .75rem; margin: 0; font-size: .9rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.bar { height: .5rem; border-radius: .25rem; background: var(--bar); overflow: hidden; margin: .35rem 0; }
.bar > div { height: 100%; background: var(--accent); transition: width .4s ease; }
.phase { font-weight: 600; }
.outcome-success { color: var(--ok); }
.outcome-failed, .outcome-cancelled, .outcome-usage { color: var(--bad); }
.outcome-safety-stop { color: var(--warn); }
.outcome-locked { color: var(--muted); }
.runs { width: 100%; border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
.runs th { text-align: left; color: var(--muted); font-weight: 500; }
.runs th, .runs td { padding: .15rem .4rem .15rem 0; white-space: nowrap; }
.runs td.num, .runs th.num { text-align: right; }
.scroll { overflow-x: auto; }
ul.names { margin: 0; padding-left: 1.1rem; font-size: .85rem; }
ul.names li { overflow-wrap: anywhere; }
.muted { color: var(--muted); }
@media (max-width: 30rem) { .runs .wide { display: none; } body { font-size: 14px; } }
`;

/** The page's script, run in the browser. Plain JavaScript: no build step. */
const SCRIPT = `
'use strict';
const POLL_MS = 2000;
const $ = (selector) => document.querySelector(selector);

/** An element with text children only: data never becomes markup. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === 'class') node.className = value;
    // Through CSSOM: the CSP blocks style attributes, not this.
    else if (key === 'style') node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const number = (n) => Number(n || 0).toLocaleString();
function bytes(n) {
  n = Number(n || 0);
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}
function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  const h = Math.floor(m / 60);
  if (h < 48) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
  return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
}
const when = (iso) => new Date(iso).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
function relative(iso) {
  const delta = Date.parse(iso) - Date.now();
  return delta >= 0 ? 'in ' + duration(delta) : duration(-delta) + ' ago';
}
/** ISO times in the server's sentences (health reasons) read as local times. */
const localTimes = (text) => String(text).replace(/\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:\\.\\d+)?Z/g, (iso) => when(iso) + ' (' + relative(iso) + ')');
/** A trash stamp (20261120T101500Z) as a local date. */
const stampDate = (stamp) => {
  const m = /^(\\d{4})(\\d\\d)(\\d\\d)T(\\d\\d)(\\d\\d)(\\d\\d)Z$/.exec(stamp);
  return m ? new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6])).toLocaleDateString([], { dateStyle: 'medium' }) : stamp;
};
const short = (iso) => new Date(iso).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const time = (iso) => el('time', { datetime: iso, title: new Date(iso).toString() }, when(iso) + ' (' + relative(iso) + ')');
const facts = (rows) => el('dl', { class: 'facts' }, rows.filter(Boolean).map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));

const PHASES = { locking: 'waiting for the lock', listing: 'listing both sides', checking: 'comparing', propagating: 'copying', committing: 'committing', done: 'finishing' };

function transfersOf(progress) {
  const t = { files: 0, totalFiles: 0, bytes: 0, totalBytes: 0 };
  for (const d of Object.values((progress && progress.transfers) || {})) {
    if (!d) continue;
    t.files += d.transfers || 0; t.totalFiles += d.totalTransfers || 0; t.bytes += d.bytes || 0; t.totalBytes += d.totalBytes || 0;
  }
  return t;
}

function currentRun(current) {
  const started = current.startedAt || current.since;
  const p = current.progress;
  const rows = [['started', started ? time(started) : '?']];
  if (!p) return [el('p', { class: 'phase' }, 'starting'), facts(rows)];
  const t = transfersOf(p);
  const share = t.totalBytes > 0 ? t.bytes / t.totalBytes : t.totalFiles > 0 ? t.files / t.totalFiles : p.phase === 'committing' || p.phase === 'done' ? 1 : 0;
  rows.push(['listed', number(p.listed && p.listed.path1) + ' files on path1, ' + number(p.listed && p.listed.path2) + ' on path2']);
  if (p.counts) {
    const c = p.counts;
    rows.push(['plan', number(c.copiesToPath2) + ' to path2, ' + number(c.copiesToPath1) + ' to path1, ' + number(c.deletesOnPath1 + c.deletesOnPath2) + ' deletions, ' + number(c.conflicts) + ' conflicts']);
  }
  if (t.totalFiles > 0 || t.totalBytes > 0) rows.push(['transferred', number(t.files) + ' of ' + number(t.totalFiles) + ' files, ' + bytes(t.bytes) + ' of ' + bytes(t.totalBytes)]);
  const percent = Math.round(share * 100);
  return [
    el('p', { class: 'phase' }, (PHASES[p.phase] || p.phase) + (t.totalBytes > 0 || t.totalFiles > 0 ? ' · ' + percent + '%' : '')),
    el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(percent) }, el('div', { style: 'width:' + percent + '%' })),
    facts(rows),
  ];
}

function countsText(c) {
  if (!c) return 'nothing planned';
  return number(c.copiesToPath2) + ' → path2, ' + number(c.copiesToPath1) + ' → path1, ' + number(c.deletesOnPath1 + c.deletesOnPath2) + ' deleted, ' + number(c.conflicts) + ' conflicts, ' + bytes(c.bytesToPath1 + c.bytesToPath2);
}

function lastRun(run) {
  return facts([
    ['outcome', el('span', { class: 'outcome-' + run.outcome }, run.outcome + (run.dryRun ? ' (dry run)' : '') + (run.resync ? ' (resync)' : ''))],
    ['ended', time(run.endedAt)],
    ['took', duration(run.durationMs)],
    ['did', countsText(run.counts)],
    run.message && ['message', run.message],
  ]);
}

function recentRuns(runs) {
  const head = el('tr', {}, el('th', {}, 'started'), el('th', {}, 'outcome'), el('th', { class: 'num' }, 'took'), el('th', { class: 'num' }, '→p2'), el('th', { class: 'num' }, '→p1'), el('th', { class: 'num wide' }, 'del'), el('th', { class: 'num wide' }, 'confl'));
  const rows = runs.slice(-10).reverse().map((r) => {
    const c = r.counts || {};
    return el('tr', {},
      el('td', { title: r.startedAt }, short(r.startedAt)),
      el('td', { class: 'outcome-' + r.outcome, title: r.message || '' }, r.outcome),
      el('td', { class: 'num' }, duration(r.durationMs)),
      el('td', { class: 'num' }, number(c.copiesToPath2)),
      el('td', { class: 'num' }, number(c.copiesToPath1)),
      el('td', { class: 'num wide' }, number((c.deletesOnPath1 || 0) + (c.deletesOnPath2 || 0))),
      el('td', { class: 'num wide' }, number(c.conflicts)));
  });
  return el('div', { class: 'scroll' }, el('table', { class: 'runs' }, el('thead', {}, head), el('tbody', {}, rows)));
}

function conflicts(pair) {
  const list = pair.conflicts;
  if (list && list.total > 0) {
    return el('section', { class: 'conflicts' }, el('h3', {}, 'conflict copies to look at (' + number(list.total) + ')'),
      el('ul', { class: 'names' }, list.newest.map((c) => el('li', {}, c.path))),
      list.total > list.newest.length ? el('p', { class: 'muted' }, 'and ' + number(list.total - list.newest.length) + ' more') : null);
  }
  const last = (pair.runs || []).filter((r) => r.counts && r.counts.conflicts > 0).at(-1);
  if (!last) return null;
  return el('section', { class: 'conflicts' }, el('h3', {}, 'conflicts'), el('p', {}, number(last.counts.conflicts) + ' in the run of ' + when(last.startedAt) + ': both versions were kept as conflict copies'));
}

function trash(t) {
  if (!t) return null;
  const side = (name) => {
    const s = t[name];
    if (!s) return null;
    return [name, s.files > 0 ? number(s.files) + ' files, ' + bytes(s.bytes) + (s.oldestStamp ? ', oldest from ' + stampDate(s.oldestStamp) : '') : 'empty'];
  };
  return el('section', { class: 'trash' }, el('h3', {}, 'trash'), facts([side('path1'), side('path2')]));
}

function pairCard(pair) {
  const health = pair.health || { healthy: false, reason: 'unknown' };
  const current = pair.current && (pair.current.progress !== undefined || pair.current.startedAt || pair.current.since) ? pair.current : null;
  const runs = pair.runs || [];
  const last = runs.filter((r) => r.outcome !== 'locked').at(-1);
  return el('article', { class: 'pair', 'data-pair': pair.pair },
    el('h2', {}, el('span', { class: 'name' }, pair.name || pair.pair),
      el('span', { class: 'badge ' + (health.healthy ? 'ok' : 'bad') }, health.healthy ? 'healthy' : 'unhealthy'),
      current ? el('span', { class: 'badge run' }, 'running') : null),
    pair.path1 || pair.path2 ? el('div', { class: 'paths' }, (pair.path1 || '?') + '  ⇄  ' + (pair.path2 || '?')) : null,
    el('p', { class: 'reason' }, localTimes(health.reason)),
    el('section', { class: 'now' }, el('h3', {}, current ? 'running now' : 'next run'),
      current ? currentRun(current) : el('p', {}, pair.nextRun ? time(pair.nextRun) : 'not scheduled')),
    current && pair.nextRun ? el('p', { class: 'muted' }, 'next scheduled run ', time(pair.nextRun)) : null,
    el('section', { class: 'last' }, el('h3', {}, 'last run'), last ? lastRun(last) : el('p', { class: 'muted' }, 'no run yet')),
    conflicts(pair),
    trash(pair.trash),
    runs.length > 0 ? el('section', { class: 'recent' }, el('h3', {}, 'recent runs'), recentRuns(runs)) : null);
}

function render(data) {
  const pairs = Array.isArray(data.pairs) ? data.pairs : [data];
  const healthy = pairs.filter((p) => p.health && p.health.healthy).length;
  const running = pairs.filter((p) => p.current).length;
  $('#summary').textContent = pairs.length + (pairs.length === 1 ? ' pair' : ' pairs') + ', ' + healthy + ' healthy' + (running ? ', ' + running + ' running' : '');
  document.title = (healthy < pairs.length ? '⚠ ' : '') + 'rclonesync';
  $('#pairs').replaceChildren(...pairs.map(pairCard));
  $('#updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

async function poll() {
  try {
    const response = await fetch('status', { cache: 'no-store', headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    render(await response.json());
    $('#offline').hidden = true;
  } catch (error) {
    $('#offline').hidden = false;
    $('#offline').textContent = 'Cannot reach the daemon (' + error.message + '); retrying…';
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
poll();
`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>rclonesync</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>rclonesync</h1><span class="summary" id="summary">loading…</span><span class="updated" id="updated"></span></header>
<div class="banner" id="offline" role="status" hidden></div>
<main id="pairs" aria-live="polite"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
