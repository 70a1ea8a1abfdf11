import { generateKeyPairSync } from 'node:crypto';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeSalesforce } from '../../../test/fakes/salesforce';
import { testConfig } from '../../config';
import { createLogger } from '../../log';
import type { CrmRecord, LookupRequest } from '../../core/crm-record';
import { ManualClock } from '../../core/time';
import { SalesforceTarget } from './salesforce-target';
import type { SentPayload } from '../engine/sent-record';
import { type WriteItem, type WriteResult } from '../engine/target-contract';
import { SyncError } from '../../core/errors';

const server = setupServer();
const logger = createLogger({ level: 'silent' });
let fake: FakeSalesforce;

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeSalesforce();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

function clientCredentials(overrides: Record<string, string> = {}) {
  fake.registerConnectedApp({ clientId: 'cc-client', clientSecret: 'cc-secret', runAsUsername: 'integration@example.com' });
  return testConfig({
    CRM_TARGET: 'salesforce',
    SALESFORCE_LOGIN_URL: fake.loginUrl,
    SALESFORCE_CLIENT_ID: 'cc-client',
    SALESFORCE_CLIENT_SECRET: 'cc-secret',
    ...overrides,
  });
}

function target(config = clientCredentials(), clock?: ManualClock): SalesforceTarget {
  return new SalesforceTarget(config, logger, clock === undefined ? {} : { clock });
}

function task(externalId: string, fields: CrmRecord['fields'] = {}, lookups: Record<string, LookupRequest> = {}): CrmRecord {
  return {
    kind: 'activity',
    object: 'Task',
    externalId,
    fields: {
      Subject: 'Inbound call',
      Status: 'Completed',
      TaskSubtype: 'Call',
      CallType: 'Inbound',
      CallDurationInSeconds: 42,
      ...fields,
    },
    createOnly: ['TaskSubtype'],
    lookups,
  };
}

function item(syncId: number, records: CrmRecord[], knownIds: Record<string, string> = {}): WriteItem {
  return { syncId, externalId: records[0]?.externalId ?? `x:${syncId}`, records: { salesforce: records }, knownIds };
}

function ok(result: WriteResult | undefined): Extract<WriteResult, { ok: true }> {
  if (result === undefined || !result.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result;
}

function failed(result: WriteResult | undefined): Extract<WriteResult, { ok: false }> {
  if (result === undefined || result.ok) throw new Error(`expected failure, got ${JSON.stringify(result)}`);
  return result;
}

async function rejection(promise: Promise<unknown>): Promise<SyncError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SyncError) return err;
    throw err;
  }
  throw new Error('expected a SyncError');
}

