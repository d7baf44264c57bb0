import { pino, type Logger } from 'pino';
import type { LogConfig } from './config.ts';

export type { Logger };

/**
 * Connection strings may carry credentials (":sftp,user=me,pass=xyz:path", "https://user:pw@host").
 * Anything that reaches a log line goes through this first.
 */
export function redact(text: string): string {
  return text
    .replace(/((?:pass|password|key|secret|token|client_secret|access_key_id|secret_access_key|account|session_token|sas_url)\s*=\s*)("[^"]*"|'[^']*'|[^,:\s]*)/gi, '$1***')
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]*@/gi, '$1***@');
}

export function createLogger(config: LogConfig, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level: config.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (config.format === 'pretty' && !destination) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,run,pair' } } });
  }
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options, pino.destination({ dest: 1, sync: true }));
}

/** For commands that must not print log lines (status, health, help). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
