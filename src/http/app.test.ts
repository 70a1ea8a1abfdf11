import { describe, expect, it } from 'vitest';
import { testConfig } from '../../test/support/config';
import type { Database } from '../db/client';
import { createLogger } from '../log';
import type { MappingSet } from '../mapping/mapping-set';
import { Metrics } from '../metrics';
import { IngestQueue } from '../outbox/ingest';
import { createApp } from './app';

const mappings: MappingSet = {
  classify: () => 'sync',
  fold: () => Promise.reject(new Error('unused')),
  toCrm: () => Promise.reject(new Error('unused')),
};

function app(route: () => never) {
  const logger = createLogger({ level: 'silent' });
  const database = {} as Database;
  return createApp({
    config: testConfig(),
    database,
    logger,
    metrics: new Metrics(),
    ingest: new IngestQueue(database, { maxBatch: 1, maxInFlight: 1, timeoutMs: 1_000 }, logger),
    mappings: { current: () => mappings },
    mount: (a) => a.get('/boom', route),
  });
}

describe('the app error handler', () => {
  it('answers 503 when a route fails because the database cannot be reached, so the client retries', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    for (const thrown of [refused, new Error('could not load the page', { cause: refused })]) {
      const res = await app(() => {
        throw thrown;
      }).request('/boom');
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: { code: 'database_unavailable', message: 'the database cannot be reached right now; try again shortly' } });
    }
  });

  it('answers 500 with the request id, and no detail, for anything else', async () => {
    const res = await app(() => {
      throw new Error('secret detail');
    }).request('/boom', { headers: { 'x-request-id': 'req-42' } });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: 'internal', message: 'internal error; see the server log for request req-42' } });
  });
});
