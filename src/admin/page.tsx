import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { raw } from 'hono/html';
import { HTTPException } from 'hono/http-exception';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Config } from '../config';
import { AppError } from '../core/errors';
import type { AppEnv } from '../http/context';
import { errorResponse } from '../http/error-response';
import { ADMIN_DISABLED_MESSAGE, SESSION_COOKIE, SESSION_TTL_SECONDS, actorFrom, csrfTokenMatches, isHttps, newSession, sameHostOrigin, verifySession, type Session } from './auth';
import { safeEqual } from '../core/secrets';
import { BulkReplayBodySchema, ListQuerySchema, callCount, describeIssues } from './schemas';
import type { AdminService } from './service';
import { ActionRefused } from './sync-actions';
import { ConfirmBulkView } from './views/bulk-replay';
import { DashboardView, type DashboardFilters } from './views/dashboard';
import { LoginView, MessageView } from './views/shell';
import { ADMIN_CSS } from './views/stylesheet';
import { DetailView } from './views/sync-detail';

/**
 * The admin web page under /admin: server-rendered, no script.
 *
 * Auth: a login form takes ADMIN_TOKEN once and sets a session cookie
 * (HttpOnly, SameSite=Strict, Secure over https, Path=/admin, 8 hours; see
 * auth.ts). Every state-changing form is a POST that must pass three checks:
 * hono's csrf() (the browser's Origin / Sec-Fetch-Site must be this host),
 * the session cookie (SameSite=Strict keeps it off cross-site requests), and
 * the session's CSRF token in a hidden field.
 *
 * Like the API, the checks are attached per route: the two share /admin.
 */

type PageEnv = { Variables: AppEnv['Variables'] & { session: Session } };

const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function securityHeaders(c: Context): void {
  c.header('Content-Security-Policy', CSP);
  c.header('X-Frame-Options', 'DENY');
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Referrer-Policy', 'no-referrer');
  // The pages show call data: keep them out of every cache.
  c.header('Cache-Control', 'no-store');
}

function render(c: Context, node: HtmlEscapedString | Promise<HtmlEscapedString>, status: ContentfulStatusCode = 200): Response | Promise<Response> {
  securityHeaders(c);
  return c.html(
    <>
      {raw('<!DOCTYPE html>')}
      {node}
    </>,
    status,
  );
}

/** Where to go after login: only a path of the admin page itself, so the parameter cannot redirect elsewhere. */
function safeNext(value: string | undefined): string {
  if (value && /^\/admin(\/[A-Za-z0-9/_-]*)?(\?[A-Za-z0-9=&%_.:+-]*)?$/.test(value) && !value.startsWith('/admin/login')) return value;
  return '/admin';
}

/** A form's or query's text fields, empty ones dropped (an empty select means "any"). */
function fields(values: Record<string, unknown>, drop: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (drop.includes(key) || typeof value !== 'string' || value.trim() === '') continue;
    out[key] = value.trim();
  }
  return out;
}

const PAGE_ONLY_PARAMS = ['notice', 'count', 'skipped'] as const;
const ID = /^[1-9]\d{0,14}$/;

