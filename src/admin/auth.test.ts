import { describe, expect, it } from 'vitest';
import { SESSION_TTL_SECONDS, checkBearer, csrfTokenMatches, newSession, verifySession } from './auth';

const TOKEN = 'a-long-enough-admin-token';
const now = new Date('2025-11-21T12:00:00.000Z');

describe('admin auth', () => {
  it('accepts exactly "Bearer <token>"', () => {
    expect(checkBearer(`Bearer ${TOKEN}`, TOKEN)).toEqual({ ok: true });
    expect(checkBearer(`bearer   ${TOKEN}`, TOKEN)).toEqual({ ok: true });
    expect(checkBearer(undefined, TOKEN)).toEqual({ ok: false, reason: 'missing' });
    expect(checkBearer('', TOKEN)).toEqual({ ok: false, reason: 'missing' });
    expect(checkBearer(TOKEN, TOKEN)).toEqual({ ok: false, reason: 'malformed' });
    expect(checkBearer(`Basic ${TOKEN}`, TOKEN)).toEqual({ ok: false, reason: 'malformed' });
    expect(checkBearer(`Bearer ${TOKEN}x`, TOKEN)).toEqual({ ok: false, reason: 'wrong' });
    expect(checkBearer(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN)).toEqual({ ok: false, reason: 'wrong' });
  });

  it('issues a signed session cookie that is not the token and expires', () => {
    const { cookie, session } = newSession(TOKEN, now);
    expect(cookie).not.toContain(TOKEN);
    expect(session.expiresAt.getTime()).toBe(now.getTime() + SESSION_TTL_SECONDS * 1000);
    expect(verifySession(cookie, TOKEN, now)).toEqual(session);
    expect(verifySession(cookie, TOKEN, new Date(session.expiresAt.getTime() - 1000))).toEqual(session);
    expect(verifySession(cookie, TOKEN, session.expiresAt)).toBeUndefined();
  });

  it('refuses forged, tampered or foreign cookies', () => {
    const { cookie } = newSession(TOKEN, now);
    const [id, expiry, mac] = cookie.split('.') as [string, string, string];
    expect(verifySession(`${id}.${Number(expiry) + 86400}.${mac}`, TOKEN, now)).toBeUndefined();
    expect(verifySession(`${id}x.${expiry}.${mac}`, TOKEN, now)).toBeUndefined();
    const flipped = `${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`;
    expect(verifySession(`${id}.${expiry}.${flipped}`, TOKEN, now)).toBeUndefined();
    expect(verifySession(cookie, 'another-admin-token-entirely', now)).toBeUndefined();
    expect(verifySession(TOKEN, TOKEN, now)).toBeUndefined();
    expect(verifySession(undefined, TOKEN, now)).toBeUndefined();
  });

  it('ties the CSRF token to the session', () => {
    const a = newSession(TOKEN, now).session;
    const b = newSession(TOKEN, now).session;
    expect(a.csrfToken).not.toBe(b.csrfToken);
    expect(csrfTokenMatches(a, a.csrfToken)).toBe(true);
    expect(csrfTokenMatches(a, b.csrfToken)).toBe(false);
    expect(csrfTokenMatches(a, '')).toBe(false);
    expect(csrfTokenMatches(a, undefined)).toBe(false);
  });
});
