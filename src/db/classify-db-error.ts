/**
 * What a database failure means for the caller, read from SQLSTATE codes and
 * driver error codes (postgres.js and PGlite both expose `code`).
 *  - unavailable: cannot reach or use the server now; answer 503 and let the vendor retry
 *  - serialization: deadlock or serialization failure; safe to run the statement again
 *  - data: the values themselves were refused (SQLSTATE class 22), or are
 *    beyond what the server can process (class 54: e.g. JSON nested deeper
 *    than its stack allows)
 *  - other: a bug or an unexpected state
 */
export type DbFailure = 'unavailable' | 'serialization' | 'data' | 'other';

const DRIVER_UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);

export function classifyDbError(err: unknown): DbFailure {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (DRIVER_UNAVAILABLE.has(code)) return 'unavailable';
  if (code === '40P01' || code === '40001') return 'serialization';
  if (code.startsWith('22') || code.startsWith('54')) return 'data';
  // 08: connection exception; 53: insufficient resources; 57P0x: shutdown/cannot connect now; 25006 read-only.
  if (code.startsWith('08') || code.startsWith('53') || /^57P0[1-4]$/.test(code) || code === '25006') return 'unavailable';
  if (code === '57014') return 'unavailable'; // statement timeout: the server is too slow to promise durability
  if (err instanceof Error && /closed|terminat|ECONNREFUSED|connect/i.test(err.message) && code === '') return 'unavailable';
  return 'other';
}

/**
 * The error that says the database cannot be reached now, when `err` is one
 * or was caused by one (undefined otherwise): worth a 503, which a client
 * retries, not a 500.
 */
export function databaseUnavailable(err: unknown): unknown {
  if (classifyDbError(err) === 'unavailable') return err;
  if (err instanceof Error && err.cause !== undefined && classifyDbError(err.cause) === 'unavailable') return err.cause;
  return undefined;
}
