import { createHmac, randomBytes } from 'node:crypto';
import { safeEqual } from '../core/secrets';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../http/context';
import type { Logger } from '../log';
import type { JsonValue } from '../core/json';

/**
 * Admin authentication.
 *
 * - The API takes `Authorization: Bearer <ADMIN_TOKEN>` on every request.
 *   Browsers never attach that header on their own, so the API needs no CSRF
 *   defence of its own.
 * - The page logs in with the same token once and then carries a session
 *   cookie. The cookie is never the token: it is `<session id>.<expiry>.<mac>`,
 *   the MAC an HMAC-SHA256 under a key derived from ADMIN_TOKEN. A forged or
 *   expired cookie is refused here without touching the database; a genuine
 *   one must also still have its row in admin_sessions (sessions.ts), which
 *   logout deletes. Changing ADMIN_TOKEN ends every session, and a session
 *   ends by itself at its expiry.
 * - Every page form carries a per-session CSRF token (an HMAC of the session
 *   id under the same key), on top of SameSite=Strict and the Origin check.
 *
 * Every comparison of a secret is constant-time.
 */

export const SESSION_COOKIE = 'callsync_admin';
export const SESSION_TTL_SECONDS = 8 * 3600;

export const ADMIN_DISABLED_MESSAGE =
  'the admin is disabled: set ADMIN_TOKEN (at least 16 characters) in the environment and restart to enable it';


export type BearerCheck = { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'wrong' };

export function checkBearer(header: string | undefined, token: string): BearerCheck {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing' };
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
  const given = match?.[1];
  if (given === undefined) return { ok: false, reason: 'malformed' };
  return safeEqual(given, token) ? { ok: true } : { ok: false, reason: 'wrong' };
}

export const BEARER_MESSAGES: Record<Exclude<BearerCheck, { ok: true }>['reason'], string> = {
  missing: 'the admin API needs the header Authorization: Bearer <ADMIN_TOKEN>',
  malformed: 'the Authorization header must be "Bearer <ADMIN_TOKEN>"',
  wrong: 'the admin token is not valid',
};

export interface Session {
  id: string;
  expiresAt: Date;
  /** The token every form of this session must send back. */
  csrfToken: string;
}

function sessionKey(adminToken: string): Buffer {
  // A key of its own, so a MAC never doubles as anything keyed by the token directly.
  return createHmac('sha256', adminToken).update('callsync admin session v1').digest();
}

function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

export function newSession(adminToken: string, now: Date): { cookie: string; session: Session } {
  const id = randomBytes(18).toString('base64url');
  const expiresAt = new Date(now.getTime() + SESSION_TTL_SECONDS * 1000);
  const expiry = Math.floor(expiresAt.getTime() / 1000);
  const key = sessionKey(adminToken);
  return {
    cookie: `${id}.${expiry}.${mac(key, `session.${id}.${expiry}`)}`,
    session: { id, expiresAt: new Date(expiry * 1000), csrfToken: mac(key, `csrf.${id}`) },
  };
}

/** The session a cookie value proves, or undefined when it is missing, forged, from another token, or expired. */
export function verifySession(cookie: string | undefined, adminToken: string, now: Date): Session | undefined {
  if (!cookie) return undefined;
  const parts = cookie.split('.');
  if (parts.length !== 3) return undefined;
  const [id, expiryText, given] = parts as [string, string, string];
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(id) || !/^\d{1,12}$/.test(expiryText)) return undefined;
  const key = sessionKey(adminToken);
  if (!safeEqual(given, mac(key, `session.${id}.${expiryText}`))) return undefined;
  const expiresAt = new Date(Number(expiryText) * 1000);
  if (expiresAt <= now) return undefined;
  return { id, expiresAt, csrfToken: mac(key, `csrf.${id}`) };
}

export function csrfTokenMatches(session: Session, given: unknown): boolean {
  return typeof given === 'string' && given !== '' && safeEqual(given, session.csrfToken);
}

/** Whether the browser reached us over https (directly, or through a proxy that says so). */
export function isHttps(c: Context): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true;
  return c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

/**
 * For hono's csrf(): the form's Origin must be this very host. Compared by
 * host rather than full origin so a TLS-terminating proxy (browser on https,
 * us on http) still matches; a cross-site page cannot forge Origin or Host.
 */
export function sameHostOrigin(origin: string, c: Context): boolean {
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = c.req.header('x-forwarded-host')?.split(',')[0]?.trim();
  const host = forwarded || c.req.header('host') || new URL(c.req.url).host;
  return originHost.toLowerCase() === host.toLowerCase();
}

function socketAddress(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    // No socket (app.request() in tests, or another adapter): the address is unknown.
    return null;
  }
}

/**
 * The client's address for the admin's limits and audit. Behind
 * `trustedHops` proxies that each append the address they received from to
 * X-Forwarded-For, the client is the entry that many places from the right;
 * entries further left are whatever the client sent and are not trusted.
 * A shorter header did not come through all the proxies (or was sent
 * straight to us): then, as without trusted proxies, the socket's address,
 * which no client can choose.
 */
export function clientAddress(trustedHops: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    let address = socketAddress(c);
    if (trustedHops > 0) {
      const chain = (c.req.header('x-forwarded-for') ?? '')
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== '');
      const client = chain.length >= trustedHops ? chain[chain.length - trustedHops] : undefined;
      if (client !== undefined) address = auditText(client, 100) ?? address;
    }
    c.set('clientAddress', address);
    await next();
  };
}

/** Who did something, for the audit table. */
export interface Actor {
  via: 'api' | 'page' | 'cli';
  ip: string | null;
  userAgent: string | null;
  /** Extra context merged into the audit details (a proxy's X-Forwarded-For, the OS user of the CLI). */
  context?: Record<string, JsonValue>;
  /** Where the action's log lines go: the request's logger (with its reqId), or the CLI's. Never audited. */
  log?: Logger | undefined;
}

/** Header text as the audit table can store it: control characters (Postgres refuses NUL) dropped, length capped. */
export function auditText(value: string | undefined, max: number): string | undefined {
  if (value === undefined) return undefined;
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, max);
  return clean === '' ? undefined : clean.toWellFormed();
}

export function actorFrom<E extends AppEnv>(c: Context<E>, via: 'api' | 'page'): Actor {
  const ip = c.get('clientAddress') ?? socketAddress(c);
  const forwardedFor = auditText(c.req.header('x-forwarded-for'), 200);
  return {
    via,
    ip,
    userAgent: auditText(c.req.header('user-agent'), 300) ?? null,
    ...(forwardedFor ? { context: { forwardedFor } } : {}),
    log: c.get('log'),
  };
}
