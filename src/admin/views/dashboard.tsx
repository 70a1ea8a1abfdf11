import type { FC } from 'hono/jsx';
import { SYNC_STATUSES } from '../../db/schema';
import { SOURCE_NAMES } from '../../core/event';
import type { AuditEntry, Summary, SyncSummary } from '../schemas';
import { Banner, Layout, StatusBadge, clip, when } from './shell';

/** The dashboard: counts by source and status, the filtered list of syncs, bulk replay's first step, recent admin actions. */

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
