import type { InferSelectModel, Table } from 'drizzle-orm';
import type { callSyncs, syncAttempts, webhookEvents } from './schema';

/**
 * A table's row as raw SQL returns it: keyed by the SQL column names
 * (call_key, not callKey), each typed as the drizzle schema declares it.
 * Hot paths use raw SQL, so their row types come from here instead of being
 * written out again by hand.
 */
export type SqlRow<T extends Table> = {
  [K in keyof T['_']['columns'] & keyof InferSelectModel<T> as T['_']['columns'][K]['_']['name']]: InferSelectModel<T>[K];
};

export type WebhookEventRow = SqlRow<typeof webhookEvents>;
export type CallSyncRow = SqlRow<typeof callSyncs>;
export type SyncAttemptRow = SqlRow<typeof syncAttempts>;
