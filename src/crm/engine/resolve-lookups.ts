import type { CrmRecord, LookupRequest } from '../../core/crm-record';
import type { Logger } from '../../log';
import { tolerateRefusedLookup, type Loaded } from './batch-loader';
import type { Deadline } from './deadline';

/** What a lookup loader answers for one key: the id found, or null (nothing, or too many matches). */
export interface LookupHit {
  id: string | null;
}

/** The part of a BatchLoader the lookup step uses. */
export interface LookupSource {
  loadMany(keys: Iterable<string>, deadline: Deadline): Promise<Loaded<LookupHit>>;
  forget(key: string): void;
}

/** Where a CRM looks one lookup up: which loader, under which key. */
export interface LookupRoute {
  source: LookupSource;
  key: string;
  /** Names the loader in the log line when the CRM refuses its lookups. */
  what: string;
  /** Worth asking the CRM (a phone in E.164, an email with an @...): other keys resolve to nothing. */
  fetch: boolean;
  /** Whether the answer applies to this lookup (HubSpot fetches a phone for any association, reads it for contacts only). */
  read: boolean;
}

/** One lookup of a record as resolved for a write. */
export interface ResolvedLookup {
  /** The field or property (WhoId, hubspot_owner_id, contact...). */
  name: string;
  request: LookupRequest;
  /** The id found (or given by the mapping); undefined when nothing was found. */
  id: string | undefined;
  /** The id came from the cache rather than from the CRM during this write: it may have gone stale. */
  cached: boolean;
}

export interface LookupRoutes {
  crm: string;
  logger: Logger;
  /** Loaders asked first, in this order, with their log names (the others in the order records name them). */
  fixed: ReadonlyArray<readonly [LookupSource, string]>;
  /** The route of a lookup; undefined for an id the mapping gave. */
  route: (name: string, lookup: LookupRequest) => LookupRoute | undefined;
}

/**
 * Resolves the lookups of a batch's records through the CRM's batch loaders:
 * every key of the batch is gathered per loader first, so one write costs
 * one request per loader at most (fewer when the cache or another write in
 * flight has the answer). A loader the CRM refuses outright leaves its
 * references unset (tolerateRefusedLookup).
 */
export async function resolveLookups(
  records: readonly CrmRecord[],
  routes: LookupRoutes,
  deadline: Deadline,
): Promise<Map<CrmRecord, ResolvedLookup[]>> {
  const wanted = new Map<LookupSource, { keys: Set<string>; what: string }>();
  for (const [source, what] of routes.fixed) wanted.set(source, { keys: new Set(), what });
  for (const record of records) {
    for (const [name, lookup] of Object.entries(record.lookups)) {
      const route = routes.route(name, lookup);
      if (route === undefined || !route.fetch) continue;
      const entry = wanted.get(route.source);
      if (entry === undefined) wanted.set(route.source, { keys: new Set([route.key]), what: route.what });
      else entry.keys.add(route.key);
    }
  }
  const answers = await Promise.all(
    [...wanted].map(
      async ([source, { keys, what }]) =>
        [source, await tolerateRefusedLookup(source.loadMany(keys, deadline), routes.logger, routes.crm, what)] as const,
    ),
  );
  const loaded = new Map<LookupSource, Loaded<LookupHit>>(answers);

  const out = new Map<CrmRecord, ResolvedLookup[]>();
  for (const record of records) {
    const resolved: ResolvedLookup[] = [];
    for (const [name, lookup] of Object.entries(record.lookups)) {
      if (lookup.by === 'id') {
        resolved.push({ name, request: lookup, id: lookup.value === '' ? undefined : lookup.value, cached: false });
        continue;
      }
      const route = routes.route(name, lookup);
      const hits = route?.read === true ? loaded.get(route.source) : undefined;
      const id = route === undefined ? undefined : hits?.values.get(route.key)?.id;
      resolved.push({
        name,
        request: lookup,
        id: typeof id === 'string' && id !== '' ? id : undefined,
        cached: route !== undefined && hits?.cached.has(route.key) === true,
      });
    }
    out.set(record, resolved);
  }
  return out;
}

/** Drops a refused lookup's answer from its loader's cache, so the next write asks the CRM again. */
export function forgetLookup(routes: LookupRoutes, name: string, lookup: LookupRequest): void {
  const route = routes.route(name, lookup);
  if (route !== undefined) route.source.forget(route.key);
}
