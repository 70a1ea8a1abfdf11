import type { FC, PropsWithChildren } from 'hono/jsx';

/**
 * The admin page's frame and small parts: server-rendered hono/jsx, plain
 * HTML and one stylesheet served by us (no script, no external asset; the
 * CSP forbids both). JSX escapes every value, payloads included.
 */

export const pretty = (value: unknown): string => (value === undefined ? 'null' : (JSON.stringify(value, null, 2) ?? 'null'));
export const when = (iso: string | null): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');
export const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);

export const StatusBadge: FC<{ status: string }> = ({ status }) => <span class={`badge badge-${status}`}>{status}</span>;

export const Layout: FC<PropsWithChildren<{ title: string; csrfToken?: string | undefined }>> = ({ title, csrfToken, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="robots" content="noindex" />
      <title>{`${title} · callsync admin`}</title>
      <link rel="stylesheet" href="/admin/assets/admin.css" />
    </head>
    <body>
      <header class="top">
        <a class="brand" href="/admin">callsync admin</a>
        {csrfToken !== undefined && (
          <>
            <nav>
              <a href="/admin">Dashboard</a>
              <a href="/admin?status=pending">Pending</a>
              <a href="/admin?status=failed">Failed</a>
            </nav>
            <form method="post" action="/admin/logout">
              <input type="hidden" name="_csrf" value={csrfToken} />
              <button type="submit" class="secondary">Log out</button>
            </form>
          </>
        )}
      </header>
      <main>{children}</main>
    </body>
  </html>
);

export const Banner: FC<{ kind: 'ok' | 'bad' | 'info'; text: string | undefined }> = ({ kind, text }) =>
  text ? (
    <p class={`banner ${kind}`} role={kind === 'bad' ? 'alert' : 'status'}>
      {text}
    </p>
  ) : null;

export const LoginView: FC<{ error?: string | undefined; next: string; notice?: string | undefined }> = ({ error, next, notice }) => (
  <Layout title="Log in">
    <form class="login" method="post" action="/admin/login">
      <h1>Admin login</h1>
      <Banner kind="info" text={notice} />
      <Banner kind="bad" text={error} />
      <label>
        Admin token
        <input type="password" name="token" autocomplete="current-password" required autofocus />
      </label>
      <input type="hidden" name="next" value={next} />
      <button type="submit">Log in</button>
      <p class="muted">The token is the service's ADMIN_TOKEN. The session lasts 8 hours.</p>
    </form>
  </Layout>
);

export const MessageView: FC<{ title: string; message: string; csrfToken?: string | undefined; back?: string }> = ({ title, message, csrfToken, back }) => (
  <Layout title={title} csrfToken={csrfToken}>
    <h1>{title}</h1>
    <Banner kind="bad" text={message} />
    {back && (
      <p>
        <a href={back}>Back</a>
      </p>
    )}
  </Layout>
);
