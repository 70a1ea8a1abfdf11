import type { FC, PropsWithChildren } from 'hono/jsx';
import { SYNC_STATUSES } from '../db/schema';
import { SOURCE_NAMES } from '../core/event';
import { callCount, type AuditEntry, type BulkReplayResult, type Summary, type SyncDetail, type SyncSummary } from './schemas';

/**
 * The admin page's views: server-rendered hono/jsx, plain HTML and one small
 * stylesheet served by us (no script, no external asset; the CSP forbids both).
 * JSX escapes every value, payloads included.
 */

export const ADMIN_CSS = `
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6575; --line: #d6dbe3; --bg: #f6f7f9; --accent: #2456a6;
  --ok: #1f7a3d; --bad: #b42318; --warn: #9a6700; --idle: #5b6575; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header.top nav { flex: 1; display: flex; gap: 1rem; }
header.top form { margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 1.25rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.8rem 0 .6rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: .85rem; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { width: 12rem; }
.error-text { color: var(--bad); max-width: 40rem; overflow-wrap: anywhere; }
pre { background: #fff; border: 1px solid var(--line); padding: .6rem .8rem; overflow: auto; max-height: 28rem; font-size: .82rem; margin: .3rem 0 .8rem; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .8rem; font-weight: 600; color: #fff; }
.badge-synced { background: var(--ok); } .badge-failed { background: var(--bad); }
.badge-pending { background: var(--warn); } .badge-discarded, .badge-ignored { background: var(--idle); }
.banner { padding: .7rem 1rem; border-radius: .3rem; margin: 0 0 1rem; border: 1px solid; }
.banner.ok { background: #e8f5ec; border-color: #9fd3ae; } .banner.bad { background: #fdecea; border-color: #f1a9a0; }
.banner.info { background: #eef3fb; border-color: #b7c9e8; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: flex-end; background: #fff; border: 1px solid var(--line); padding: .8rem; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); gap: .2rem; }
input, select, button { font: inherit; padding: .3rem .5rem; border: 1px solid #b8c0cc; border-radius: .25rem; background: #fff; }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
.actions { display: flex; gap: .6rem; flex-wrap: wrap; margin: 1rem 0; }
.actions form { margin: 0; }
.muted { color: var(--muted); }
.login { max-width: 26rem; margin: 4rem auto; background: #fff; border: 1px solid var(--line); padding: 1.5rem; }
.login label { display: block; margin-bottom: .8rem; }
.login input { width: 100%; margin-top: .3rem; }
details { margin: .3rem 0; }
.event { background: #fff; border: 1px solid var(--line); padding: .6rem .8rem; margin-bottom: .8rem; }
.event h3 { font-size: .95rem; margin: 0 0 .4rem; }
`;

const pretty = (value: unknown): string => (value === undefined ? 'null' : (JSON.stringify(value, null, 2) ?? 'null'));
const when = (iso: string | null): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');
const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);

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

export interface DashboardFilters {
  status?: string | undefined;
  source?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  q?: string | undefined;
}

function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : '';
}

const FilterForm: FC<{ filters: DashboardFilters }> = ({ filters }) => (
  <form class="filters" method="get" action="/admin" aria-label="Filters">
    <label>
      Status
      <select name="status">
        <option value="" selected={!filters.status}>
          any
        </option>
        {SYNC_STATUSES.map((s) => (
          <option value={s} selected={filters.status === s}>
            {s}
          </option>
        ))}
      </select>
    </label>
    <label>
      Source
      <select name="source">
        <option value="" selected={!filters.source}>
          any
        </option>
        {SOURCE_NAMES.map((s) => (
          <option value={s} selected={filters.source === s}>
            {s}
          </option>
        ))}
      </select>
    </label>
    <label>
      Changed since
      <input name="since" value={filters.since ?? ''} placeholder="2h, 7d, 2025-11-21T08:00Z" size={16} />
    </label>
    <label>
      until
      <input name="until" value={filters.until ?? ''} placeholder="30m, 2025-11-21" size={14} />
    </label>
    <label>
      Search
      <input name="q" value={filters.q ?? ''} placeholder="call key, CRM id, error" size={22} />
    </label>
    <button type="submit">Filter</button>
  </form>
);

