import type { FC } from 'hono/jsx';
import type { SyncDetail } from '../schemas';
import { Banner, Layout, StatusBadge, pretty, when } from './shell';

/** One call: its sync state, last error with the CRM's response, replay/discard, the current mappings' fold, attempts and events. */

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
