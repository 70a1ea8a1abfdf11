import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeSalesforce } from '../../../test/fakes/salesforce';
import { failed, ok, rejection } from '../../../test/support/crm-write';
import { item, salesforceTargets, task } from '../../../test/support/salesforce-write';
import { testConfig } from '../../../test/support/config';
import type { CrmRecord } from '../../core/crm-record';

const server = setupServer();
let fake: FakeSalesforce;
const { clientCredentials, target } = salesforceTargets(() => fake);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeSalesforce();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

describe('SalesforceTarget whole-request rejections (no bisection storm)', () => {
  const calls = (n: number, fields: (i: number) => CrmRecord['fields'] = () => ({})) =>
    Array.from({ length: n }, (_, i) => item(i, [task(`storm:${i}`, fields(i))]));

  it('fails 200 calls that all carry a field the org lacks in one request, with the org message', async () => {
    const org = new FakeSalesforce({ allowAnyCustomField: false });
    server.use(...org.handlers());
    org.registerConnectedApp({ clientId: 'cc-client', clientSecret: 'cc-secret', runAsUsername: 'integration@example.com' });
    const sf = target(testConfig({ CRM_TARGET: 'salesforce', SALESFORCE_LOGIN_URL: org.loginUrl, SALESFORCE_CLIENT_ID: 'cc-client', SALESFORCE_CLIENT_SECRET: 'cc-secret' }));
    const results = await sf.write(calls(200, () => ({ Disposition_Code__c: 'SALE' })));
    expect(org.requests('upsert')).toBe(1);
    expect(results).toHaveLength(200);
    for (const result of results) {
      expect(failed(result).error).toMatchObject({
        kind: 'mapping',
        retryable: false,
        httpStatus: 400,
        crmCode: 'INVALID_FIELD',
        message: "INVALID_FIELD: No such column 'Disposition_Code__c' on sobject of type Task",
      });
    }
    expect(org.tasks()).toHaveLength(0);
  });

  it('fails every call in one request when the External ID field does not exist (404), saying which setting to check', async () => {
    const sf = target(clientCredentials({ SALESFORCE_EXTERNAL_ID_FIELD: 'Missing_Key__c' }));
    const results = await sf.write(calls(120));
    expect(fake.requests('upsert')).toBe(1);
    for (const result of results) {
      expect(failed(result).error).toMatchObject({ kind: 'mapping', httpStatus: 404, crmCode: 'NOT_FOUND' });
    }
    expect(failed(results[0]).error.message).toBe(
      'NOT_FOUND: Provided external ID field does not exist or is not accessible: Missing_Key__c (is Missing_Key__c an External ID field on Task, visible to the integration user? See SALESFORCE_EXTERNAL_ID_FIELD)',
    );
  });

  it('isolates a call the org refuses without naming it (JSON_PARSER_ERROR) and writes the others, in few requests', async () => {
    const sf = target();
    const results = await sf.write(calls(50, (i) => (i === 37 ? { CallDurationInSeconds: 'forty' } : {})));
    expect(failed(results[37]).error).toMatchObject({ kind: 'permanent', httpStatus: 400, crmCode: 'JSON_PARSER_ERROR' });
    expect(failed(results[37]).error.message).toMatch(/^JSON_PARSER_ERROR: Cannot deserialize instance of int from VALUE_STRING value forty/);
    results.forEach((r, i) => {
      if (i !== 37) ok(r);
    });
    expect(fake.tasks()).toHaveLength(49);
    // Bisection: two requests per halving down to the culprit, not 2n-1.
    expect(fake.requests('upsert')).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(50)));
  });

  it('caps the requests spent isolating culprits nobody names; the calls left are retried later, none failed for good by mistake', async () => {
    const sf = target();
    const bad = new Set([3, 9, 17, 22, 30, 41, 48, 55, 61, 70, 77, 84, 90, 99, 105, 119]);
    const results = await sf.write(calls(128, (i) => (bad.has(i) ? { CallDurationInSeconds: 'n/a' } : {})));
    expect(fake.requests('upsert')).toBeLessThanOrEqual(1 + 4 * Math.ceil(Math.log2(128)));
    results.forEach((result, i) => {
      if (result.ok) return;
      if (bad.has(i)) expect(['JSON_PARSER_ERROR', 'NOT_ISOLATED']).toContain(result.error.crmCode);
      else expect(result.error).toMatchObject({ kind: 'transient', retryable: true, crmCode: 'NOT_ISOLATED' });
    });
    // Groups the bisection found clean were written; no bad call was.
    expect(fake.tasks().length).toBeGreaterThan(0);
    expect(fake.tasks().every((t) => !bad.has(Number(String(t['Call_Sync_Id__c']).split(':')[1])))).toBe(true);
  });

  it('treats a top-level UNABLE_TO_LOCK_ROW as transient whatever the status, without bisecting', async () => {
    const sf = target();
    fake.failNext(1, { type: 'answer', status: 400, body: [{ message: 'unable to obtain exclusive access to this record', errorCode: 'UNABLE_TO_LOCK_ROW' }] }, 'upsert');
    const error = await rejection(sf.write(calls(40)));
    expect(error).toMatchObject({ kind: 'transient', retryable: true, httpStatus: 400, crmCode: 'UNABLE_TO_LOCK_ROW' });
    expect(fake.requests('upsert')).toBe(1);
    fake.failNext(1, { type: 'answer', status: 403, body: [{ message: 'Server temporarily unavailable', errorCode: 'SERVER_UNAVAILABLE' }] }, 'upsert');
    expect(await rejection(sf.write(calls(2)))).toMatchObject({ kind: 'transient', httpStatus: 403, crmCode: 'SERVER_UNAVAILABLE' });
    (await sf.write(calls(40))).forEach((r) => ok(r));
  });

  it('writes 201 calls as two requests of at most 200, one Task per call', async () => {
    const sf = target();
    const results = await sf.write(calls(201));
    results.forEach((r) => expect(ok(r).created).toBe(true));
    expect(fake.requests('upsert')).toBe(2);
    const tasks = fake.tasks();
    expect(tasks).toHaveLength(201);
    expect(new Set(tasks.map((t) => t['Call_Sync_Id__c'])).size).toBe(201);
  });
});
