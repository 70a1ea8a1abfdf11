import { z } from '@hono/zod-openapi';
import type { ZodError } from 'zod';
import { SYNC_STATUSES } from '../db/schema';
import { ERROR_CODES } from '../core/errors';
import { SOURCE_NAMES } from '../core/event';
import { TIME_BOUND_HELP, timeBoundProblem } from './time-bounds';

/**
 * The admin's inputs and outputs, as zod schemas. The same schemas validate
 * requests (API, page forms, CLI flags) and generate /admin/openapi.json, so
 * the document cannot drift from what the server accepts.
 */

export const MAX_PAGE_SIZE = 200;
/** How many matching calls a dry run lists. */
export const DRY_RUN_SAMPLE = 100;

const statusSchema = z
  .enum(SYNC_STATUSES, { error: `expected one of ${SYNC_STATUSES.join(', ')}` })
  .openapi({ description: 'Sync status of the call.' });

const sourceSchema = z
  .enum(SOURCE_NAMES, { error: `expected one of ${SOURCE_NAMES.join(', ')}` })
  .openapi({ description: 'The contact-center platform the call came from.' });

const timeBound = (description: string) =>
  z
    .string({ error: TIME_BOUND_HELP })
    .max(64, { error: TIME_BOUND_HELP })
    .superRefine((value, ctx) => {
      // Out-of-range bounds (999999w, 0000-01-01) are refused here, by name, rather than by Postgres as a 500.
      const problem = timeBoundProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .openapi({ description, examples: ['2h', '30m', '7d', '2025-11-21T08:00:00Z', '2025-11-21'] });

/**
 * C0 controls and DEL. Postgres refuses NUL in a text parameter outright
 * (a 500 before this check), and none of them belongs in a search.
 */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
export const CONTROL_CHARACTER_MESSAGE = 'must not contain control characters (such as NUL, tabs or line breaks)';

const sinceSchema = timeBound('Calls updated at or after this time: relative (30m, 2h, 7d ago), ISO 8601 with a zone, or a date (midnight UTC).');
const untilSchema = timeBound('Calls updated before this time; same forms as `since`.');

export const ListQuerySchema = z
  .strictObject({
    status: statusSchema.optional(),
    source: sourceSchema.optional(),
    since: sinceSchema.optional(),
    until: untilSchema.optional(),
    q: z
      .string({ error: 'expected text' })
      .trim()
      .min(1, { error: 'must not be empty' })
      .max(200, { error: 'must be at most 200 characters' })
      .refine((text) => !CONTROL_CHARACTER.test(text), { error: CONTROL_CHARACTER_MESSAGE })
      .refine((text) => text.isWellFormed(), { error: 'must be valid Unicode text (it has a lone surrogate)' })
      .optional()
      .openapi({ description: 'Text to find in the call key, the external id (`source:callKey`), the CRM id or the last error (case-insensitive).' }),
    cursor: z
      .string({ error: 'expected the nextCursor of a previous page' })
      .max(200, { error: 'is not a cursor this server issued' })
      .optional()
      .openapi({ description: 'The `nextCursor` of the previous page.' }),
    limit: z.coerce
      .number({ error: `must be an integer from 1 to ${MAX_PAGE_SIZE}` })
      .int({ error: `must be an integer from 1 to ${MAX_PAGE_SIZE}` })
      .min(1, { error: `must be an integer from 1 to ${MAX_PAGE_SIZE}` })
      .max(MAX_PAGE_SIZE, { error: `must be an integer from 1 to ${MAX_PAGE_SIZE}` })
      .default(50)
      .openapi({ description: `Page size, at most ${MAX_PAGE_SIZE}.`, example: 50 }),
  })
  .openapi('SyncListQuery');
export type ListQuery = z.infer<typeof ListQuerySchema>;

export const BulkReplayBodySchema = z
  .strictObject({
    // Required, with no default: a bare POST must never replay a whole status by accident.
    status: z
      .enum(SYNC_STATUSES, {
        error: (issue) =>
          issue.input === undefined
            ? `required: name the status to replay (${SYNC_STATUSES.join(', ')}); nothing is replayed by default`
            : `expected one of ${SYNC_STATUSES.join(', ')}`,
      })
      .openapi({ description: 'Which calls to replay (required: nothing is replayed by default).' }),
    source: sourceSchema.optional(),
    since: sinceSchema.optional(),
    until: untilSchema.optional(),
    dryRun: z
      .boolean({ error: 'expected true or false' })
      .default(false)
      .openapi({ description: 'Only count and list what would be replayed; change nothing.' }),
  })
  .openapi('BulkReplayRequest');
export type BulkReplayInput = z.infer<typeof BulkReplayBodySchema>;

export const IdParamSchema = z.object({
  id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, { error: 'must be a positive integer id' })
    .openapi({ param: { name: 'id', in: 'path' }, example: '42' }),
});

export const AuditQuerySchema = z.strictObject({
  limit: z.coerce
    .number({ error: 'must be an integer from 1 to 500' })
    .int({ error: 'must be an integer from 1 to 500' })
    .min(1, { error: 'must be an integer from 1 to 500' })
    .max(500, { error: 'must be an integer from 1 to 500' })
    .default(50)
    .openapi({ description: 'How many of the newest entries, at most 500.' }),
});

// ---- responses ----

const isoTime = z.string().openapi({ format: 'date-time', example: '2025-11-21T08:00:00.000Z' });
const json = z.unknown().openapi({ description: 'Any JSON value.' });

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES).openapi({ example: 'validation_failed', description: 'Stable machine-readable code; the HTTP status follows from it.' }),
      message: z.string().openapi({ example: 'status: expected one of pending, synced, failed, discarded' }),
    }),
  })
  .openapi('Error');

