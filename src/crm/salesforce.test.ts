import { generateKeyPairSync } from 'node:crypto';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeSalesforce } from '../../test/fakes/salesforce';
import { testConfig } from '../config';
import { createLogger } from '../log';
import type { CrmRecord, LookupRequest } from '../mapping/types';
import { ManualClock } from './clock';
import { SalesforceTarget } from './salesforce';
import type { SentPayload } from './sent';
import { SyncError, type WriteItem, type WriteResult } from './types';

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

  it('isolates a call whose fields the org rejects for the whole request (top-level errorCode)', async () => {
    const sf = target();
    const results = await sf.write([
      item(1, [task('webex-cc:1')]),
      item(2, [task('webex-cc:2')]),
      item(3, [task('webex-cc:3', { Disposition: 'Sale' })]), // no such standard field on Task
      item(4, [task('webex-cc:4')]),
      item(5, [task('webex-cc:5')]),
    ]);
    expect(failed(results[2]).error).toMatchObject({
      kind: 'permanent',
      httpStatus: 400,
      crmCode: 'INVALID_FIELD',
      message: "INVALID_FIELD: No such column 'Disposition' on sobject of type Task",
    });
    for (const i of [0, 1, 3, 4]) ok(results[i]);
    expect(fake.tasks()).toHaveLength(4);
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
    const { escapeSosl } = await import('./salesforce');
    expect(escapeSosl('+1 (555) "x" - a:b')).toBe('\\+1 \\(555\\) \\"x\\" \\- a\\:b');
  });
});
