import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * pino JSON logs. Secrets and phone numbers never reach a log line: callers
 * log ids and masked numbers (see `maskPhone`), and these paths are redacted
 * as a second line of defence should a header bag or config object slip in.
 */
const REDACT_PATHS = [
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["x-benemen-token"]',
  'headers["x-webexcc-signature"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.accessToken',
  '*.refreshToken',
  '*.clientSecret',
  '*.privateKey',
  '*.password',
  '*.token',
];

export function createLogger(options: { level: string; name?: string; destination?: NodeJS.WritableStream }): Logger {
  const opts: LoggerOptions = {
    level: options.level,
    base: { service: options.name ?? 'callsync', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
  return options.destination ? pino(opts, options.destination as pino.DestinationStream) : pino(opts);
}

/** '+358501231234' → '+3585…34': enough to tell numbers apart in a log, not enough to dial. */
export function maskPhone(phone: string | null | undefined): string | null {
  if (phone === null || phone === undefined || phone === '') return null;
  const digits = phone.replace(/[^\d+]/g, '');
  if (digits.length <= 4) return '…';
  return `${digits.slice(0, 4)}…${digits.slice(-2)}`;
}
