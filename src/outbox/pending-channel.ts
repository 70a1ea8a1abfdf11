/**
 * The channel workers LISTEN on. Intake, replay and bulk replay queue a
 * pg_notify on it inside their own statement, so workers wake exactly when
 * the change commits instead of at their next poll.
 */
export const PENDING_CHANNEL = 'callsync_pending';
