import { type Config } from '../../src/config';
import { testConfig } from './config';
import { SECRETS } from './app';
import type { IncomingWebhook } from '../../src/sources/types';

/** The test secrets of every source, plus overrides (e.g. a time zone). */
export function adapterConfig(overrides: Record<string, string | undefined> = {}): Config {
  return testConfig({ ...SECRETS, ...overrides });
}

/** A fixed receipt time for adapter tests. */
export const RECEIVED_AT = new Date('2024-03-05T10:20:30.000Z');

/**
 * One webhook as an adapter sees it: the body as text and parsed, lower-case
 * headers, path parameters and query.
 */
export function webhook(
  body: string | Record<string, unknown>,
  options: { headers?: Record<string, string>; params?: Record<string, string>; query?: string; receivedAt?: Date } = {},
): IncomingWebhook {
  const rawBody = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    rawBody,
    json: JSON.parse(rawBody) as Record<string, unknown>,
    headers: options.headers ?? {},
    params: options.params ?? {},
    query: new URLSearchParams(options.query ?? ''),
    receivedAt: options.receivedAt ?? RECEIVED_AT,
  };
}