export function adminPage(config: Config, service: AdminService, now: () => Date): Hono<PageEnv, {}, '/admin'> {
  const page = new Hono<PageEnv>().basePath('/admin');
  const originCheck = csrf({ origin: sameHostOrigin });
  // The page's forms are a few fields; a larger body is not one of them.
  const formLimit = bodyLimit({
    maxSize: 16 * 1024,
    onError: (c) => render(c, <MessageView title="Form refused" message="The form is larger than the admin page ever sends." back="/admin" />, 413),
  });

  const disabled = (c: Context) => render(c, <MessageView title="Admin disabled" message={ADMIN_DISABLED_MESSAGE} />, 403);

  const tooManyLogins = (c: Context, next: string, seconds: number) => {
    c.header('Retry-After', String(seconds));
    const minutes = Math.ceil(seconds / 60);
    return render(
      c,
      <LoginView next={next} error={`Too many failed logins from your address; try again in ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}.`} />,
      429,
    );
  };

  /**
   * The session the request's cookie proves, checked on every request: the
   * signature and expiry first (a forged cookie costs no query), then that
   * it has not been logged out (its admin_sessions row).
   */
  const liveSession = async (c: Context, token: string): Promise<Session | undefined> => {
    const session = verifySession(getCookie(c, SESSION_COOKIE), token, now());
    if (!session) return undefined;
    return (await service.sessionIsLive(session)) ? session : undefined;
  };

  /** Views need a session (else: to the login form); actions also need the form's CSRF token. */
  const requireSession =
    (kind: 'view' | 'action'): MiddlewareHandler<PageEnv> =>
    async (c, next) => {
      const token = config.ADMIN_TOKEN;
      if (token === undefined) return disabled(c);
      const session = await liveSession(c, token);
      if (!session) {
        if (kind === 'view') {
          const url = new URL(c.req.url);
          const next = safeNext(`${url.pathname}${url.search}`);
          return c.redirect(next === '/admin' ? '/admin/login' : `/admin/login?next=${encodeURIComponent(next)}`, 303);
        }
        return render(c, <LoginView next="/admin" error="Your session has ended; log in again, then repeat the action." />, 401);
      }
      if (kind === 'action') {
        const form = await c.req.parseBody();
        if (!csrfTokenMatches(session, form['_csrf'])) {
          return render(
            c,
            <MessageView
              title="Form refused"
              message="This form did not come from your current admin session (missing or stale CSRF token). Reload the page and try again."
              csrfToken={session.csrfToken}
              back="/admin"
            />,
            403,
          );
        }
      }
      c.set('session', session);
      await next();
      return undefined;
    };
  const view = requireSession('view');
  const action = requireSession('action');

  page.get('/assets/admin.css', (c) => {
    c.header('Content-Type', 'text/css; charset=utf-8');
    c.header('Cache-Control', 'public, max-age=3600');
    c.header('X-Content-Type-Options', 'nosniff');
    return c.body(ADMIN_CSS);
  });

  page.get('/login', async (c) => {
    const token = config.ADMIN_TOKEN;
    if (token === undefined) return disabled(c);
    const next = safeNext(c.req.query('next'));
    if (await liveSession(c, token)) return c.redirect(next, 303);
    return render(c, <LoginView next={next} notice={c.req.query('bye') ? 'You are logged out.' : undefined} />);
  });

  page.post('/login', originCheck, formLimit, async (c) => {
    const token = config.ADMIN_TOKEN;
    if (token === undefined) return disabled(c);
    const form = await c.req.parseBody();
    const next = safeNext(typeof form['next'] === 'string' ? form['next'] : undefined);
    const actor = actorFrom(c, 'page');
    // An address that failed too often waits, whatever it sends now: the token cannot be guessed by volume.
    const wait = service.loginRetryAfterSeconds(actor);
    if (wait > 0) return tooManyLogins(c, next, wait);
    const given = typeof form['token'] === 'string' ? form['token'].trim() : '';
    if (given === '' || !safeEqual(given, token)) {
      const blockedFor = await service.loginFailed(actor);
      if (blockedFor > 0) return tooManyLogins(c, next, blockedFor);
      return render(c, <LoginView next={next} error="That is not the admin token." />, 401);
    }
    const { cookie, session } = newSession(token, now());
    await service.login(session, actor);
    setCookie(c, SESSION_COOKIE, cookie, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: isHttps(c),
      path: '/admin',
      maxAge: SESSION_TTL_SECONDS,
      expires: session.expiresAt,
    });
    return c.redirect(next, 303);
  });

  page.post('/logout', originCheck, formLimit, action, async (c) => {
    // The row goes first: even a copy of the cookie is dead from here on.
    await service.logout(c.get('session'), actorFrom(c, 'page'));
    deleteCookie(c, SESSION_COOKIE, { path: '/admin', httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
    return c.redirect('/admin/login?bye=1', 303);
  });

  page.get('/', view, async (c) => {
    const session = c.get('session');
    const query = c.req.query();
    const given = fields(query, PAGE_ONLY_PARAMS);
    // The dashboard opens on the failed list; "any" status is an explicit empty choice.
    if (!('status' in query)) given['status'] = 'failed';
    const filters: DashboardFilters = { status: given['status'], source: given['source'], since: given['since'], until: given['until'], q: given['q'] };
    const [summary, audit] = await Promise.all([service.summary(), service.recentAudit(10)]);
    let items: Awaited<ReturnType<AdminService['listSyncs']>>['items'] = [];
    let nextPage: string | null = null;
    let error: string | undefined;
    const parsed = ListQuerySchema.safeParse(given);
    if (!parsed.success) {
      error = describeIssues(parsed.error);
    } else {
      try {
        const list = await service.listSyncs(parsed.data);
        items = list.items;
        if (list.nextCursor) {
          const params = new URLSearchParams({ ...given, status: given['status'] ?? '', cursor: list.nextCursor });
          nextPage = `/admin?${params.toString()}`;
        }
      } catch (err) {
        if (!(err instanceof AppError) || err.status !== 400) throw err;
        error = err.message;
      }
    }
    const notice =
      query['notice'] === 'bulk'
        ? `Queued ${callCount(Number(query['count'] ?? 0))} for replay${Number(query['skipped'] ?? 0) > 0 ? `; ${callCount(Number(query['skipped']))} being synced at that moment were left alone` : ''}. The workers pick them up now.`
        : undefined;
    return render(
      c,
      <DashboardView csrfToken={session.csrfToken} summary={summary} filters={filters} items={items} nextPage={nextPage} notice={notice} error={error} audit={audit} />,
      error ? 400 : 200,
    );
  });

  const detail = async (c: Context<PageEnv>, id: number, banner: { notice?: string | undefined; error?: string | undefined }) => {
    const session = c.get('session');
    try {
      const data = await service.getSync(id, actorFrom(c, 'page'));
      return render(
        c,
        <DetailView csrfToken={session.csrfToken} detail={data} notice={banner.notice} error={banner.error} />,
      );
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') {
        return render(c, <MessageView title="Not found" message={err.message} csrfToken={session.csrfToken} back="/admin" />, 404);
      }
      throw err;
    }
  };

  const idFrom = (c: Context<PageEnv>): number => {
    const text = c.req.param('id') ?? '';
    if (!ID.test(text)) throw new AppError('not_found', `no sync with id ${text.slice(0, 40)}`);
    return Number(text);
  };

  const NOTICES = new Map<string, string>([
    ['replayed', 'Queued for replay with the current mappings. The worker picks it up now; refresh to watch it.'],
    ['discarded', 'Discarded: the worker will not try this call again (a replay or a new webhook brings it back).'],
  ]);

  const REFUSALS = new Map<ActionRefused['reason'] | string, string>([
    ['mapping', 'Not queued: the current mappings still fail on this call (see "The current mappings" below). Fix the mapping, then replay again.'],
    ['busy', 'Not done: a worker is writing this call to the CRM right now. Refresh in a moment and try again.'],
    ['synced', 'Not discarded: this call is already synced to the CRM.'],
    ['empty', 'Not queued: the call has no events the current mappings sync (retention removed them, or their types are ignored).'],
  ]);

  page.get('/ui/syncs/:id', view, (c) =>
    detail(c, idFrom(c), { notice: NOTICES.get(c.req.query('notice') ?? ''), error: REFUSALS.get(c.req.query('refused') ?? '') }),
  );

  /**
   * Actions answer with a redirect to the detail view, refusals included
   * (Post/Redirect/Get): reloading the page never repeats the action.
   */
  const act = (name: 'replay' | 'discard', run: (id: number, c: Context<PageEnv>) => Promise<unknown>) =>
    page.post(`/ui/syncs/:id/${name}`, originCheck, formLimit, action, async (c) => {
      const id = idFrom(c);
      try {
        await run(id, c);
      } catch (err) {
        if (err instanceof ActionRefused) return c.redirect(`/admin/ui/syncs/${id}?refused=${err.reason}`, 303);
        throw err;
      }
      return c.redirect(`/admin/ui/syncs/${id}?notice=${name === 'replay' ? 'replayed' : 'discarded'}`, 303);
    });
  act('replay', (id, c) => service.replayOne(id, actorFrom(c, 'page')));
  act('discard', (id, c) => service.discardOne(id, actorFrom(c, 'page')));

  /** The confirmation step of a bulk replay: a dry run showing what would be replayed. */
  page.get('/ui/replay', view, async (c) => {
    const session = c.get('session');
    const parsed = BulkReplayBodySchema.safeParse({ ...fields(c.req.query(), []), dryRun: true });
    if (!parsed.success) {
      return render(c, <MessageView title="Bad filter" message={describeIssues(parsed.error)} csrfToken={session.csrfToken} back="/admin" />, 400);
    }
    const match = await service.replayBulk(parsed.data, actorFrom(c, 'page'));
    return render(c, <ConfirmBulkView csrfToken={session.csrfToken} match={match} />);
  });

  page.post('/ui/replay', originCheck, formLimit, action, async (c) => {
    const session = c.get('session');
    const form = await c.req.parseBody();
    const parsed = BulkReplayBodySchema.safeParse({ ...fields(form, ['_csrf']), dryRun: false });
    if (!parsed.success) {
      return render(c, <MessageView title="Bad filter" message={describeIssues(parsed.error)} csrfToken={session.csrfToken} back="/admin" />, 400);
    }
    const result = await service.replayBulk(parsed.data, actorFrom(c, 'page'));
    return c.redirect(`/admin?notice=bulk&count=${result.count}&skipped=${result.skipped}`, 303);
  });

  page.onError((err, c) => {
    if (err instanceof HTTPException && err.status === 403) {
      // hono's csrf(): the form was posted from another site (or without an Origin the browser would send).
      return render(c, <MessageView title="Form refused" message="Cross-site form submissions are refused. Use the admin page itself." />, 403);
    }
    const { status, body, kind } = errorResponse(err, { requestId: c.get('requestId'), log: c.get('log') });
    const [title, message] =
      kind === 'refusal'
        ? [status === 404 ? 'Not found' : 'Cannot do that', body.error.message]
        : kind === 'database_unavailable'
          ? ['Database unavailable', 'The database cannot be reached right now; reload the page in a moment.']
          : ['Something went wrong', `The server could not show this page; see its log for request ${c.get('requestId')}.`];
    return render(c, <MessageView title={title} message={message} back="/admin" />, status);
  });

  return page;
}