const Counts: FC<{ summary: Summary }> = ({ summary }) => (
  <table aria-label="Counts by source and status">
    <thead>
      <tr>
        <th>Source</th>
        {SYNC_STATUSES.map((s) => (
          <th class="num">{s}</th>
        ))}
        <th class="num">total</th>
      </tr>
    </thead>
    <tbody>
      {summary.bySource.map((row) => (
        <tr>
          <td>{row.source}</td>
          {SYNC_STATUSES.map((s) => (
            <td class="num">{row[s] > 0 ? <a href={`/admin${query({ status: s, source: row.source })}`}>{row[s]}</a> : '0'}</td>
          ))}
          <td class="num">{row.total}</td>
        </tr>
      ))}
      <tr>
        <th>all sources</th>
        {SYNC_STATUSES.map((s) => (
          <th class="num" data-count={s}>
            {summary.byStatus[s]}
          </th>
        ))}
        <th class="num">{summary.total}</th>
      </tr>
    </tbody>
  </table>
);

export const SyncTable: FC<{ items: SyncSummary[] }> = ({ items }) =>
  items.length === 0 ? (
    <p class="muted">No syncs match these filters.</p>
  ) : (
    <table aria-label="Syncs">
      <thead>
        <tr>
          <th class="num">ID</th>
          <th>Source</th>
          <th>Call key</th>
          <th>Status</th>
          <th class="num">Attempts</th>
          <th>Last error</th>
          <th>Updated</th>
          <th>CRM id</th>
        </tr>
      </thead>
      <tbody>
        {items.map((s) => (
          <tr data-sync-id={String(s.id)}>
            <td class="num">
              <a href={`/admin/ui/syncs/${s.id}`}>{s.id}</a>
            </td>
            <td>{s.source}</td>
            <td>
              <a href={`/admin/ui/syncs/${s.id}`}>{s.callKey}</a>
            </td>
            <td>
              <StatusBadge status={s.status} />
            </td>
            <td class="num">{s.attempts}</td>
            <td class="error-text">
              {s.lastError ? `${s.lastErrorKind ? `[${s.lastErrorKind}${s.lastHttpStatus ? ` ${s.lastHttpStatus}` : ''}] ` : ''}${clip(s.lastError, 200)}` : ''}
            </td>
            <td>{when(s.updatedAt)}</td>
            <td>{s.crmId ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );

export const DashboardView: FC<{
  csrfToken: string;
  summary: Summary;
  filters: DashboardFilters;
  items: SyncSummary[];
  nextPage: string | null;
  notice?: string | undefined;
  error?: string | undefined;
  audit: AuditEntry[];
}> = ({ csrfToken, summary, filters, items, nextPage, notice, error, audit }) => (
  <Layout title="Dashboard" csrfToken={csrfToken}>
    <h1>Syncs</h1>
    <Banner kind="ok" text={notice} />
    <Banner kind="bad" text={error} />
    <Counts summary={summary} />
    <h2>{filters.status ? `${filters.status[0]?.toUpperCase()}${filters.status.slice(1)} syncs` : 'All syncs'}</h2>
    <FilterForm filters={filters} />
    {filters.status && filters.q && (
      <p class="muted">Bulk replay works on status, source and time; clear the search to replay every matching {filters.status} sync.</p>
    )}
    {filters.status && !filters.q && (
      <form method="get" action="/admin/ui/replay" class="actions">
        <input type="hidden" name="status" value={filters.status} />
        {filters.source && <input type="hidden" name="source" value={filters.source} />}
        {filters.since && <input type="hidden" name="since" value={filters.since} />}
        {filters.until && <input type="hidden" name="until" value={filters.until} />}
        <button type="submit" class="secondary">
          Replay all matching {filters.status} syncs…
        </button>
        <span class="muted">You will see how many first and confirm.</span>
      </form>
    )}
    <SyncTable items={items} />
    {nextPage && (
      <p>
        <a href={nextPage} rel="next">
          Next page →
        </a>
      </p>
    )}
    <h2>Recent admin actions</h2>
    {audit.length === 0 ? (
      <p class="muted">None yet.</p>
    ) : (
      <table aria-label="Recent admin actions">
        <thead>
          <tr>
            <th>When</th>
            <th>Action</th>
            <th>Subject</th>
            <th>Via</th>
            <th>From</th>
            <th>Details</th>
          </tr>
        </thead>
        <tbody>
          {audit.map((a) => (
            <tr>
              <td>{when(a.at)}</td>
              <td>{a.action}</td>
              <td>{a.subject ?? ''}</td>
              <td>{a.via}</td>
              <td>{a.ip ?? ''}</td>
              <td>
                <code>{clip(JSON.stringify(a.details) ?? '', 160)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </Layout>
);

const Json: FC<{ label: string; value: unknown }> = ({ label, value }) => (
  <>
    <h2>{label}</h2>
    {value === null || value === undefined ? <p class="muted">None yet.</p> : <pre>{pretty(value)}</pre>}
  </>
);

export const DetailView: FC<{ csrfToken: string; detail: SyncDetail; notice?: string | undefined; error?: string | undefined }> = ({
  csrfToken,
  detail,
  notice,
  error,
}) => {
  const s = detail.sync;
  const discardable = s.status === 'pending' || s.status === 'failed';
  return (
    <Layout title={`Sync ${s.id}`} csrfToken={csrfToken}>
      <p>
        <a href="/admin">← All syncs</a>
      </p>
      <h1>
        Sync {s.id}: {s.externalId} <StatusBadge status={s.status} />
      </h1>
      <Banner kind="ok" text={notice} />
      <Banner kind="bad" text={error} />
      <table class="facts" aria-label="Sync">
        <tbody>
          <tr>
            <th>Status</th>
            <td id="sync-status" data-status={s.status}>
              {s.status}
            </td>
          </tr>
          <tr>
            <th>Source / call key</th>
            <td>
              {s.source} / {s.callKey}
            </td>
          </tr>
          <tr>
            <th>Target</th>
            <td>{s.target ?? '—'}</td>
          </tr>
          <tr>
            <th>Attempts</th>
            <td>{s.attempts}</td>
          </tr>
          <tr>
            <th>Next attempt</th>
            <td>{s.status === 'pending' ? when(s.nextAttemptAt) : '—'}</td>
          </tr>
          {s.leasedUntil && (
            <tr>
              <th>Being synced</th>
              <td>
                by {s.lockedBy ?? 'a worker'} (lease until {when(s.leasedUntil)})
              </td>
            </tr>
          )}
          <tr>
            <th>CRM id</th>
            <td id="crm-id">{s.crmId ?? '—'}</td>
          </tr>
          {s.crmFollowupId && (
            <tr>
              <th>CRM follow-up id</th>
              <td>{s.crmFollowupId}</td>
            </tr>
          )}
          <tr>
            <th>Events folded</th>
            <td>{s.version}</td>
          </tr>
          <tr>
            <th>First / last event</th>
            <td>
              {when(s.firstEventAt)} / {when(s.lastEventAt)}
            </td>
          </tr>
          <tr>
            <th>Updated</th>
            <td>{when(s.updatedAt)}</td>
          </tr>
          <tr>
            <th>Synced</th>
            <td>{when(s.syncedAt)}</td>
          </tr>
        </tbody>
      </table>

      {s.lastError && (
        <>
          <h2>Last error</h2>
          <p class="banner bad" id="last-error">
            {s.lastErrorKind ? `[${s.lastErrorKind}] ` : ''}
            {s.lastHttpStatus ? `HTTP ${s.lastHttpStatus}: ` : ''}
            {s.lastError}
          </p>
          {s.lastResponse !== null && s.lastResponse !== undefined && (
            <details open>
              <summary>The CRM's response</summary>
              <pre>{pretty(s.lastResponse)}</pre>
            </details>
          )}
        </>
      )}

      <div class="actions">
        <form method="post" action={`/admin/ui/syncs/${s.id}/replay`}>
          <input type="hidden" name="_csrf" value={csrfToken} />
          <button type="submit">Replay with the current mappings</button>
        </form>
        {discardable && (
          <form method="post" action={`/admin/ui/syncs/${s.id}/discard`}>
            <input type="hidden" name="_csrf" value={csrfToken} />
            <button type="submit" class="danger">
              Discard
            </button>
          </form>
        )}
        <a href={`/admin/ui/syncs/${s.id}`}>Refresh</a>
      </div>

      <h2>The current mappings</h2>
      {detail.preview.ok ? (
        <details>
          <summary>The current mappings fold this call without error; a replay stores and sends this activity.</summary>
          <pre>{pretty(detail.preview.activity)}</pre>
        </details>
      ) : (
        <p class="banner bad" id="preview-error">
          The current mappings fail on this call: {detail.preview.error}
        </p>
      )}

      <Json label="Mapped activity (last attempt or replay)" value={s.activity} />
      <Json label="CRM payload (last attempt)" value={s.crmPayload} />

      <h2>Attempts{detail.attemptsTruncated ? ' (newest shown)' : ''}</h2>
      {detail.attempts.length === 0 ? (
        <p class="muted">No attempt yet.</p>
      ) : (
        <table aria-label="Attempts">
          <thead>
            <tr>
              <th class="num">#</th>
              <th>Outcome</th>
              <th>Started</th>
              <th>Finished</th>
              <th>Target / worker</th>
              <th>Error</th>
              <th>CRM response</th>
            </tr>
          </thead>
          <tbody>
            {detail.attempts.map((a) => (
              <tr>
                <td class="num">{a.attempt}</td>
                <td>
                  <StatusBadge status={a.outcome === 'retry' ? 'pending' : a.outcome} /> {a.outcome}
                </td>
                <td>{when(a.startedAt)}</td>
                <td>{when(a.finishedAt)}</td>
                <td>
                  {a.target}
                  <br />
                  <span class="muted">{a.workerId}</span>
                </td>
                <td class="error-text">
                  {a.error ? `${a.errorKind ? `[${a.errorKind}] ` : ''}${a.httpStatus ? `HTTP ${a.httpStatus}: ` : ''}${a.error}` : ''}
                </td>
                <td>
                  {a.crmResponse !== null && a.crmResponse !== undefined && (
                    <details>
                      <summary>show</summary>
                      <pre>{pretty(a.crmResponse)}</pre>
                    </details>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>
        Events ({detail.events.length}
        {detail.eventsTruncated ? '+, oldest shown' : ''})
      </h2>
      {detail.events.map((e) => (
        <section class="event" id={`event-${e.id}`}>
          <h3>
            #{e.id} {e.eventType} <StatusBadge status={e.status} />
          </h3>
          <p class="muted">
            received {when(e.receivedAt)} · vendor time {e.vendorTimeRaw ?? '—'}
            {e.vendorTime ? ` (${when(e.vendorTime)})` : e.vendorTimeRaw ? ' (could not be parsed)' : ''} · dedupe key {e.dedupeKey}
            {e.lastError ? ` · last error: ${e.lastError}` : ''}
          </p>
          <pre>{pretty(e.payload)}</pre>
          <details>
            <summary>Headers and raw body</summary>
            <pre>{pretty(e.headers)}</pre>
            <pre>{e.rawBody}</pre>
          </details>
        </section>
      ))}
    </Layout>
  );
};

export const ConfirmBulkView: FC<{ csrfToken: string; match: BulkReplayResult }> = ({ csrfToken, match }) => {
  const f = match.filter;
  const described = [
    `status ${f.status}`,
    f.source ? `source ${f.source}` : 'every source',
    f.since ? `changed since ${when(f.since)}` : undefined,
    f.until ? `before ${when(f.until)}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return (
    <Layout title="Confirm bulk replay" csrfToken={csrfToken}>
      <p>
        <a href="/admin">← Back without replaying</a>
      </p>
      <h1>Replay {callCount(match.count)}?</h1>
      <p>
        Matching: {described}. Each call is queued now with a fresh retry budget, and the worker folds it with the mappings current at
        that moment.
      </p>
      {match.skipped > 0 && <Banner kind="info" text={`${callCount(match.skipped)} more match but are being synced right now; they will be left alone.`} />}
      {match.count === 0 ? (
        <p class="banner info">Nothing to replay.</p>
      ) : (
        <form method="post" action="/admin/ui/replay" class="actions">
          <input type="hidden" name="_csrf" value={csrfToken} />
          <input type="hidden" name="status" value={f.status} />
          {f.source && <input type="hidden" name="source" value={f.source} />}
          {f.since && <input type="hidden" name="since" value={f.since} />}
          {f.until && <input type="hidden" name="until" value={f.until} />}
          <button type="submit">Yes, replay {callCount(match.count)}</button>
        </form>
      )}
      {(match.calls?.length ?? 0) > 0 && (
        <>
          <h2>{match.truncated ? `The first ${match.calls?.length ?? 0}` : 'The calls'}</h2>
          <table aria-label="Calls to replay">
            <thead>
              <tr>
                <th class="num">ID</th>
                <th>Source</th>
                <th>Call key</th>
                <th class="num">Attempts</th>
                <th>Last error</th>
                <th>Updated</th>
              </tr>
            </thead>
            <tbody>
              {(match.calls ?? []).map((c) => (
                <tr>
                  <td class="num">
                    <a href={`/admin/ui/syncs/${c.id}`}>{c.id}</a>
                  </td>
                  <td>{c.source}</td>
                  <td>{c.callKey}</td>
                  <td class="num">{c.attempts}</td>
                  <td class="error-text">{c.lastError ? clip(c.lastError, 200) : ''}</td>
                  <td>{when(c.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Layout>
  );
};

export { query as queryString };
