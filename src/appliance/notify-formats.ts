/**
 * Where SYNC_NOTIFY_URL points decides what is sent, so that the message reads well where people
 * read it. The rule, in this order:
 *   ntfy://host[:port]/topic            ntfy (https; ?scheme=http for a plain-http server; user:pass@ or
 *                                       :token@ for access control)
 *   https://ntfy.sh/topic               ntfy (only the public ntfy.sh host: any other https URL is a
 *                                       JSON webhook, so a self-hosted ntfy is written ntfy://)
 *   gotify://host[:port][/path]?token=T Gotify (https; ?scheme=http), posted to <path>/message
 *   https://discord.com/api/webhooks/…  Discord (also discordapp.com, ptb., canary.)
 *   https://hooks.slack.com/…           Slack incoming webhook
 *   any other http(s) URL               the JSON webhook: the Notification object as is
 * Pure: builds the request, sends nothing.
 */

export type NotifyFormat = 'json' | 'ntfy' | 'gotify' | 'discord' | 'slack';

export interface NotifyTarget {
  readonly format: NotifyFormat;
  /** The http(s) URL the request goes to. */
  readonly url: string;
}

/** What a person reads: a title and a few lines. */
export interface HumanMessage {
  readonly title: string;
  readonly text: string;
  /** A failure or safety stop is more urgent than conflicts. */
  readonly urgent: boolean;
}

export interface NotifyRequest extends NotifyTarget {
  readonly body: string;
  readonly contentType: string;
  readonly headers: Record<string, string>;
}

const DISCORD_HOSTS = new Set(['discord.com', 'discordapp.com', 'ptb.discord.com', 'canary.discord.com']);

/** Throws an Error with a readable reason when the URL is none of the accepted forms. */
export function notifyTarget(value: string): NotifyTarget {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error('must be an http(s), ntfy:// or gotify:// URL');
  }
  const scheme = url.searchParams.get('scheme') ?? 'https';
  if ((url.protocol === 'ntfy:' || url.protocol === 'gotify:') && scheme !== 'https' && scheme !== 'http') {
    throw new Error(`?scheme= must be http or https (got "${scheme}")`);
  }
  if (url.protocol === 'ntfy:') {
    const topic = url.pathname.replace(/^\/+|\/+$/g, '');
    if (!url.host || !topic || topic.includes('/')) throw new Error('an ntfy URL is ntfy://host/topic');
    return { format: 'ntfy', url: rebase(url, scheme, `/${topic}`, []) };
  }
  if (url.protocol === 'gotify:') {
    if (!url.host || !url.searchParams.get('token')) throw new Error('a Gotify URL is gotify://host/?token=<application token>');
    return { format: 'gotify', url: rebase(url, scheme, `${url.pathname.replace(/\/+$/, '')}/message`, ['token']) };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('must be an http(s), ntfy:// or gotify:// URL');
  if (url.hostname === 'ntfy.sh') return { format: 'ntfy', url: value };
  if (DISCORD_HOSTS.has(url.hostname) && url.pathname.startsWith('/api/webhooks/')) return { format: 'discord', url: value };
  if (url.hostname === 'hooks.slack.com') return { format: 'slack', url: value };
  return { format: 'json', url: value };
}

/** The same host, credentials and port under http(s), with a new path and only the `keep` query parameters. */
function rebase(url: URL, scheme: string, pathname: string, keep: readonly string[]): string {
  const target = new URL(`${scheme}://${url.host}`);
  target.username = url.username;
  target.password = url.password;
  target.pathname = pathname;
  for (const name of keep) {
    const value = url.searchParams.get(name);
    if (value !== null) target.searchParams.set(name, value);
  }
  return target.toString();
}

/** The request for `target`: the JSON webhook gets `json` unchanged, the others a human message. */
export function notifyRequest(target: NotifyTarget, json: unknown, message: HumanMessage): NotifyRequest {
  const jsonBody = (body: unknown) => ({ ...target, body: JSON.stringify(body), contentType: 'application/json', headers: {} });
  switch (target.format) {
    case 'json':
      return jsonBody(json);
    case 'ntfy':
      // ntfy takes the text as the body and the rest as headers (which must be ASCII: the title is).
      return {
        ...target,
        body: message.text,
        contentType: 'text/plain; charset=utf-8',
        headers: { title: asciiOnly(message.title), priority: message.urgent ? 'high' : 'default', tags: message.urgent ? 'warning' : 'twisted_rightwards_arrows' },
      };
    case 'gotify':
      return jsonBody({ title: message.title, message: message.text, priority: message.urgent ? 8 : 5 });
    case 'discord':
      // Discord refuses content over 2000 characters.
      return jsonBody({ username: 'rclonesync', content: truncate(`**${message.title}**\n${message.text}`, 2000) });
    case 'slack':
      return jsonBody({ text: `*${message.title}*\n${message.text}` });
  }
}

function asciiOnly(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
