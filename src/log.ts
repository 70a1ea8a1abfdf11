import { pino, type Logger, type LoggerOptions } from 'pino';
import { credentialHeaders } from './sources/settings-registry';

export type { Logger };

/**
 * pino JSON logs. Secrets and phone numbers never reach a log line: callers
 * log ids and masked numbers (see `maskPhone`), and these paths are redacted
 * as a second line of defence should a header bag or config object slip in.
 * The header names come from every source's settings (its credential headers).
 */
const REDACT_PATHS = [
  ...new Set(['authorization', ...credentialHeaders, 'cookie'].map((name) => `headers[${JSON.stringify(name)}]`)),
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
    serializers: { err: serializeError },
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

/** Digit runs that could be a phone number (7+ digits, separators allowed). */
const PHONE_LIKE = /\+?\d(?:[\d\s().-]{5,}\d)/g;

/**
 * Masks phone-like digit runs in free text. Error messages from Postgres or a
 * CRM may quote vendor data (a JSON snippet, a search term); this keeps a
 * full number out of the log even then. It may also shorten a long id or a
 * date in a message, which is the cheaper mistake.
 */
export function scrubPhones(text: string): string {
  return text.replace(PHONE_LIKE, (match) => {
    const digits = match.replace(/\D/g, '');
    return digits.length >= 7 ? (maskPhone(match) ?? '…') : match;
  });
}

function serializeError(err: unknown): unknown {
  const base = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (typeof base !== 'object' || base === null) return base;
  const out: Record<string, unknown> = { ...base };
  for (const key of ['message', 'stack', 'detail', 'query']) {
    const value = out[key];
    if (typeof value === 'string') out[key] = scrubPhones(value);
  }
  return out;
}