export const SyncSummarySchema = z
  .object({
    id: z.number().int(),
    source: z.string(),
    callKey: z.string(),
    externalId: z.string().openapi({ description: '`source:callKey`, the external id written to the CRM.' }),
    target: z.string().nullable().openapi({ description: 'The CRM target of the last attempt.' }),
    status: statusSchema,
    attempts: z.number().int().openapi({ description: 'Attempts used of the retry budget (reset by a replay and by success).' }),
    lastError: z.string().nullable(),
    lastErrorKind: z.string().nullable().openapi({ description: 'transient, auth, quota, permanent or mapping.' }),
    lastHttpStatus: z.number().int().nullable(),
    crmId: z.string().nullable(),
    crmFollowupId: z.string().nullable(),
    nextAttemptAt: isoTime,
    leasedUntil: isoTime.nullable().openapi({ description: 'Set while a worker is writing the call to the CRM.' }),
    firstEventAt: isoTime,
    lastEventAt: isoTime,
    updatedAt: isoTime,
    syncedAt: isoTime.nullable(),
  })
  .openapi('SyncSummary');
export type SyncSummary = z.infer<typeof SyncSummarySchema>;

export const SyncListSchema = z
  .object({
    items: z.array(SyncSummarySchema),
    nextCursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
  })
  .openapi('SyncList');
export type SyncList = z.infer<typeof SyncListSchema>;

export const EventSchema = z
  .object({
    id: z.number().int(),
    source: z.string(),
    eventType: z.string(),
    dedupeKey: z.string(),
    callKey: z.string(),
    status: z.string().openapi({ description: 'pending, synced, failed, ignored or discarded.' }),
    receivedAt: isoTime,
    vendorTime: isoTime.nullable(),
    vendorTimeRaw: z.string().nullable().openapi({ description: "The vendor's time exactly as sent." }),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    headers: z.record(z.string(), z.string()).openapi({ description: 'The allow-listed request headers kept with the event (never a credential).' }),
    payload: json,
    rawBody: z.string().openapi({ description: 'The request body exactly as received.' }),
  })
  .openapi('Event');
export type EventView = z.infer<typeof EventSchema>;

export const EventWithSyncSchema = EventSchema.extend({
  syncId: z.number().int().nullable().openapi({ description: 'The sync of the call the event belongs to (null for an ignored event type).' }),
}).openapi('EventWithSync');

export const AttemptSchema = z
  .object({
    attempt: z.number().int(),
    target: z.string(),
    workerId: z.string(),
    startedAt: isoTime,
    finishedAt: isoTime,
    outcome: z.string().openapi({ description: 'synced, retry or failed.' }),
    errorKind: z.string().nullable(),
    error: z.string().nullable(),
    httpStatus: z.number().int().nullable(),
    crmResponse: json,
  })
  .openapi('Attempt');
export type AttemptView = z.infer<typeof AttemptSchema>;

export const PreviewSchema = z
  .union([z.object({ ok: z.literal(true), activity: json }), z.object({ ok: z.literal(false), error: z.string() })])
  .openapi('Preview', { description: 'What the current mappings make of the call now: the activity a replay would store, or why they fail.' });
export type Preview = z.infer<typeof PreviewSchema>;

export const SyncDetailSchema = z
  .object({
    sync: SyncSummarySchema.extend({
      version: z.number().int().openapi({ description: 'Events folded into the call so far.' }),
      lockedBy: z.string().nullable(),
      lastResponse: json.openapi({ description: "The CRM's response to the last attempt." }),
      activity: json.openapi({ description: 'The mapped (folded) activity of the last attempt or replay.' }),
      crmPayload: json.openapi({ description: 'Exactly what the last attempt sent to the CRM (dry-run: what it would send).' }),
    }),
    preview: PreviewSchema,
    events: z.array(EventSchema).openapi({ description: 'Every event of the call, oldest first.' }),
    eventsTruncated: z.boolean(),
    attempts: z.array(AttemptSchema).openapi({ description: 'Attempt history, newest first.' }),
    attemptsTruncated: z.boolean(),
  })
  .openapi('SyncDetail');
