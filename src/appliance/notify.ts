/**
 * A notification (SYNC_NOTIFY_URL) when a run needs attention: it failed, a safety gate stopped
 * it, or it produced conflict copies. A JSON webhook gets the Notification object; ntfy, Gotify,
 * Discord and Slack get a short message for a person (notify-formats.ts says which is which).
 * Delivered like the pings (timeout, retries) and, like them, never able to fail a run.
 */
import type { Logger } from '../log.ts';
import type { PlanCounts } from '../model.ts';
import type { RunRecord } from '../state/history.ts';
import { notifyRequest, notifyTarget, type HumanMessage } from './notify-formats.ts';
import { deliver, type DeliveryOptions } from './ping.ts';

export type NotifyEvent = 'failure' | 'safety-stop' | 'conflicts';

export interface Notification {
  readonly event: NotifyEvent;
  readonly pair: string;
  /** A named pair's name (SYNC_PAIR_<NAME>_…, issue 11). */
  readonly name?: string;
  readonly outcome: string;
  readonly exitCode: number;
  readonly counts: PlanCounts | null;
  readonly message: string;
  readonly startedAt: string;
  readonly endedAt: string;
}

/**
 * Which event a finished run is, if any. Success without conflicts is quiet, and so is a run that
 * found the lock held (it did nothing; the run holding the lock reports).
 */
export function notificationFor(report: RunRecord): Notification | undefined {
  let event: NotifyEvent;
  let message: string;
  switch (report.outcome) {
    case 'locked':
      return undefined;
    case 'success': {
      const conflicts = report.counts?.conflicts ?? 0;
      if (conflicts === 0) return undefined;
      event = 'conflicts';
      message = `${conflicts} file${conflicts === 1 ? '' : 's'} changed on both sides${report.dryRun ? ' (dry run: nothing was changed)' : '; both versions were kept as conflict copies'}`;
      break;
    }
    case 'safety-stop':
      event = 'safety-stop';
      message = report.message;
      break;
    default:
      event = 'failure';
      message = report.message;
  }
  return {
    event,
    pair: report.pair,
    outcome: report.outcome,
    exitCode: report.exitCode,
    counts: report.counts ?? null,
    message,
    startedAt: report.startedAt,
    endedAt: report.endedAt,
  };
}

/** The few lines a person reads: which pair, what happened, the counts, the first error. */
export function humanMessageFor(notification: Notification, pairLabel: string): HumanMessage {
  const c = notification.counts;
  const headline = { failure: 'sync failed', 'safety-stop': 'safety stop, a person must look', conflicts: 'conflicts' }[notification.event];
  const lines = [
    `${pairLabel}: run ${notification.outcome} (exit ${notification.exitCode})`,
    c
      ? `${c.copiesToPath2} copied to path2, ${c.copiesToPath1} copied to path1, ${c.deletesOnPath1 + c.deletesOnPath2} deleted, ${c.conflicts} conflict${c.conflicts === 1 ? '' : 's'}`
      : 'stopped before planning: nothing was changed',
    notification.event === 'conflicts' ? notification.message : `First error: ${notification.message}`,
  ];
  return { title: `rclonesync: ${headline} (${pairLabel})`, text: lines.join('\n'), urgent: notification.event !== 'conflicts' };
}

export interface NotifyOptions extends DeliveryOptions {
  /** How the pair is named in a message for people ("/data <-> gdrive:Backup"); the pair id otherwise. */
  readonly pairLabel?: string;
  /** A named pair's name: in the JSON body as `name`. */
  readonly pairName?: string;
}

/** Posts the notification for this run, if it calls for one. Never throws; true when nothing was due or it was delivered. */
export async function notifyRun(url: string, report: RunRecord, logger: Logger, options: NotifyOptions = {}): Promise<boolean> {
  const found = notificationFor(report);
  if (!found) return true;
  const notification: Notification = options.pairName ? { ...found, name: options.pairName } : found;
  let request;
  try {
    request = notifyRequest(notifyTarget(url), notification, humanMessageFor(notification, options.pairLabel ?? notification.pair));
  } catch (error) {
    // The setting was checked at start; this is only reached by a URL given some other way.
    logger.warn({ problem: (error as Error).message }, 'SYNC_NOTIFY_URL cannot be used; the run is not affected');
    return false;
  }
  return deliver(
    `${notification.event} notification`,
    request.url,
    { method: 'POST', body: request.body, contentType: request.contentType, headers: request.headers },
    logger,
    options,
  );
}
