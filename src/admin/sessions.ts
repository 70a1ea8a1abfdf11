import { createHash } from 'node:crypto';
import type { Queryable } from '../db/client';
import type { Session } from './auth';

/**
 * The server side of admin page sessions (table admin_sessions). The cookie
 * proves who issued it (an HMAC, see auth.ts); the row says the session has
 * not been ended. Logout deletes the row, so the cookie, or any copy of it,
 * is refused on the very next request, well before its 8-hour expiry.
 *
 * Rows are keyed by a SHA-256 of the session id: reading the table gives
 * nothing to put in a cookie (that also needs the MAC under ADMIN_TOKEN).
 */

function idHash(session: Pick<Session, 'id'>): string {
  return createHash('sha256').update(session.id, 'utf8').digest('base64url');
}

/**
 * Records a new session. Expired rows are swept here, on login: a handful
 * of admins log in a few times a day, so the table stays tiny without a
 * timer of its own (admin_sessions_expires serves the DELETE).
 */
export async function startSession(db: Queryable, session: Session, now: Date): Promise<void> {
  await db.query(`DELETE FROM admin_sessions WHERE expires_at <= $1::timestamptz`, [now.toISOString()]);
  await db.query(`INSERT INTO admin_sessions (id_hash, expires_at) VALUES ($1, $2::timestamptz)`, [idHash(session), session.expiresAt.toISOString()]);
}

/** Whether the session has not been ended (its expiry is checked on the cookie itself, against the service's clock). */
export async function sessionIsLive(db: Queryable, session: Session): Promise<boolean> {
  const rows = await db.query(`SELECT 1 FROM admin_sessions WHERE id_hash = $1`, [idHash(session)]);
  return rows.length > 0;
}

export async function endSession(db: Queryable, session: Session): Promise<void> {
  await db.query(`DELETE FROM admin_sessions WHERE id_hash = $1`, [idHash(session)]);
}
