import type { Queryable } from '../db/client';
import type { JsonValue } from '../mapping/types';
import type { Actor } from './auth';
import type { AuditEntry } from './schemas';

/** The audit trail's action names. */
export type AuditAction =
  | 'sync.replay'
  | 'sync.discard'
  | 'syncs.replay'
  | 'syncs.replay.dry_run'
  | 'session.login'
  | 'session.login_failed'
  | 'session.logout';

export interface AuditRecord {
  action: AuditAction;
  /** What the action was about: `call_sync:<id>`, or null for bulk and session actions. */
  subject: string | null;
  actor: Actor;
  details: Record<string, JsonValue>;
}

/** Writes one audit row; run it inside the action's transaction where there is one, so both commit together. */
export async function writeAudit(db: Queryable, record: AuditRecord): Promise<void> {
  const details = { ...record.actor.context, ...record.details };
  await db.query(
    `INSERT INTO admin_audit (action, subject, ip, user_agent, via, details) VALUES ($1, $2, $3, $4, $5, $6::jsonb)`,
    [record.action, record.subject, record.actor.ip, record.actor.userAgent, record.actor.via, JSON.stringify(details)],
  );
}

export async function recentAudit(db: Queryable, limit: number): Promise<AuditEntry[]> {
  const rows = await db.query<{
    id: number;
    at: Date;
    action: string;
    subject: string | null;
    ip: string | null;
    user_agent: string | null;
    via: string;
    details: unknown;
  }>(`SELECT id, at, action, subject, ip, user_agent, via, details FROM admin_audit ORDER BY id DESC LIMIT $1`, [limit]);
  return rows.map((r) => ({
    id: r.id,
    at: r.at.toISOString(),
    action: r.action,
    subject: r.subject,
    ip: r.ip,
    userAgent: r.user_agent,
    via: r.via,
    details: r.details,
  }));
}
