import type { SourceName } from '../core/event';
import type { Config } from '../config';

/** What the adapter sees of one webhook request. */
export interface IncomingWebhook {
  /** The body exactly as received (UTF-8). */
  rawBody: string;
  /** The body parsed; always a JSON object by the time an adapter sees it. */
  json: Record<string, unknown>;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** Path parameters, e.g. HCC's `event`. */
  params: Record<string, string>;
  query: URLSearchParams;
  receivedAt: Date;
}

export type UnverifiedWebhook = Omit<IncomingWebhook, 'json'> & { json: Record<string, unknown> | null };

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** How one event is filed in the outbox. */
export interface EventIdentity {
  eventType: string;
  dedupeKey: string;
  /** The call/interaction the event belongs to; null when the vendor gives none. */
  callKey: string | null;
  /** The vendor's time, parsed; null when missing or malformed. */
  vendorTime: Date | null;
  /** The vendor's time value exactly as sent. */
  vendorTimeRaw: string | null;
}

/**
 * One adapter per contact-center platform: who may post (verify), what the
 * event is (identify) and which headers are safe to keep.
 */
export interface SourceAdapter {
  readonly name: SourceName;
  /** The vendor product, for logs and docs. */
  readonly title: string;
  /** The path parameter values this source accepts (HCC's event names), if it has one. */
  readonly pathEvents?: readonly string[];
  /** True when a credential is configured; a source without one answers 401 to everything. */
  enabled(config: Config): boolean;
  /**
   * Checks the credential in constant time. Runs before the body is
   * validated (`json` is null when it is not a JSON object), so a caller
   * without credentials learns nothing about what we accept.
   */
  verify(request: UnverifiedWebhook, config: Config, now: Date): VerifyResult;
  identify(request: IncomingWebhook, config: Config): EventIdentity;
  /**
   * For a vendor whose times carry no zone: the environment variable that
   * names the account's IANA zone (default UTC), and the setting name a
   * mapping file uses for it (`zone: $<name>`) and an examples file sets.
   */
  readonly timeZone?: { readonly variable: 'HCC_TIMEZONE' | 'UCONTACT_TIMEZONE'; readonly name: string };
  /** Lower-case names of headers worth keeping with the event; credentials are never listed. */
  readonly keptHeaders: readonly string[];
}
