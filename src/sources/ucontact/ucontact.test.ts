import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, SECRETS } from '../../../test/support/app';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../../test/support/db';
import { fixtureJson, fixtureText, vendorRequest } from '../../../test/support/webhooks';
import type { MappingSet } from '../../mapping/mapping-set';
import { sha256Hex } from '../../core/secrets';
import { adapterConfig, RECEIVED_AT, webhook } from '../../../test/support/webhook-request';
import { MISPLACED_MONTH_MIN_DISTANCE_MS, ucontact, ucontactTime } from './adapter';

const config = adapterConfig();
const DAY_MS = 24 * 60 * 60 * 1000;

describe('ucontact verify', () => {
  const body = fixtureText('ucontact', 'FinishInteraction.json');
  const verify = (query: string, env = config) => ucontact.verify(webhook(body, { query }), env, RECEIVED_AT);

  it('accepts the token query parameter equal to UCONTACT_SECRET only', () => {
    expect(verify(`token=${SECRETS.UCONTACT_SECRET}`)).toEqual({ ok: true });
    expect(verify('token=guess')).toEqual({ ok: false, reason: 'missing or wrong token query parameter' });
    expect(verify('')).toEqual({ ok: false, reason: 'missing or wrong token query parameter' });
    expect(verify(`token=${SECRETS.UCONTACT_SECRET}`, adapterConfig({ UCONTACT_SECRET: undefined }))).toEqual({
      ok: false,
      reason: 'UCONTACT_SECRET is not configured',
    });
  });

  it('needs a secret with URL-special characters percent-encoded in the URL, as the README says', () => {
    const secret = 'a+b&c#d=e%f';
    const env = adapterConfig({ UCONTACT_SECRET: secret });
    expect(verify(`token=${encodeURIComponent(secret)}`, env)).toEqual({ ok: true });
    // Written raw, '+' reads as a space and '&' ends the parameter.
    expect(verify(`token=${secret}`, env)).toMatchObject({ ok: false });
  });
});

describe('ucontact identify', () => {
  it('files an interaction event by a hash of its body and its guid, the date read in UCONTACT_TIMEZONE', () => {
    const request = webhook(fixtureText('ucontact', 'FinishInteraction.json'), { receivedAt: new Date('2023-06-13T10:21:41.000Z') });
    expect(ucontact.identify(request, config)).toEqual({
      eventType: 'FinishInteraction',
      dedupeKey: `sha256:${sha256Hex(request.rawBody)}`,
      callKey: 'c2b7f4de-1f7a-4b61-9d2f-0a9c3e5b7d11',
      vendorTime: new Date('2023-06-13T10:21:40.000Z'),
      vendorTimeRaw: '2023-06-13 10:21:40',
    });
    // Montevideo is UTC-3 all year: the same wall-clock time is three hours later in UTC.
    const montevideo = adapterConfig({ UCONTACT_TIMEZONE: 'America/Montevideo' });
    const inMontevideo = webhook(request.rawBody, { receivedAt: new Date('2023-06-13T13:21:41.000Z') });
    expect(ucontact.identify(inMontevideo, montevideo).vendorTime).toEqual(new Date('2023-06-13T13:21:40.000Z'));
  });

  it('gives agent events without a guid no call key (intake files them under the event)', () => {
    expect(ucontact.identify(webhook(fixtureText('ucontact', 'AgentBreak.json')), config).callKey).toBeNull();
  });

  it('keeps the same body as the same event, and a changed body as another', () => {
    const body = fixtureJson('ucontact', 'InteractionDisposition.json');
    const first = ucontact.identify(webhook(body), config).dedupeKey;
    expect(ucontact.identify(webhook(JSON.stringify(body)), config).dedupeKey).toBe(first);
    expect(ucontact.identify(webhook({ ...body, level2: 'Efectivo' }), config).dedupeKey).not.toBe(first);
  });
});