describe('SalesforceTarget writes', () => {
  it('creates a Task, then updates the same Task in place', async () => {
    const sf = target();
    const [first] = await sf.write([item(1, [task('enreach:call-1', { Description: 'ringing' })])]);
    const created = ok(first);
    expect(created.created).toBe(true);
    const id = created.ids['enreach:call-1'];
    expect(fake.tasks()).toHaveLength(1);

    const [second] = await sf.write([
      item(1, [task('enreach:call-1', { Description: 'answered, 3 min', CallDurationInSeconds: 180 })], { 'enreach:call-1': id ?? '' }),
    ]);
    const updated = ok(second);
    expect(updated.created).toBe(false);
    expect(updated.ids['enreach:call-1']).toBe(id);
    const tasks = fake.tasks();
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      Id: id,
      Call_Sync_Id__c: 'enreach:call-1',
      Description: 'answered, 3 min',
      CallDurationInSeconds: 180,
      TaskSubtype: 'Call',
      Status: 'Completed',
    });
    // The update carried no create-only field (the org would refuse it).
    const sent = updated.sent as unknown as SentPayload;
    expect(sent.records[0]?.payload).not.toHaveProperty('TaskSubtype');
    expect(sent.records[0]?.request).toBe('PATCH /services/data/v62.0/composite/sobjects/Task/Call_Sync_Id__c');
  });

  it('updates without sending TaskSubtype even when the id of the existing Task is not known', async () => {
    const sf = target();
    ok((await sf.write([item(1, [task('genesys-ocs:c-9', { Description: 'first' })])]))[0]);
    const [again] = await sf.write([item(1, [task('genesys-ocs:c-9', { Description: 'second' })])]);
    const result = ok(again);
    expect(result.created).toBe(false);
    expect(fake.tasks()).toEqual([expect.objectContaining({ Description: 'second', TaskSubtype: 'Call' })]);
    expect((result.sent as unknown as SentPayload).records[0]?.payload).not.toHaveProperty('TaskSubtype');
  });

  it('does not duplicate a Task when a write the org applied timed out and is retried', async () => {
    const sf = target(clientCredentials({ CRM_TIMEOUT_MS: '150' }));
    await sf.write([item(1, [task('hcc:slow-1')])]); // session established, Task created
    fake.failNext(1, { type: 'late', delayMs: 300 }, 'upsert');
    const timeout = await rejection(sf.write([item(2, [task('hcc:slow-2', { Description: 'v1' })])]));
    expect(timeout.kind).toBe('transient');
    expect(timeout.crmCode).toBe('TIMEOUT');
    expect(fake.taskByExternalId('hcc:slow-2')).toBeDefined(); // the org did apply it

    const [retried] = await sf.write([item(2, [task('hcc:slow-2', { Description: 'v2' })])]);
    expect(ok(retried).created).toBe(false);
    expect(fake.tasks().filter((t) => t['Call_Sync_Id__c'] === 'hcc:slow-2')).toEqual([
      expect.objectContaining({ Description: 'v2' }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // let the late answer land
  });

  it('fails only the record the org rejects and writes the rest of the batch', async () => {
    fake.addValidationRule('Task', (t) => (t['Description'] === 'forbidden' ? 'Description may not say forbidden' : undefined));
    const sf = target();
    const results = await sf.write([
      item(1, [task('ucontact:a')]),
      item(2, [task('ucontact:b', { Status: 'Exploded' })]),
      item(3, [task('ucontact:c', { Description: 'forbidden' })]),
      item(4, [task('ucontact:d')]),
    ]);
    expect(ok(results[0]).created).toBe(true);
    const picklist = failed(results[1]).error;
    expect(picklist).toMatchObject({ kind: 'permanent', retryable: false, crmCode: 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST' });
    expect(picklist.message).toBe('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: Status: bad value for restricted picklist field: Exploded (Status)');
    expect(failed(results[2]).error).toMatchObject({
      kind: 'permanent',
      crmCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION',
      message: 'FIELD_CUSTOM_VALIDATION_EXCEPTION: Description may not say forbidden',
    });
    ok(results[3]);
    expect(fake.tasks().map((t) => t['Call_Sync_Id__c']).sort()).toEqual(['ucontact:a', 'ucontact:d']);
  });

  it('isolates a call whose fields the org rejects for the whole request (top-level errorCode), in one more request', async () => {
    const sf = target();
    const results = await sf.write([
      item(1, [task('webex-cc:1')]),
      item(2, [task('webex-cc:2')]),
      item(3, [task('webex-cc:3', { Disposition: 'Sale' })]), // no such standard field on Task
      item(4, [task('webex-cc:4')]),
      item(5, [task('webex-cc:5')]),
    ]);
    expect(failed(results[2]).error).toMatchObject({
      kind: 'mapping',
      retryable: false,
      httpStatus: 400,
      crmCode: 'INVALID_FIELD',
      message: "INVALID_FIELD: No such column 'Disposition' on sobject of type Task",
    });
    for (const i of [0, 1, 3, 4]) ok(results[i]);
    expect(fake.tasks()).toHaveLength(4);
    // The org named the field: the calls carrying it fail, the others go again at once.
    expect(fake.requests('upsert')).toBe(2);
  });

  it('retries a record the org could not lock (transient, per record)', async () => {
    const sf = target();
    fake.failNext(1, { type: 'row-lock' }, 'upsert');
    const [locked] = await sf.write([item(1, [task('enreach:lock')])]);
    expect(failed(locked).error).toMatchObject({ kind: 'transient', retryable: true, crmCode: 'UNABLE_TO_LOCK_ROW' });
    expect(fake.tasks()).toHaveLength(0);
    ok((await sf.write([item(1, [task('enreach:lock')])]))[0]);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('writes the follow-up task of a call beside its activity', async () => {
    const sf = target();
    const followup: CrmRecord = {
      kind: 'followup',
      object: 'Task',
      externalId: 'hcc:77:callback',
      fields: { Subject: 'Call back', Status: 'Not Started', ActivityDate: '2025-01-16', TaskSubtype: 'Task' },
      createOnly: ['TaskSubtype'],
      lookups: {},
    };
    const [result] = await sf.write([item(1, [task('hcc:77'), followup])]);
    const written = ok(result);
    expect(Object.keys(written.ids).sort()).toEqual(['hcc:77', 'hcc:77:callback']);
    expect(fake.taskByExternalId('hcc:77:callback')).toMatchObject({ Subject: 'Call back', ActivityDate: '2025-01-16', TaskSubtype: 'Task' });
  });

  it('turns a network failure into a transient error', async () => {
    const sf = target();
    await sf.write([item(1, [task('a:1')])]);
    fake.failNext(1, { type: 'network' }, 'upsert');
    expect(await rejection(sf.write([item(2, [task('a:2')])]))).toMatchObject({ kind: 'transient', retryable: true });
    fake.failNext(1, { type: 'unavailable' }, 'upsert');
    expect(await rejection(sf.write([item(2, [task('a:2')])]))).toMatchObject({ kind: 'transient', httpStatus: 503, crmCode: 'SERVER_UNAVAILABLE' });
    expect(fake.taskByExternalId('a:2')).toBeUndefined();
  });

  it('stops at once when the caller aborts', async () => {
    fake.latencyMs = 500;
    const sf = target();
    const controller = new AbortController();
    const pending = sf.write([item(1, [task('a:abort')])], controller.signal);
    setTimeout(() => controller.abort(), 20);
    const started = Date.now();
    expect(await rejection(pending)).toMatchObject({ kind: 'transient', crmCode: 'ABORTED' });
    expect(Date.now() - started).toBeLessThan(400);
  });
});

describe('SalesforceTarget sessions', () => {
  it('client credentials: runs the grant, and runs it again when the session expires', async () => {
    const sf = target();
    ok((await sf.write([item(1, [task('s:1')])]))[0]);
    fake.expireSessions();
    ok((await sf.write([item(2, [task('s:2')])]))[0]);
    expect(fake.grants).toEqual(['client_credentials', 'client_credentials']);
    expect(fake.tasks()).toHaveLength(2);
  });

  it('refreshes once on a 401 and retries the same request', async () => {
    const sf = target();
    ok((await sf.write([item(1, [task('s:1')])]))[0]);
    fake.failNext(1, { type: 'auth' }, 'upsert');
    ok((await sf.write([item(2, [task('s:2')])]))[0]);
    expect(fake.tasks().map((t) => t['Call_Sync_Id__c']).sort()).toEqual(['s:1', 's:2']);
    expect(fake.grants).toHaveLength(2);
  });

  it('gives up with an auth error when the session is refused again after the refresh', async () => {
    const sf = target();
    ok((await sf.write([item(1, [task('s:1')])]))[0]);
    fake.failNext(5, { type: 'auth' }, 'upsert');
    const error = await rejection(sf.write([item(2, [task('s:2')])]));
    expect(error).toMatchObject({ kind: 'auth', retryable: true, httpStatus: 401, crmCode: 'INVALID_SESSION_ID' });
    expect(fake.grants).toHaveLength(2); // one refresh, not a loop
    expect(fake.taskByExternalId('s:2')).toBeUndefined();
  });

  it('reports a refused re-grant after an expired session as an auth error', async () => {
    const sf = target();
    ok((await sf.write([item(1, [task('s:1')])]))[0]);
    fake.registerConnectedApp({ clientId: 'cc-client', clientSecret: 'rotated', runAsUsername: 'integration@example.com' });
    fake.expireSessions();
    expect(await rejection(sf.write([item(2, [task('s:2')])]))).toMatchObject({ kind: 'auth', crmCode: 'invalid_client' });
    expect(fake.taskByExternalId('s:2')).toBeUndefined();
  });

  it('reports refused client credentials as an auth error', async () => {
    fake.registerConnectedApp({ clientId: 'cc-client', clientSecret: 'other-secret', runAsUsername: 'x@example.com' });
    const sf = target(
      testConfig({
        CRM_TARGET: 'salesforce',
        SALESFORCE_LOGIN_URL: fake.loginUrl,
        SALESFORCE_CLIENT_ID: 'cc-client',
        SALESFORCE_CLIENT_SECRET: 'wrong',
      }),
    );
    const error = await rejection(sf.write([item(1, [task('s:1')])]));
    expect(error).toMatchObject({ kind: 'auth', crmCode: 'invalid_client' });
    expect(fake.tasks()).toHaveLength(0);
  });

  it('refresh token: exchanges it for a session and again after expiry', async () => {
    fake.registerConnectedApp({ clientId: 'web-client', clientSecret: 'web-secret' });
    fake.addUser({ Email: 'admin@example.com' });
    const refreshToken = fake.issueRefreshToken('web-client');
    const sf = target(
      testConfig({
        CRM_TARGET: 'salesforce',
        SALESFORCE_LOGIN_URL: fake.loginUrl,
        SALESFORCE_CLIENT_ID: 'web-client',
        SALESFORCE_CLIENT_SECRET: 'web-secret',
        SALESFORCE_REFRESH_TOKEN: refreshToken,
      }),
    );
    ok((await sf.write([item(1, [task('r:1')])]))[0]);
    fake.expireSessions();
    ok((await sf.write([item(2, [task('r:2')])]))[0]);
    expect(fake.grants).toEqual(['refresh_token', 'refresh_token']);
    expect(fake.tasks()).toHaveLength(2);
  });

  it('JWT bearer: signs an assertion the org verifies, and signs a new one when the session expires', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    fake.addUser({ Email: 'integration@example.com', Username: 'integration@example.com.prod' });
    fake.registerConnectedApp({ clientId: 'jwt-client', certificatePem: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    const config = testConfig({
      CRM_TARGET: 'salesforce',
      SALESFORCE_LOGIN_URL: fake.loginUrl,
      SALESFORCE_CLIENT_ID: 'jwt-client',
      SALESFORCE_USERNAME: 'integration@example.com.prod',
      // As it arrives from an env file: one line with literal \n.
      SALESFORCE_PRIVATE_KEY: pem.replace(/\n/g, '\\n'),
    });
    const sf = target(config);
    ok((await sf.write([item(1, [task('j:1')])]))[0]);
    fake.expireSessions();
    ok((await sf.write([item(2, [task('j:2')])]))[0]);
    expect(fake.grants).toEqual([
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
    ]);
    expect(fake.tasks()).toHaveLength(2);

    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const forged = target({ ...config, SALESFORCE_PRIVATE_KEY: stranger });
    expect(await rejection(forged.write([item(3, [task('j:3')])]))).toMatchObject({ kind: 'auth', crmCode: 'invalid_grant' });
    expect(fake.taskByExternalId('j:3')).toBeUndefined();
  });

  it('fixed access token: works until the org expires it, then fails with auth (nothing to refresh with)', async () => {
    const token = fake.issueAccessToken();
    const sf = target(
      testConfig({ CRM_TARGET: 'salesforce', SALESFORCE_INSTANCE_URL: fake.instanceUrl, SALESFORCE_ACCESS_TOKEN: token }),
    );
    ok((await sf.write([item(1, [task('t:1')])]))[0]);
    fake.expireSessions();
    expect(await rejection(sf.write([item(2, [task('t:2')])]))).toMatchObject({ kind: 'auth', httpStatus: 401 });
    expect(fake.tasks()).toHaveLength(1);
    expect(fake.grants).toHaveLength(0);
  });
});

describe('SalesforceTarget pacing and quota', () => {
  it('honours Retry-After on a 429: no request until then, then carries on', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.failNext(1, { type: 'rate-limit', retryAfterSeconds: 30 }, 'upsert');
    const limited = await rejection(sf.write([item(1, [task('p:1')])]));
    expect(limited).toMatchObject({ kind: 'transient', httpStatus: 429 });
    expect(limited.retryAt?.getTime()).toBe(clock.now() + 30_000);

    const upserts = fake.requests('upsert');
    const held = await rejection(sf.write([item(1, [task('p:1')])]));
    expect(held).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect(held.retryAt?.getTime()).toBe(clock.now() + 30_000);
    expect(fake.requests('upsert')).toBe(upserts);

    clock.advance(30_000);
    ok((await sf.write([item(1, [task('p:1')])]))[0]);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('waits out a short Retry-After inside the next write', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.failNext(1, { type: 'rate-limit', retryAfterSeconds: 2 }, 'upsert');
    const start = clock.now();
    expect(await rejection(sf.write([item(1, [task('p:2')])]))).toMatchObject({ httpStatus: 429 });
    ok((await sf.write([item(1, [task('p:2')])]))[0]);
    expect(clock.now() - start).toBeGreaterThanOrEqual(2_000);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('pauses on the daily quota: pausedUntil set, no calls until it passes', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.failNext(1, { type: 'quota' }, 'upsert');
    const spent = await rejection(sf.write([item(1, [task('q:1')])]));
    expect(spent).toMatchObject({ kind: 'quota', retryable: true, httpStatus: 403, crmCode: 'REQUEST_LIMIT_EXCEEDED' });
    const until = sf.pausedUntil();
    expect(until?.getTime()).toBe(clock.now() + 3_600_000);
    expect(spent.retryAt).toEqual(until);

    const requests = fake.requests();
    const refused = await rejection(sf.write([item(2, [task('q:2')])]));
    expect(refused).toMatchObject({ kind: 'quota', retryAt: until });
    expect(fake.requests()).toBe(requests);
    expect(fake.tasks()).toHaveLength(0);

    clock.advance(3_600_000);
    expect(sf.pausedUntil()).toBeUndefined();
    ok((await sf.write([item(1, [task('q:1')])]))[0]);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('pauses before the org refuses when Sforce-Limit-Info says the day is spent', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.setApiUsage(4_999, 5_000);
    ok((await sf.write([item(1, [task('q:3')])]))[0]); // this request is the 5,000th
    expect(sf.pausedUntil()).toBeDefined();
    expect(await rejection(sf.write([item(2, [task('q:4')])]))).toMatchObject({ kind: 'quota' });
    expect(fake.tasks()).toHaveLength(1);
  });

  it('spreads requests out when most of the daily budget is used', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.setApiUsage(4_800, 5_000); // 96 % used: the last 200 must last the day
    ok((await sf.write([item(1, [task('q:5')])]))[0]);
    const spaced = await rejection(sf.write([item(2, [task('q:6')])]));
    expect(spaced).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect((spaced.retryAt?.getTime() ?? 0) - clock.now()).toBeGreaterThan(5_000);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('treats the concurrent-request limit as transient, not as the daily quota', async () => {
    const sf = target();
    fake.failNext(1, { type: 'concurrent-limit' }, 'upsert');
    expect(await rejection(sf.write([item(1, [task('c:1')])]))).toMatchObject({ kind: 'transient', crmCode: 'REQUEST_LIMIT_EXCEEDED' });
    expect(sf.pausedUntil()).toBeUndefined();
  });
});

describe('SalesforceTarget lookups', () => {
  const whoBy = (phone: string) => ({ WhoId: { by: 'phone', value: phone } as const });

  it('matches contacts whose numbers are stored in different formats, Contact before Lead', async () => {
    const formatted = fake.addContact({ LastName: 'Formatted', Phone: '(555) 123-4567' });
    const mobile = fake.addContact({ LastName: 'Mobile', MobilePhone: '555.222.3333' });
    const london = fake.addContact({ LastName: 'London', Phone: '020 7946 0958' });
    const lead = fake.addLead({ LastName: 'Lead only', Phone: '+1 555 987 6543' });
    fake.addLead({ LastName: 'Lead shadowed', Phone: '5552223333' });
    fake.addContact({ LastName: 'Look-alike', Phone: '+44 555 123 4567' }); // same digits, other country
    fake.addLead({ LastName: 'Converted', Phone: '+1 555 444 0000', IsConverted: true });

    const sf = target(clientCredentials({ DEFAULT_PHONE_REGION: 'US' }));
    const results = await sf.write([
      item(1, [task('m:1', {}, whoBy('+15551234567'))]),
      item(2, [task('m:2', {}, whoBy('+15552223333'))]),
      item(3, [task('m:3', {}, whoBy('+15559876543'))]),
      item(4, [task('m:4', {}, whoBy('+15550000000'))]),
      item(5, [task('m:5', {}, whoBy('+15554440000'))]),
    ]);
    results.forEach((r) => ok(r));
    expect(fake.taskByExternalId('m:1')?.['WhoId']).toBe(formatted);
    expect(fake.taskByExternalId('m:2')?.['WhoId']).toBe(mobile);
    expect(fake.taskByExternalId('m:3')?.['WhoId']).toBe(lead);
    expect(fake.taskByExternalId('m:4')).not.toHaveProperty('WhoId');
    expect(fake.taskByExternalId('m:5')).not.toHaveProperty('WhoId');
    expect((ok(results[3]).sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['WhoId']);

    // A national number stored without country code matches in its own region.
    const uk = target(clientCredentials({ DEFAULT_PHONE_REGION: 'GB' }));
    ok((await uk.write([item(6, [task('m:6', {}, whoBy('+442079460958'))])]))[0]);
    expect(fake.taskByExternalId('m:6')?.['WhoId']).toBe(london);
  });

  it('links nothing when a number matches several contacts, unless told to take the first', async () => {
    const older = fake.addContact({ LastName: 'Older', Phone: '+1 (555) 300-1000' });
    fake.addContact({ LastName: 'Newer', MobilePhone: '5553001000' });
    ok((await target().write([item(1, [task('amb:1', {}, whoBy('+15553001000'))])]))[0]);
    expect(fake.taskByExternalId('amb:1')).not.toHaveProperty('WhoId');

    const first = target(clientCredentials({ SALESFORCE_AMBIGUOUS_MATCH: 'first' }));
    ok((await first.write([item(2, [task('amb:2', {}, whoBy('+15553001000'))])]))[0]);
    expect(fake.taskByExternalId('amb:2')?.['WhoId']).toBe(older);
  });

  it('resolves the owner by email and a related record by field; unknown values leave the field unset', async () => {
    const rep = fake.addUser({ Email: 'Rep.One@Example.com' });
    fake.addUser({ Email: 'gone@example.com', IsActive: false });
    const account = fake.addAccount({ Name: 'Acme', AccountNumber: 'ACME-42' });
    const sf = target();
    const results = await sf.write([
      item(1, [task('o:1', {}, { OwnerId: { by: 'email', value: 'rep.one@example.com' }, WhatId: { by: 'field', object: 'Account', field: 'AccountNumber', value: 'ACME-42' } })]),
      item(2, [task('o:2', {}, { OwnerId: { by: 'email', value: 'gone@example.com' }, WhatId: { by: 'id', value: account } })]),
    ]);
    results.forEach((r) => ok(r));
    expect(fake.taskByExternalId('o:1')).toMatchObject({ OwnerId: rep, WhatId: account });
    expect(fake.taskByExternalId('o:2')).not.toHaveProperty('OwnerId');
    expect(fake.taskByExternalId('o:2')).toMatchObject({ WhatId: account });
  });

  it('batches lookups into few requests and serves repeats from the cache', async () => {
    fake.addUser({ Email: 'agent@example.com' });
    const numbers = Array.from({ length: 150 }, (_, i) => `+1555${String(7_000_000 + i)}`);
    numbers.slice(0, 50).forEach((n, i) => fake.addContact({ LastName: `C${i}`, Phone: n.slice(2) }));
    const sf = target();
    const batch = numbers.map((n, i) =>
      item(i, [task(`bulk:${i}`, {}, { ...whoBy(n), OwnerId: { by: 'email', value: 'agent@example.com' } })]),
    );
    const firstResults = (await sf.write(batch)).map((r) => ok(r));
    expect(fake.tasks().filter((t) => typeof t['WhoId'] === 'string')).toHaveLength(50);
    expect(fake.tasks().every((t) => typeof t['OwnerId'] === 'string')).toBe(true);
    // 150 calls: SOSL chunks under 4,000 characters, one User query, one upsert.
    expect(fake.requests('sosl')).toBeLessThanOrEqual(2);
    expect(fake.requests('soql')).toBe(1);
    expect(fake.requests('upsert')).toBe(1);

    // The steady state: the worker passes the ids it stored, lookups are cached.
    fake.resetCounters();
    const again = batch.slice(0, 50).map((b, i) => ({ ...b, knownIds: firstResults[i]?.ids ?? {} }));
    (await sf.write(again)).forEach((r) => ok(r));
    expect(fake.counters()).toEqual({ upsert: 1 });
  });

  it('shares one search between writes that run at the same time', async () => {
    fake.addContact({ Phone: '555-600-0001' });
    const sf = target();
    await sf.write([item(0, [task('warm:0')])]); // session first
    fake.resetCounters();
    await Promise.all([
      sf.write([item(1, [task('share:1', {}, whoBy('+15556000001'))])]),
      sf.write([item(2, [task('share:2', {}, whoBy('+15556000002'))])]),
      sf.write([item(3, [task('share:3', {}, whoBy('+15556000001'))])]),
    ]);
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.taskByExternalId('share:3')?.['WhoId']).toBe(fake.taskByExternalId('share:1')?.['WhoId']);
  });

  it('escapes SOSL reserved characters', async () => {
    const { escapeSosl } = await import('./salesforce-lookups');
    expect(escapeSosl('+1 (555) "x" - a:b')).toBe('\\+1 \\(555\\) \\"x\\" \\- a\\:b');
  });
});

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

describe('SalesforceTarget create-only fields', () => {
  it('treats TaskSubtype as create-only even when the mapping forgets to say so', async () => {
    const sf = target();
    const forgetful = (description: string): CrmRecord => ({ ...task('ucontact:f1', { Description: description }), createOnly: [] });
    const first = ok((await sf.write([item(1, [forgetful('first')])]))[0]);
    // Known id: TaskSubtype is left out of the update.
    const known = ok((await sf.write([item(1, [forgetful('second')], first.ids)]))[0]);
    expect((known.sent as unknown as SentPayload).records[0]?.payload).not.toHaveProperty('TaskSubtype');
    // Unknown id: the org refuses TaskSubtype (its error names the field) and the Task is updated without it.
    const unknown = ok((await sf.write([item(1, [forgetful('third')])]))[0]);
    expect(unknown.created).toBe(false);
    expect(fake.tasks()).toEqual([expect.objectContaining({ Description: 'third', TaskSubtype: 'Call' })]);
  });

  it('does not drop a field the org refuses on create as well: the call fails with its message', async () => {
    const sf = target();
    const [result] = await sf.write([item(1, [task('ucontact:f2', { CreatedDate: '2025-01-01T00:00:00Z' })])]);
    expect(failed(result).error).toMatchObject({ kind: 'permanent', crmCode: 'INVALID_FIELD_FOR_INSERT_UPDATE' });
    expect(failed(result).error.message).toContain('(CreatedDate)');
    expect(fake.tasks()).toHaveLength(0);
  });
});

describe('SalesforceTarget lookup cache', () => {
  const whoBy = (phone: string) => ({ WhoId: { by: 'phone', value: phone } as const });

  it('looks a number up again once its positive TTL has passed', async () => {
    const clock = new ManualClock();
    const first = fake.addContact({ LastName: 'First', Phone: '555 700 1000' });
    const sf = target(clientCredentials({ LOOKUP_CACHE_TTL_SECONDS: '600' }), clock);
    ok((await sf.write([item(1, [task('ttl:1', {}, whoBy('+15557001000'))])]))[0]);
    expect(fake.taskByExternalId('ttl:1')?.['WhoId']).toBe(first);

    // A rep edits the CRM: the number now belongs to another contact.
    fake.update('Contact', first, { Phone: '555 700 9999' });
    const second = fake.addContact({ LastName: 'Second', Phone: '+1 555 700 1000' });
    fake.resetCounters();
    clock.advance(599_000);
    ok((await sf.write([item(2, [task('ttl:2', {}, whoBy('+15557001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(0); // still fresh: the cached match is used
    expect(fake.taskByExternalId('ttl:2')?.['WhoId']).toBe(first);

    clock.advance(2_000);
    ok((await sf.write([item(3, [task('ttl:3', {}, whoBy('+15557001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.taskByExternalId('ttl:3')?.['WhoId']).toBe(second);
  });

  it('drops a cached Contact the org refuses (merged, deleted) and retries the call soon instead of failing it', async () => {
    const clock = new ManualClock();
    const gone = fake.addContact({ LastName: 'Merged away', Phone: '555 710 2000' });
    const sf = target(clientCredentials(), clock);
    ok((await sf.write([item(1, [task('stale:1', {}, whoBy('+15557102000'))])]))[0]);
    fake.remove('Contact', gone);

    const [refused] = await sf.write([item(2, [task('stale:2', {}, whoBy('+15557102000'))])]);
    const error = failed(refused).error;
    expect(error).toMatchObject({ kind: 'transient', retryable: true, crmCode: 'INVALID_CROSS_REFERENCE_KEY' });
    expect(error.retryAt?.getTime()).toBe(clock.now() + 5_000);
    expect(fake.taskByExternalId('stale:2')).toBeUndefined();

    fake.resetCounters();
    const retried = ok((await sf.write([item(2, [task('stale:2', {}, whoBy('+15557102000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(1); // looked up afresh
    expect((retried.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['WhoId']);
    expect(fake.taskByExternalId('stale:2')).not.toHaveProperty('WhoId');
  });

  it('fails the call for good, with the org\'s message, when the org refuses a Contact looked up afresh in the same write', async () => {
    const clock = new ManualClock();
    const ghost = fake.addContact({ LastName: 'Deleted', Phone: '555 720 3000' });
    const sf = target(clientCredentials(), clock);
    ok((await sf.write([item(1, [task('ghost:1', {}, whoBy('+15557203000'))])]))[0]);
    // Deleted, but SOSL's index still finds it.
    fake.remove('Contact', ghost, { stillSearchable: true });

    // The cached id may just be stale: retried soon, looked up afresh.
    const [cached] = await sf.write([item(2, [task('ghost:2', {}, whoBy('+15557203000'))])]);
    expect(failed(cached).error).toMatchObject({ kind: 'transient', crmCode: 'INVALID_CROSS_REFERENCE_KEY', retryAt: new Date(clock.now() + 5_000) });

    // The fresh search answers the same id, which the org refuses again: no point retrying.
    clock.advance(5_000);
    fake.resetCounters();
    const [fresh] = await sf.write([item(2, [task('ghost:2', {}, whoBy('+15557203000'))])]);
    expect(fake.requests('sosl')).toBe(1);
    const { error } = failed(fresh);
    expect(error).toMatchObject({ kind: 'permanent', retryable: false, crmCode: 'INVALID_CROSS_REFERENCE_KEY', retryAt: undefined });
    expect(error.message).toBe(`INVALID_CROSS_REFERENCE_KEY: Name ID: id value of incorrect type: ${ghost} (WhoId)`);
    expect(fake.taskByExternalId('ghost:2')).toBeUndefined();
  });

  it('keeps failing an id the mapping gave (by: id): it is not a stale lookup', async () => {
    const [result] = await target().write([item(1, [task('given:1', {}, { WhoId: { by: 'id', value: '003000000000999AAA' } })])]);
    expect(failed(result).error).toMatchObject({ kind: 'permanent', crmCode: 'INVALID_CROSS_REFERENCE_KEY' });
  });

  it('does not search for a number that is not E.164; the call is written without WhoId', async () => {
    fake.addContact({ Phone: '555 123 4567' });
    const sf = target();
    const result = ok((await sf.write([item(1, [task('raw:1', {}, whoBy('555-123-4567'))])]))[0]);
    expect(fake.requests('sosl')).toBe(0);
    expect((result.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['WhoId']);
    expect(fake.taskByExternalId('raw:1')).not.toHaveProperty('WhoId');
  });

  it('splits a phone search whose answer reached the SOSL row limit instead of caching "not found"', async () => {
    const clock = new ManualClock();
    // 2,000 look-alikes abroad fill a search's rows before the real match.
    for (let i = 0; i < 2_000; i += 1) fake.addContact({ LastName: `Abroad ${i}`, Phone: '+44 555 800 1000' });
    const real = fake.addContact({ LastName: 'Real', Phone: '(555) 800 2000' });
    const sf = target(clientCredentials(), clock);
    const results = await sf.write([item(1, [task('lim:1', {}, whoBy('+15558001000'))]), item(2, [task('lim:2', {}, whoBy('+15558002000'))])]);
    results.forEach((r) => ok(r));
    expect(fake.taskByExternalId('lim:2')?.['WhoId']).toBe(real);
    expect(fake.taskByExternalId('lim:1')).not.toHaveProperty('WhoId');
    expect(fake.requests('sosl')).toBe(3);

    // Alone in its search, the number still filled the rows: it would again,
    // so "unlinked" is kept like "not found" (a minute), then searched again.
    fake.resetCounters();
    ok((await sf.write([item(3, [task('lim:3', {}, whoBy('+15558001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(0);
    clock.advance(60_000);
    ok((await sf.write([item(4, [task('lim:4', {}, whoBy('+15558001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.taskByExternalId('lim:4')).not.toHaveProperty('WhoId');
  });

  it('searches a shared switchboard number that fills SOSL\'s 2,000 rows at most once a minute, not on every write', async () => {
    const clock = new ManualClock();
    for (let i = 0; i < 2_001; i += 1) fake.addContact({ LastName: `Staff ${i}`, Phone: '(555) 800 9000' });
    const sf = target(clientCredentials({ LOOKUP_CACHE_TTL_SECONDS: '900' }), clock);
    for (let i = 0; i < 5; i += 1) {
      ok((await sf.write([item(i, [task(`sw:${i}`, {}, whoBy('+15558009000'))])]))[0]);
      clock.advance(10_000);
    }
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.tasks().filter((t) => String(t['Call_Sync_Id__c']).startsWith('sw:') && t['WhoId'] === undefined)).toHaveLength(5);
    clock.advance(10_000); // a minute since the search
    ok((await sf.write([item(9, [task('sw:9', {}, whoBy('+15558009000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(2);
  });
});
