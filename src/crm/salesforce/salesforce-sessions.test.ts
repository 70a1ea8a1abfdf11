import { generateKeyPairSync } from 'node:crypto';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeSalesforce } from '../../../test/fakes/salesforce';
import { ok, rejection } from '../../../test/support/crm-write';
import { item, salesforceTargets, task } from '../../../test/support/salesforce-write';
import { testConfig } from '../../../test/support/config';

const server = setupServer();
let fake: FakeSalesforce;
const { target } = salesforceTargets(() => fake);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeSalesforce();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

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