describe('ucontact dates (seed 002: minutes written in the month slot)', () => {
  const at = (iso: string) => new Date(iso);

  it.each(['2023-48-13 06:48:51', '2023-52-13 04:52:57', '2023-16-13 15:18:43', '2023-02-30 10:00:00', 'yesterday', ''])(
    'falls back to the received time for the unreadable %j, keeping the raw value',
    (raw) => {
      const request = webhook({ ...fixtureJson('ucontact', 'AgentLog.json'), date: raw });
      const identity = ucontact.identify(request, config);
      expect(identity.vendorTime).toEqual(RECEIVED_AT);
      expect(identity.vendorTimeRaw).toBe(raw === '' ? null : raw);
    },
  );

  it('falls back for a valid-looking date whose month is the minutes (05 at 06:05) when that month is far from now', () => {
    // Received in September: the "May" is the minutes, not the month.
    const receivedAt = at('2023-09-13T06:05:01.000Z');
    const request = webhook({ ...fixtureJson('ucontact', 'FinishInteraction.json'), date: '2023-05-13 06:05:00' }, { receivedAt });
    const identity = ucontact.identify(request, config);
    expect(identity.vendorTime).toEqual(receivedAt);
    expect(identity.vendorTimeRaw).toBe('2023-05-13 06:05:00');
  });

  it('keeps a genuine date, and one whose minutes happen to equal the month when it is close to its receipt', () => {
    expect(ucontactTime('2023-06-13 10:21:40', 'UTC', at('2023-06-13T10:21:41.000Z'))).toEqual(at('2023-06-13T10:21:40.000Z'));
    // Written at 06:05 in May, the buggy format gives the right date.
    expect(ucontactTime('2023-05-13 06:05:00', 'UTC', at('2023-05-13T06:05:02.000Z'))).toEqual(at('2023-05-13T06:05:00.000Z'));
    // A genuine old date without the signature stays: distance alone is no proof.
    expect(ucontactTime('2023-06-13 10:21:40', 'UTC', at('2023-09-13T10:21:41.000Z'))).toEqual(at('2023-06-13T10:21:40.000Z'));
  });

  it('draws the line at 7 days, between a wrong time zone (hours) and a misplaced month (28 days or more)', () => {
    const written = at('2023-05-13T06:05:00.000Z');
    expect(MISPLACED_MONTH_MIN_DISTANCE_MS).toBe(7 * DAY_MS);
    const justInside = new Date(written.getTime() + MISPLACED_MONTH_MIN_DISTANCE_MS);
    const justOutside = new Date(justInside.getTime() + 1);
    expect(ucontactTime('2023-05-13 06:05:00', 'UTC', justInside)).toEqual(written);
    expect(ucontactTime('2023-05-13 06:05:00', 'UTC', justOutside)).toEqual(justOutside);
    // Read in the configured zone: 06:05 in Montevideo is 09:05 UTC, received minutes later.
    expect(ucontactTime('2023-05-13 06:05:00', 'America/Montevideo', at('2023-05-13T09:06:00.000Z'))).toEqual(
      at('2023-05-13T09:05:00.000Z'),
    );
  });
});

const syncEverything: MappingSet = {
  classify: () => 'sync',
  fold: () => Promise.reject(new Error('not used by intake')),
  toCrm: () => Promise.reject(new Error('not used by intake')),
};

describe.each(testDbKinds())('ucontact intake on %s', (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb.drop();
  });

  it('stores a misplaced-month date raw, with the received time as the event time', async () => {
    const receivedAt = new Date('2023-09-13T06:05:01.000Z');
    const { app } = buildTestApp({ database: testDb.database, mappings: syncEverything, now: () => receivedAt });
    const body = JSON.stringify({ ...fixtureJson('ucontact', 'FinishInteraction.json'), date: '2023-05-13 06:05:00' });
    const request = vendorRequest('ucontact', body);
    const response = await app.request(request.path, request.init);
    expect(response.status).toBe(200);
    const rows = await testDb.database.query<{ call_key: string; vendor_time: Date | null; vendor_time_raw: string | null; received_at: Date }>(
      'SELECT call_key, vendor_time, vendor_time_raw, received_at FROM webhook_events',
    );
    expect(rows).toEqual([
      { call_key: 'c2b7f4de-1f7a-4b61-9d2f-0a9c3e5b7d11', vendor_time: receivedAt, vendor_time_raw: '2023-05-13 06:05:00', received_at: receivedAt },
    ]);
  });
});
