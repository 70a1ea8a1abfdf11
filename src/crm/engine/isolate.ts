import { SyncError } from '../../core/errors';

/**
 * What to do when a CRM refuses a batch request as a whole (Salesforce 400
 * INVALID_FIELD, HubSpot 400 on batch/upsert) instead of answering per
 * record. Bisecting blindly costs 2n-1 requests when every record carries the
 * cause (a field the org does not have): 399 requests for 200 calls, which
 * outlives the write's deadline and spends the org's daily allowance on a
 * configuration error. So:
 *  - the target reads the rejection first: when it names its culprits (the
 *    records that carry the unknown field, the ids that do not exist), those
 *    fail with the CRM's message and the others are sent again; when every
 *    record is a culprit, the whole chunk fails in that one request;
 *  - only a rejection that names nobody is bisected, halves in parallel,
 *    within a budget of extra requests. Records still mixed with an unknown
 *    culprit when the budget is spent are retried later (transient): a later
 *    attempt groups them differently.
 */

export type BatchAttempt<T, O> =
  | { accepted: true; outcomes: O[] }
  | {
      accepted: false;
      /** The rejection, as each culprit will report it. */
      error: SyncError;
      /** The records the rejection is about, when it says; undefined when it names nobody. */
      culprits: ReadonlySet<T> | undefined;
    };

export interface IsolateOptions<T, O> {
  /** One request for these records: their outcomes in order, or the whole-request rejection. */
  send: (records: T[]) => Promise<BatchAttempt<T, O>>;
  /** The outcome of a record the CRM refused. */
  failed: (record: T, error: SyncError) => O;
  /** Requests allowed beyond the first (see isolationBudget). */
  maxExtraRequests: number;
}

/** Enough extra requests to isolate two unnamed culprits by bisection (at least 8). */
export function isolationBudget(records: number): number {
  return Math.max(8, 4 * Math.ceil(Math.log2(Math.max(2, records))));
}

export async function sendIsolating<T, O>(records: T[], options: IsolateOptions<T, O>): Promise<O[]> {
  const outcomes = new Map<T, O>();
  let extraLeft = options.maxExtraRequests;

  const run = async (group: T[], first: boolean, rejectedWith: SyncError | undefined): Promise<void> => {
    if (group.length === 0) return;
    if (!first) {
      if (extraLeft <= 0) {
        const error = notIsolated(rejectedWith, group.length);
        for (const record of group) outcomes.set(record, options.failed(record, error));
        return;
      }
      extraLeft -= 1;
    }
    const attempt = await options.send(group);
    if (attempt.accepted) {
      group.forEach((record, i) => {
        const outcome = attempt.outcomes[i];
        if (outcome !== undefined) outcomes.set(record, outcome);
      });
      return;
    }
    const culprits = attempt.culprits === undefined ? [] : group.filter((r) => attempt.culprits?.has(r));
    if (culprits.length > 0) {
      for (const record of culprits) outcomes.set(record, options.failed(record, attempt.error));
      await run(
        group.filter((r) => !attempt.culprits?.has(r)),
        false,
        attempt.error,
      );
      return;
    }
    const [only] = group;
    if (group.length === 1 && only !== undefined) {
      // Alone in its request: the rejection is this record's own.
      outcomes.set(only, options.failed(only, attempt.error));
      return;
    }
    const middle = Math.ceil(group.length / 2);
    await Promise.all([run(group.slice(0, middle), false, attempt.error), run(group.slice(middle), false, attempt.error)]);
  };

  await run(records, true, undefined);
  return records.map((record) => outcomes.get(record) ?? options.failed(record, notIsolated(undefined, records.length)));
}

function notIsolated(rejection: SyncError | undefined, count: number): SyncError {
  return new SyncError(
    'transient',
    `the CRM refused a request carrying this call and ${count - 1} other(s) without saying which; not isolated within this attempt's request budget${rejection === undefined ? '' : `: ${rejection.message}`}`,
    {
      crmCode: 'NOT_ISOLATED',
      httpStatus: rejection?.httpStatus,
      crmResponse: rejection?.crmResponse,
    },
  );
}
