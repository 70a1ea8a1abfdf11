import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { Config } from '../../config';
import { AppError } from '../../core/errors';
import type { MappingSet } from '../../mapping/mapping-set';
import type { Metrics } from '../../metrics';
import type { IngestQueue } from '../../outbox/ingest';
import { SOURCES, type SourceAdapter } from '../../sources';
import { isSourceName } from '../../core/event';
import { receiveWebhook, type IntakeDeps } from '../../intake/pipeline';
import type { AppEnv } from '../context';

export interface WebhookDeps {
  config: Config;
  metrics: Metrics;
  ingest: IngestQueue;
  mappings: { current(): MappingSet };
  now: () => Date;
}

/**
 * POST /webhooks/:source (and /webhooks/:source/:event where the URL names the
 * event, as HCC does): hono adapted to the
 * intake pipeline (src/intake/pipeline.ts). The answer is 200 only once the
 * event is committed (or was already: a duplicate); every refusal says why in
 * `{ error: { code, message } }`.
 */
export function webhookRoutes(deps: WebhookDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const intake: IntakeDeps = {
    config: deps.config,
    now: deps.now,
    classify: (source, eventType) => deps.mappings.current().classify(source, eventType),
    submit: (event) => deps.ingest.submit(event),
  };
  const receive = (c: Context<AppEnv>, adapter: SourceAdapter) => receiveOne(c, adapter, deps.metrics, intake);

  // A source whose URL names the event (HCC): /webhooks/<source>/<event>.
  const pathEventSources = Object.values(SOURCES).filter((adapter) => adapter.pathEvents !== undefined);
  for (const adapter of pathEventSources) {
    app.post(`/${adapter.name}/:event`, (c) => receive(c, adapter));
    app.post(`/${adapter.name}`, () => {
      throw new AppError('unknown_event', `${adapter.name.toUpperCase()} posts each event to its own URL: /webhooks/${adapter.name}/<${adapter.pathEvents?.join('|')}>`);
    });
  }
  app.post('/:source', (c) => {
    const name = c.req.param('source');
    if (!isSourceName(name)) {
      deps.metrics.webhooksRejected.inc({ source: 'unknown', reason: 'not_found' });
      throw new AppError('unknown_source', `unknown source '${name}'; known sources: ${Object.keys(SOURCES).join(', ')}`);
    }
    return receive(c, SOURCES[name]);
  });
  const postOnly = (c: Context<AppEnv>) => {
    c.header('Allow', 'POST');
    throw new AppError('method_not_allowed', `${c.req.method} is not allowed here; webhooks are POSTed`);
  };
  for (const adapter of pathEventSources) app.all(`/${adapter.name}/:event`, postOnly);
  app.all('/:source', postOnly);
  return app;
}

async function receiveOne(c: Context<AppEnv>, adapter: SourceAdapter, metrics: Metrics, intake: IntakeDeps): Promise<Response> {
  const log = c.get('log');
  const result = await receiveWebhook(
    adapter,
    {
      request: c.req.raw,
      incoming: (c.env as Partial<HttpBindings> | undefined)?.incoming,
      headers: requestHeaders(c),
      params: c.req.param() as Record<string, string>,
      query: queryOf(c.req.url),
    },
    intake,
  );
  if (!result.ok) {
    metrics.webhooksRejected.inc({ source: adapter.name, reason: result.reason });
    // A database outage is ours, not the vendor's: the error handler logs it.
    if (result.reason === 'unavailable') throw result.error;
    // We stopped reading; closing the connection spares us the rest of the upload.
    if (result.reason === 'too_large') c.header('Connection', 'close');
    if (result.databaseError) log.info({ source: adapter.name, err: result.databaseError }, 'the database refused the event');
    log.info({ source: adapter.name, code: result.error.code, reason: result.error.message }, 'webhook refused');
    throw result.error;
  }
  if (result.outcome === 'duplicate') metrics.webhooksDuplicated.inc({ source: adapter.name });
  else metrics.webhooksAccepted.inc({ source: adapter.name, disposition: result.disposition });
  if (result.outcome !== 'dropped') log.debug({ source: adapter.name, eventType: result.eventType, outcome: result.outcome }, 'webhook stored');
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

function queryOf(url: string): URLSearchParams {
  const start = url.indexOf('?');
  return new URLSearchParams(start < 0 ? '' : url.slice(start + 1));
}
