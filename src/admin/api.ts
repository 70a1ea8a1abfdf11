import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { Context, ErrorHandler, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { Config } from '../config';
import { AppError } from '../core/errors';
import type { AppEnv } from '../http/context';
import { jsonErrorResponse } from '../http/error-response';
import { ADMIN_DISABLED_MESSAGE, BEARER_MESSAGES, actorFrom, auditText, checkBearer } from './auth';
import {
  AuditListSchema,
  AuditQuerySchema,
  BulkReplayBodySchema,
  BulkReplaySchema,
  DiscardSchema,
  ErrorSchema,
  EventWithSyncSchema,
  IdParamSchema,
  ListQuerySchema,
  ReplayOneSchema,
  SummarySchema,
  SyncDetailSchema,
  SyncListSchema,
  describeIssues,
} from './schemas';
import type { AdminService } from './service';

/**
 * The admin API under /admin: JSON, Bearer-authenticated, described by
 * /admin/openapi.json (generated from the zod schemas that validate it).
 */

const BEARER_SCHEME = 'AdminToken';
const MAX_BODY_BYTES = 64 * 1024;

/**
 * Guards every API route. It is attached per route (not as a /admin/*
 * middleware) because the page shares the /admin prefix and has its own
 * session auth. It runs before input validation, so a caller without the
 * token learns nothing about what the API accepts. A refused request is
 * audited (the first few per address and window, see AuthAudit.bearerFailed).
 */
export function requireAdminToken(config: Pick<Config, 'ADMIN_TOKEN'>, service: Pick<AdminService, 'bearerFailed'>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Admin answers carry call data (phone numbers, payloads): never cache them.
    c.header('Cache-Control', 'no-store');
    const token = config.ADMIN_TOKEN;
    if (token === undefined) throw new AppError('admin_disabled', ADMIN_DISABLED_MESSAGE);
    const check = checkBearer(c.req.header('authorization'), token);
    if (!check.ok) {
      c.header('WWW-Authenticate', 'Bearer realm="callsync-admin"');
      await service
        .bearerFailed(actorFrom(c, 'api'), { reason: check.reason, method: c.req.method, path: auditText(c.req.path, 200) ?? '' })
        // The caller gets its 401 whatever happens to the audit row.
        .catch((err: unknown) => c.get('log').error({ err }, 'could not audit a refused admin API request'));
      throw new AppError('unauthorized', BEARER_MESSAGES[check.reason]);
    }
    await next();
  };
}

const EXAMPLE_BODY = '{"status":"failed","since":"2h","dryRun":true}';

/**
 * For bodies the API acts on (bulk replay): JSON, and a JSON object, or a
 * clear refusal. Without it a POST with no body and no Content-Type would
 * reach the validator as `{}`.
 */
