import type { SourceName } from '../core/event';
import type { SourceEnv } from './settings-registry';
import type { TimeZoneVariable } from './settings-registry';

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
  enabled(config: SourceEnv): boolean;
  /**
   * Checks the credential in constant time. Runs before the body is
   * validated (`json` is null when it is not a JSON object), so a caller
   * without credentials learns nothing about what we accept.
   */
  verify(request: UnverifiedWebhook, config: SourceEnv, now: Date): VerifyResult;
  identify(request: IncomingWebhook, config: SourceEnv): EventIdentity;
  /**
   * The request a vendor would send for a bare body of the given type: the
   * headers and path parameters in which it names the type (Enreach's
   * X-Benemen-Event, HCC's URL event). Used where only bodies and types are
   * known: `mappings preview`, the mapping examples, tests.
   */
  syntheticDelivery?(eventType: string | undefined): { headers?: Record<string, string>; params?: Record<string, string> };
  /** From the source's settings: its zone setting for zone-less times, if its times have no zone. */
  readonly timeZone?: { readonly variable: TimeZoneVariable; readonly name: string };
  /** From the source's settings: lower-case names of headers worth keeping with the event. */
  readonly keptHeaders: readonly string[];
}
