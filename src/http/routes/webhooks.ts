import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { Config } from '../../config';
import { AppError } from '../../core/errors';
import type { MappingSet } from '../../mapping/types';
import type { Metrics } from '../../metrics';
import { IngestError, type IngestQueue } from '../../outbox/ingest';
import { SOURCES, type SourceAdapter } from '../../sources';
import { isSourceName } from '../../core/event';
import { parseJsonObject, readBodyText } from '../body';
import type { AppEnv } from '../context';

export interface WebhookDeps {
  config: Config;
  metrics: Metrics;
  ingest: IngestQueue;
  mappings: { current(): MappingSet };
  now: () => Date;
}

/**
 * POST /webhooks/:source (and /webhooks/hcc/:event). The answer is 200 only
 * once the event is committed (or was already: a duplicate); every refusal
 * says why in `{ error: { code, message } }`.
 */
export function webhookRoutes(deps: WebhookDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post('/hcc/:event', (c) => receive(c, SOURCES.hcc, deps));
  app.post('/hcc', () => {
    throw new AppError('unknown_event', `HCC posts each event to its own URL: /webhooks/hcc/<${SOURCES.hcc.pathEvents?.join('|')}>`);
  });
  app.post('/:source', (c) => {
    const name = c.req.param('source');
    if (!isSourceName(name)) {
      deps.metrics.webhooksRejected.inc({ source: 'unknown', reason: 'not_found' });
      throw new AppError('unknown_source', `unknown source '${name}'; known sources: ${Object.keys(SOURCES).join(', ')}`);
    }
    return receive(c, SOURCES[name], deps);
  });
  const postOnly = (c: Context<AppEnv>) => {
    c.header('Allow', 'POST');
    throw new AppError('method_not_allowed', `${c.req.method} is not allowed here; webhooks are POSTed`);
  };
  app.all('/hcc/:event', postOnly);
  app.all('/:source', postOnly);
  return app;
}

async function receive(c: Context<AppEnv>, adapter: SourceAdapter, deps: WebhookDeps): Promise<Response> {
  const { config, metrics } = deps;
  const log = c.get('log');
  const reject = (reason: string, error: AppError): never => {
    metrics.webhooksRejected.inc({ source: adapter.name, reason });
    log.info({ source: adapter.name, code: error.code, reason: error.message }, 'webhook refused');
    throw error;
  };

  const params = c.req.param() as Record<string, string>;
  if (adapter.pathEvents && !adapter.pathEvents.includes(params.event ?? '')) {
    reject('not_found', new AppError('unknown_event', `unknown ${adapter.name} event '${params.event}'; expected one of ${adapter.pathEvents.join(', ')}`));
  }

  let rawBody: string;
  try {
    rawBody = await readBodyText(c.req.raw, config.MAX_BODY_BYTES, (c.env as Partial<HttpBindings> | undefined)?.incoming);
  } catch (err) {
    if (err instanceof AppError && err.code === 'payload_too_large') {
      // We stop reading; closing the connection spares us the rest of the upload.
      c.header('Connection', 'close');
      return reject('too_large', err);
    }
    if (err instanceof AppError) return reject('bad_request', err);
    throw err;
  }

  const receivedAt = deps.now();
  const headers = requestHeaders(c);
  const query = queryOf(c.req.url);
  const parsed = parseJsonObject(rawBody);
  const verdict = adapter.verify(
    { rawBody, headers, params, query, receivedAt, json: parsed.ok ? parsed.json : null },
    config,
    receivedAt,
  );
  if (!verdict.ok) reject('unauthorized', new AppError('unauthorized', `${adapter.name}: ${verdict.reason}`));
  if (!parsed.ok) return reject('bad_request', parsed.error);

  const request = { rawBody, headers, params, query, receivedAt, json: parsed.json };
  const identity = adapter.identify(request, config);
  // Vendor ids are GUIDs and short numbers; a key thousands of characters
  // long is not an id, and would not fit the index that makes re-deliveries
  // no-ops.
  for (const [what, key] of [['event id (dedupe key)', identity.dedupeKey], ['call id', identity.callKey]] as const) {
    if (key !== null && key.length > MAX_KEY_LENGTH) {
      reject('bad_request', new AppError('bad_request', `the event's ${what} is ${key.length} characters long; at most ${MAX_KEY_LENGTH} are accepted`));
    }
  }
  const disposition = deps.mappings.current().classify(adapter.name, identity.eventType);
  if (disposition === 'drop') {
    metrics.webhooksAccepted.inc({ source: adapter.name, disposition });
    return c.body(null, 200);
  }

  try {
    const outcome = await deps.ingest.submit({
      source: adapter.name,
      eventType: identity.eventType,
      dedupeKey: identity.dedupeKey,
      callKey: identity.callKey ?? `event:${identity.dedupeKey}`,
      vendorTime: identity.vendorTime,
      vendorTimeRaw: identity.vendorTimeRaw,
      receivedAt,
      rawBody,
      payload: parsed.json,
      headers: pick(headers, adapter.keptHeaders),
      status: disposition === 'sync' ? 'pending' : 'ignored',
    });
    if (outcome === 'duplicate') metrics.webhooksDuplicated.inc({ source: adapter.name });
    else metrics.webhooksAccepted.inc({ source: adapter.name, disposition });
    log.debug({ source: adapter.name, eventType: identity.eventType, outcome }, 'webhook stored');
  } catch (err) {
    if (err instanceof IngestError) {
      if (err.failure === 'data') {
        // The database's own message can quote the body: it goes to the log, masked, not to the vendor.
        log.info({ source: adapter.name, err }, 'the database refused the event');
        return reject('bad_request', new AppError('bad_request', 'the event could not be stored: the database refused one of its values as text or JSON'));
      }
      metrics.webhooksRejected.inc({ source: adapter.name, reason: 'unavailable' });
      throw new AppError('database_unavailable', 'the event could not be stored right now; please retry', { cause: err });
    }
    throw err;
  }
  return c.body(null, 200);
}

/**
 * Request headers with lower-case names. Under @hono/node-server, Node has
 * already built exactly that object (IncomingMessage.headers); using it
 * spares building a Web Headers object on every webhook. Elsewhere (tests'
 * app.request) the Headers are copied.
 */
function requestHeaders(c: Context<AppEnv>): Record<string, string> {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  const out: Record<string, string> = {};
  if (incoming?.headers) {
    for (const [name, value] of Object.entries(incoming.headers)) {
      if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return out;
  }
  c.req.raw.headers.forEach((value, name) => {
    out[name.toLowerCase()] = value;
  });
  return out;
}

const MAX_KEY_LENGTH = 1_000;

function queryOf(url: string): URLSearchParams {
  const start = url.indexOf('?');
  return new URLSearchParams(start < 0 ? '' : url.slice(start + 1));
}

function pick(headers: Record<string, string>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