export type SyncDetail = z.infer<typeof SyncDetailSchema>;

export const ReplayOneSchema = z
  .object({
    id: z.number().int(),
    status: z.literal('pending'),
    previousStatus: statusSchema,
    eventsRequeued: z.number().int().openapi({ description: 'Failed or discarded events put back to pending.' }),
    eventsReclassified: z
      .number()
      .int()
      .openapi({ description: 'Events stored as ignored whose type the current mappings now sync: made pending and folded in.' }),
    activity: json.openapi({ description: 'The activity folded with the current mappings, now stored on the call.' }),
  })
  .openapi('ReplayResult');
export type ReplayOneResult = z.infer<typeof ReplayOneSchema>;

export const DiscardSchema = z
  .object({
    id: z.number().int(),
    status: z.literal('discarded'),
    previousStatus: statusSchema,
    eventsDiscarded: z.number().int(),
  })
  .openapi('DiscardResult');
export type DiscardResult = z.infer<typeof DiscardSchema>;

export const ResolvedFilterSchema = z
  .object({
    status: statusSchema,
    source: z.string().nullable(),
    since: isoTime.nullable(),
    until: isoTime.nullable(),
  })
  .openapi('ResolvedFilter', { description: 'The filter as applied, relative times resolved.' });
export type ResolvedFilter = z.infer<typeof ResolvedFilterSchema>;

export const BulkReplaySchema = z
  .object({
    dryRun: z.boolean(),
    filter: ResolvedFilterSchema,
    count: z.number().int().openapi({ description: 'Calls replayed (dry run: that would be replayed).' }),
    skipped: z.number().int().openapi({ description: 'Matching calls left alone because a worker was syncing them at that moment.' }),
    eventsReclassified: z
      .number()
      .int()
      .optional()
      .openapi({ description: 'Not on a dry run: events stored as ignored whose type the current mappings now sync, made pending so the worker folds them.' }),
    calls: z
      .array(
        z.object({
          id: z.number().int(),
          source: z.string(),
          callKey: z.string(),
          status: statusSchema,
          attempts: z.number().int(),
          lastError: z.string().nullable(),
          updatedAt: isoTime,
        }),
      )
      .optional()
      .openapi({ description: `Dry run only: the first ${DRY_RUN_SAMPLE} matching calls, newest first.` }),
    truncated: z.boolean().optional().openapi({ description: 'Dry run only: more calls match than are listed.' }),
  })
  .openapi('BulkReplayResult');
export type BulkReplayResult = z.infer<typeof BulkReplaySchema>;

const statusCounts = z.object({
  pending: z.number().int(),
  synced: z.number().int(),
  failed: z.number().int(),
  discarded: z.number().int(),
});

export const SummarySchema = z
  .object({
    total: z.number().int(),
    byStatus: statusCounts,
    bySource: z.array(statusCounts.extend({ source: z.string(), total: z.number().int() })),
  })
  .openapi('Summary');
export type Summary = z.infer<typeof SummarySchema>;

export const AuditEntrySchema = z
  .object({
    id: z.number().int(),
    at: isoTime,
    action: z.string(),
    subject: z.string().nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    via: z.string(),
    details: json,
  })
  .openapi('AuditEntry');
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

export const AuditListSchema = z.object({ items: z.array(AuditEntrySchema) }).openapi('AuditList');

/** "1 call", "2 calls". */
export function callCount(n: number): string {
  return `${n} ${n === 1 ? 'call' : 'calls'}`;
}

/** A bulk replay's filter in words ("status failed, every source, changed since ..."), for the page and the CLI. */
export function describeFilter(f: ResolvedFilter, time: (iso: string) => string = (iso) => iso): string {
  return [`status ${f.status}`, f.source ? `source ${f.source}` : 'every source', f.since ? `changed since ${time(f.since)}` : undefined, f.until ? `before ${time(f.until)}` : undefined]
    .filter(Boolean)
    .join(', ');
}

/**
 * One line naming each bad field: "since: expected a relative time ...;
 * limit: must be an integer from 1 to 200". Clients and the page show it as is.
 */
export function describeIssues(
  error: ZodError,
  options: { naming?: (field: string) => string; unknown?: string; whole?: string } = {},
): string {
  const naming = options.naming ?? ((f: string) => f);
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => `${naming(key)}: ${options.unknown ?? 'unknown parameter'}`).join('; ');
      }
      const field = issue.path.map(String).join('.');
      return field ? `${naming(field)}: ${issue.message}` : `${options.whole ?? 'input'}: ${issue.message}`;
    })
    .join('; ');
}