const requireJsonObject: MiddlewareHandler<AppEnv> = async (c, next) => {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new AppError('unsupported_media_type', `send the body as JSON with Content-Type: application/json, such as ${EXAMPLE_BODY}`);
  }
  // hono keeps the text, so the validator after this reads the same body again.
  const text = await c.req.text();
  if (text.trim() === '') throw new AppError('invalid_json', `the body is empty; send a JSON object such as ${EXAMPLE_BODY}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AppError('invalid_json', 'the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AppError('not_json_object', `the body must be a JSON object such as ${EXAMPLE_BODY}`);
  }
  await next();
};

const errorDoc = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });

/** What any route can answer besides its own errors. */
const commonErrors = {
  401: errorDoc('unauthorized: no token, a malformed Authorization header, or not the admin token.'),
  403: errorDoc('admin_disabled: ADMIN_TOKEN is not set.'),
  500: errorDoc('internal: an unexpected error; the message names the request id to look up in the server log.'),
  503: errorDoc('database_unavailable: the database cannot be reached right now; try again shortly.'),
};

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export function adminApi(config: Config, service: AdminService): OpenAPIHono<AppEnv, {}, '/admin'> {
  const api = new OpenAPIHono<AppEnv>({
    // Every validation failure: 400 validation_failed naming the bad field.
    defaultHook: (result, c) => {
      if (result.success) return undefined;
      const message = describeIssues(result.error, {
        unknown: result.target === 'json' ? 'unknown field' : 'unknown parameter',
        whole: result.target === 'json' ? 'body' : result.target,
      });
      return jsonErrorResponse(c, new AppError('validation_failed', message));
    },
  }).basePath('/admin');

  const auth = requireAdminToken(config, service);
  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new AppError('payload_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    },
  });
  const security = [{ [BEARER_SCHEME]: [] }];

  api.openAPIRegistry.registerComponent('securitySchemes', BEARER_SCHEME, {
    type: 'http',
    scheme: 'bearer',
    description: 'The ADMIN_TOKEN of the service.',
  });

  api.openapi(
    createRoute({
      method: 'get',
      path: '/syncs',
      summary: 'List syncs (one per call), newest change first',
      description:
        'Filters combine with AND. `since`/`until` apply to the time the sync last changed (updated_at). Pages are keyset-paginated: pass `nextCursor` as `cursor`.',
      tags: ['syncs'],
      security,
      middleware: [auth],
      request: { query: ListQuerySchema },
      responses: { 200: json(SyncListSchema, 'A page of syncs.'), 400: errorDoc('validation_failed: a bad filter, named in the message.'), ...commonErrors },
    }),
    async (c) => c.json(await service.listSyncs(c.req.valid('query')), 200),
  );

  api.openapi(
    createRoute({
      method: 'get',
      path: '/syncs/{id}',
      summary: 'One sync: events with raw payloads, mapped activity, CRM payload, attempt history',
      tags: ['syncs'],
      security,
      middleware: [auth],
      request: { params: IdParamSchema },
      description: 'The events carry raw payloads (personal data): every read is written to the audit trail as `sync.view`.',
      responses: { 200: json(SyncDetailSchema, 'The sync.'), 400: errorDoc('validation_failed: the id is not a positive integer.'), 404: errorDoc('not_found'), ...commonErrors },
    }),
    async (c) => c.json(await service.getSync(Number(c.req.valid('param').id), actorFrom(c, 'api')), 200),
  );

  api.openapi(
    createRoute({
      method: 'post',
      path: '/syncs/{id}/replay',
      summary: 'Fold the call again with the current mappings and queue it now',
      description:
        'Stores the newly folded activity, sets the sync pending with a fresh retry budget (attempts 0), puts its failed/discarded events back to pending and wakes the workers. ' +
        'Events stored as ignored whose type the current mappings now sync are folded in and made pending too (`eventsReclassified`). ' +
        'Works from any status (a synced call is written again, e.g. after a mapping fix; a discarded one is un-discarded). No body is needed. ' +
        'If the current mappings still fail on the call, nothing is queued and the answer is 422 `mapping_failed` with the mapping error. ' +
        'If a worker is writing the call at this moment, or the call has no events left to fold, the answer is 409 `conflict`.',
      tags: ['syncs'],
      security,
      middleware: [auth, limitBody],
      request: { params: IdParamSchema },
      responses: {
        200: json(ReplayOneSchema, 'Queued.'),
        400: errorDoc('validation_failed: the id is not a positive integer.'),
        404: errorDoc('not_found'),
        409: errorDoc('conflict: a worker is writing the call right now, or it has no events the current mappings sync.'),
        413: errorDoc('payload_too_large'),
        422: errorDoc('mapping_failed: the current mappings cannot fold the call; nothing was queued.'),
        ...commonErrors,
      },
    }),
    async (c) => c.json(await service.replayOne(Number(c.req.valid('param').id), actorFrom(c, 'api')), 200),
  );

  api.openapi(
    createRoute({
      method: 'post',
      path: '/syncs/{id}/discard',
      summary: 'Stop trying to sync the call',
      description:
        'Sets the sync and its not-yet-synced events discarded; the worker never claims it again (a new webhook for the call, or a replay, brings it back). ' +
        'A synced call cannot be discarded (409), nor one a worker is writing right now (409).',
      tags: ['syncs'],
      security,
      middleware: [auth, limitBody],
      request: { params: IdParamSchema },
      responses: {
        200: json(DiscardSchema, 'Discarded.'),
        400: errorDoc('validation_failed: the id is not a positive integer.'),
        404: errorDoc('not_found'),
        409: errorDoc('conflict: already synced, or being written right now.'),
        413: errorDoc('payload_too_large'),
        ...commonErrors,
      },
    }),
    async (c) => c.json(await service.discardOne(Number(c.req.valid('param').id), actorFrom(c, 'api')), 200),
  );

  api.openapi(
    createRoute({
      method: 'post',
      path: '/syncs/replay',
      summary: 'Bulk replay: queue every call matching a filter',
      description:
        'Needs a JSON object body with an explicit `status` (nothing is replayed by default, so an empty or mistyped request cannot replay a whole backlog). ' +
        'Matches on status, source and a window on updated_at, and queues the calls in batches of short transactions; the audit row is kept current in each batch\'s transaction. ' +
        'The worker folds each call with the mappings current when it writes it; ignored events whose type the current mappings now sync are made pending (`eventsReclassified`). ' +
        'Calls a worker is writing at that moment are left alone and counted in `skipped`. ' +
        'With `dryRun: true` nothing changes: the answer has the count and the first matching calls.',
      tags: ['syncs'],
      security,
      middleware: [auth, limitBody, requireJsonObject],
      request: { body: { required: true, content: { 'application/json': { schema: BulkReplayBodySchema } } } },
      responses: {
        200: json(BulkReplaySchema, 'How many calls were (or would be) replayed.'),
        400: errorDoc('validation_failed (a bad or missing field, named), invalid_json (empty or malformed body) or not_json_object.'),
        413: errorDoc('payload_too_large'),
        415: errorDoc('unsupported_media_type: the body is not sent as application/json.'),
        ...commonErrors,
      },
    }),
    async (c) => c.json(await service.replayBulk(c.req.valid('json'), actorFrom(c, 'api')), 200),
  );

  api.openapi(
    createRoute({
      method: 'get',
      path: '/events/{id}',
      summary: 'One raw event',
      tags: ['events'],
      security,
      middleware: [auth],
      request: { params: IdParamSchema },
      description: 'The raw body is personal data: every read is written to the audit trail as `event.view`.',
      responses: {
        200: json(EventWithSyncSchema, 'The event, with its raw body.'),
        400: errorDoc('validation_failed: the id is not a positive integer.'),
        404: errorDoc('not_found'),
        ...commonErrors,
      },
    }),
    async (c) => c.json(await service.getEvent(Number(c.req.valid('param').id), actorFrom(c, 'api')), 200),
  );

  api.openapi(
    createRoute({
      method: 'get',
      path: '/summary',
      summary: 'Sync counts by status and by source',
      tags: ['syncs'],
      security,
      middleware: [auth],
      responses: { 200: json(SummarySchema, 'The counts.'), ...commonErrors },
    }),
    async (c) => c.json(await service.summary(), 200),
  );

  api.openapi(
    createRoute({
      method: 'get',
      path: '/audit',
      summary: 'The newest admin audit entries (who did what, from where)',
      tags: ['audit'],
      security,
      middleware: [auth],
      request: { query: AuditQuerySchema },
      responses: { 200: json(AuditListSchema, 'Newest first.'), 400: errorDoc('validation_failed: limit is not an integer from 1 to 500.'), ...commonErrors },
    }),
    async (c) => c.json({ items: await service.recentAudit(c.req.valid('query').limit) }, 200),
  );

  // The document itself sits behind the token like every admin route.
  api.openapi(
    createRoute({
      method: 'get',
      path: '/openapi.json',
      summary: 'This document',
      tags: ['meta'],
      security,
      middleware: [auth],
      responses: { 200: json(z.looseObject({ openapi: z.string() }), 'The OpenAPI 3.1 document of the admin API.'), ...commonErrors },
    }),
    // The generator's OpenAPIObject type is wider than JSON; the document is plain JSON.
    (c) => c.json(openApiDocument(api) as unknown as { openapi: string; [key: string]: unknown }, 200),
  );

  api.onError(apiErrorHandler);
  return api;
}

export function openApiDocument(api: OpenAPIHono<AppEnv, {}, '/admin'>) {
  return api.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'callsync admin API',
      version: '1',
      description:
        'Find why a call did not reach the CRM, and replay it. Every route needs `Authorization: Bearer <ADMIN_TOKEN>`; errors are `{ "error": { "code", "message" } }`.',
    },
  });
}

/**
 * Errors of the admin API, answered by the app's one error helper; hono's
 * own HTTPExceptions (a malformed JSON body, a wrong Content-Type, a body
 * too large) are first translated into the AppErrors they mean.
 */
export const apiErrorHandler: ErrorHandler<AppEnv> = (err, c: Context<AppEnv>) =>
  jsonErrorResponse(c, err instanceof HTTPException ? fromHttpException(err) : err);

function fromHttpException(err: HTTPException): AppError {
  switch (err.status) {
    case 415:
      return new AppError('unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
    case 413:
      return new AppError('payload_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    case 400:
      return new AppError('invalid_json', 'the body is not valid JSON');
    default:
      return new AppError('bad_request', err.message || 'bad request');
  }
}
