import type { Database } from '../db/client';
import type { Logger } from '../log';
import { extendLeases } from '../outbox/renew-leases';
import { LeaseLost } from './abort-reasons';

/**
 * Renews a batch's leases every third of the lease while it is being
 * written, so a slow write keeps its calls while a worker that dies stops
 * renewing and its calls come back within one lease.
 *
 * A lease can still be lost: the process stalled or the database was out
 * of reach for longer than the lease, and another worker may already be
 * writing the same call. Then this write is abandoned at once (the
 * controller aborts with LeaseLost), so the older fold is not sent over the
 * newer one: when a renewal finds a lease taken, when no renewal has
 * succeeded for two thirds of a lease (checked on every tick, so a renewal
 * that hangs counts too), and before every quick retry, which confirms the
 * leases first (`confirm`).
 */
export function keepLeases(
  deps: { database: Database; leaseSeconds: number; log: Logger },
  token: string,
  ids: number[],
  controller: AbortController,
): { stop: () => void; confirm: () => Promise<void> } {
  const leaseMs = deps.leaseSeconds * 1000;
  let renewedAt = performance.now();
  let renewing: Promise<void> | undefined;
  const abandon = (message: string, fields: Record<string, unknown>) => {
    if (controller.signal.aborted) return;
    deps.log.warn({ token, ...fields }, message);
    controller.abort(new LeaseLost());
  };
  const renew = (): Promise<void> =>
    (renewing ??= extendLeases(deps.database, token, ids, deps.leaseSeconds)
      .then(
        (held) => {
          renewedAt = performance.now();
          if (held.size < ids.length) abandon('lost the lease on calls being written; abandoning this write', { lost: ids.filter((id) => !held.has(id)) });
        },
        (err: unknown) => deps.log.warn({ err, token }, 'could not renew leases; trying again'),
      )
      .finally(() => {
        renewing = undefined;
      }));
  const timer = setInterval(() => {
    if (performance.now() - renewedAt > (leaseMs * 2) / 3) {
      abandon('no lease renewal for two thirds of a lease; abandoning this write', {});
      return;
    }
    void renew();
  }, Math.max(500, leaseMs / 3));
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    confirm: async () => {
      await renew();
      controller.signal.throwIfAborted();
    },
  };
}
