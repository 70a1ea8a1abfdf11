import type { FC } from 'hono/jsx';
import { callCount, describeFilter, type BulkReplayResult } from '../schemas';
import { Banner, Layout, clip, when } from './shell';

/** Bulk replay's confirmation: what a dry run matched, and the form that replays it. */

export const ConfirmBulkView: FC<{ csrfToken: string; match: BulkReplayResult }> = ({ csrfToken, match }) => {
  const f = match.filter;
  const described = describeFilter(f, when);
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
