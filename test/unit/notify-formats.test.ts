/**
 * SYNC_NOTIFY_URL's formats: which URL is which (ntfy, Gotify, Discord, Slack, else the JSON
 * webhook), and each request as a local HTTP server receives it: a short message naming the pair,
 * the outcome, the counts and the first error.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { notifyRequest, notifyTarget } from '../../src/appliance/notify-formats.ts';
import { humanMessageFor, notificationFor, notifyRun } from '../../src/appliance/notify.ts';
import { deliver } from '../../src/appliance/ping.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import type { RunRecord } from '../../src/state/history.ts';

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let server: Server;
let origin = '';
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += String(chunk)));
    request.on('end', () => {
      received.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  received.length = 0;
});

const logger = createLogger({ level: 'error', format: 'json' }, new Writable({ write: (_c, _e, done) => done() }));
const fast = { attempts: 1, timeoutMs: 5_000, pairLabel: '/data <-> gdrive:Backup' };
const failed: RunRecord = {
  runId: 'r',
  pair: 'data__gdrive_Backup-0123456789ab',
  startedAt: '2026-12-01T10:00:00.000Z',
  endedAt: '2026-12-01T10:00:05.000Z',
  durationMs: 5000,
  outcome: 'failed',
  exitCode: 1,
  dryRun: false,
  resync: false,
  counts: { copiesToPath1: 1, copiesToPath2: 3, deletesOnPath1: 0, deletesOnPath2: 2, movesOnPath1: 0, movesOnPath2: 0, conflicts: 0, bytesToPath1: 1, bytesToPath2: 3 },
  message: 'rclone copy failed: Failed to copy: open /data/x: permission denied',
};
const EXPECTED_TEXT = [
  '/data <-> gdrive:Backup: run failed (exit 1)',
  '3 copied to path2, 1 copied to path1, 2 deleted, 0 conflicts',
  'First error: rclone copy failed: Failed to copy: open /data/x: permission denied',
].join('\n');
const EXPECTED_TITLE = 'rclonesync: sync failed (/data <-> gdrive:Backup)';

describe('notifyTarget: which URL is which', () => {
  it.each([
    ['ntfy://ntfy.example.com/backups', 'ntfy', 'https://ntfy.example.com/backups'],
    ['ntfy://ntfy.lan:8080/backups?scheme=http', 'ntfy', 'http://ntfy.lan:8080/backups'],
    ['ntfy://:tk_abc@ntfy.example.com/backups', 'ntfy', 'https://:tk_abc@ntfy.example.com/backups'],
    ['https://ntfy.sh/my-backups', 'ntfy', 'https://ntfy.sh/my-backups'],
    ['gotify://gotify.example.com/?token=AbC', 'gotify', 'https://gotify.example.com/message?token=AbC'],
    ['gotify://nas:8080/gotify?token=AbC&scheme=http', 'gotify', 'http://nas:8080/gotify/message?token=AbC'],
    ['https://discord.com/api/webhooks/123/xyz', 'discord', 'https://discord.com/api/webhooks/123/xyz'],
    ['https://discordapp.com/api/webhooks/123/xyz', 'discord', 'https://discordapp.com/api/webhooks/123/xyz'],
    ['https://hooks.slack.com/services/T0/B0/xyz', 'slack', 'https://hooks.slack.com/services/T0/B0/xyz'],
    // A self-hosted ntfy over https cannot be told from a webhook: it is written ntfy://.
    ['https://ntfy.example.com/backups', 'json', 'https://ntfy.example.com/backups'],
    ['https://example.com/hook', 'json', 'https://example.com/hook'],
  ])('%s -> %s', (url, format, target) => {
    expect(notifyTarget(url)).toEqual({ format, url: target });
  });

  it.each([
    ['gotify://gotify.example.com/', /token/],
    ['ntfy://ntfy.example.com/', /ntfy:\/\/host\/topic/],
    ['ntfy://h/t?scheme=ftp', /scheme/],
    ['ftp://example.com/x', /http\(s\), ntfy:\/\/ or gotify:\/\//],
  ])('%s is refused', (url, reason) => {
    expect(() => notifyTarget(url)).toThrow(reason);
  });

  it('a bad URL is a configuration error naming SYNC_NOTIFY_URL', () => {
    expect(() => loadConfig({ SYNC_PATH2: 'r:x', SYNC_NOTIFY_URL: 'gotify://h/' })).toThrow(/SYNC_NOTIFY_URL \(--notify-url\) a Gotify URL is .*\(got "gotify:\/\/h\/"\)/);
    expect(loadConfig({ SYNC_PATH2: 'r:x', SYNC_NOTIFY_URL: 'ntfy://h/t' }).appliance.notifyUrl).toBe('ntfy://h/t');
  });
});

describe('the message for people', () => {
  it('names the pair, the outcome, the counts and the first error', () => {
    expect(humanMessageFor(notificationFor(failed)!, '/data <-> gdrive:Backup')).toEqual({ title: EXPECTED_TITLE, text: EXPECTED_TEXT, urgent: true });
  });

  it('conflicts are not urgent and say what was kept', () => {
    const conflicts: RunRecord = { ...failed, outcome: 'success', message: undefined, exitCode: 0, counts: { ...failed.counts!, conflicts: 2 } };
    const message = humanMessageFor(notificationFor(conflicts)!, 'p');
    expect(message.urgent).toBe(false);
    expect(message.title).toBe('rclonesync: conflicts (p)');
    expect(message.text.split('\n')[2]).toBe('2 files changed on both sides; both versions were kept as conflict copies');
  });

  it('a run stopped before planning says nothing was changed', () => {
    const { counts: _, ...stopped } = failed;
    expect(humanMessageFor(notificationFor(stopped)!, 'p').text.split('\n')[1]).toBe('stopped before planning: nothing was changed');
  });
});

describe('each format as a server receives it', () => {
  it('ntfy: the text as the body, title and priority as headers', async () => {
    expect(await notifyRun(`ntfy://${origin}/backups?scheme=http`, failed, logger, fast)).toBe(true);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ method: 'POST', path: '/backups', body: EXPECTED_TEXT });
    expect(received[0]!.headers).toMatchObject({ title: EXPECTED_TITLE, priority: 'high', 'content-type': 'text/plain; charset=utf-8' });
  });

  it('ntfy with an access token: sent as Basic authentication', async () => {
    expect(await notifyRun(`ntfy://:tk_secret@${origin}/backups?scheme=http`, failed, logger, fast)).toBe(true);
    expect(received[0]!.headers.authorization).toBe(`Basic ${Buffer.from(':tk_secret').toString('base64')}`);
  });

  it('Gotify: JSON title, message and priority to /message?token=', async () => {
    expect(await notifyRun(`gotify://${origin}/?token=AbC&scheme=http`, failed, logger, fast)).toBe(true);
    expect(received[0]).toMatchObject({ method: 'POST', path: '/message?token=AbC' });
    expect(received[0]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(received[0]!.body)).toEqual({ title: EXPECTED_TITLE, message: EXPECTED_TEXT, priority: 8 });
  });

  // Discord and Slack are told apart by their hosts: the request is built for the real URL, then sent here.
  const viaLocal = async (url: string) => {
    const notification = notificationFor(failed)!;
    const request = notifyRequest(notifyTarget(url), notification, humanMessageFor(notification, fast.pairLabel));
    const local = new URL(request.url);
    expect(await deliver('test', `http://${origin}${local.pathname}`, { method: 'POST', body: request.body, contentType: request.contentType, headers: request.headers }, logger, fast)).toBe(true);
    return { request, got: received[0]! };
  };

  it('Discord: {"username", "content"} with the title in bold', async () => {
    const { got } = await viaLocal('https://discord.com/api/webhooks/123/xyz');
    expect(got.path).toBe('/api/webhooks/123/xyz');
    expect(got.headers['content-type']).toBe('application/json');
    expect(JSON.parse(got.body)).toEqual({ username: 'rclonesync', content: `**${EXPECTED_TITLE}**\n${EXPECTED_TEXT}` });
  });

  it('Discord: a long error is cut to the 2000 characters Discord accepts', async () => {
    const notification = notificationFor({ ...failed, message: 'x'.repeat(5000) })!;
    const request = notifyRequest(notifyTarget('https://discord.com/api/webhooks/1/t'), notification, humanMessageFor(notification, 'p'));
    expect((JSON.parse(request.body) as { content: string }).content).toHaveLength(2000);
  });

  it('Slack: {"text"} with the title in bold', async () => {
    const { got } = await viaLocal('https://hooks.slack.com/services/T0/B0/xyz');
    expect(got.path).toBe('/services/T0/B0/xyz');
    expect(JSON.parse(got.body)).toEqual({ text: `*${EXPECTED_TITLE}*\n${EXPECTED_TEXT}` });
  });

  it('any other URL: the JSON webhook, unchanged', async () => {
    expect(await notifyRun(`http://${origin}/hook`, failed, logger, fast)).toBe(true);
    expect(JSON.parse(received[0]!.body)).toEqual(notificationFor(failed));
  });
});
