import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../../../test/support/app';
import { createTestDatabase } from '../../../test/support/db';
import type { MappingSet } from '../../mapping/mapping-set';

const unusedMappings: MappingSet = {
  classify: () => 'sync',
  fold: () => Promise.reject(new Error('unused')),
  toCrm: () => Promise.reject(new Error('unused')),
};

describe('GET /healthz', () => {
  it('answers 200 while the process runs, whether or not the database answers', async () => {
    const testDb = await createTestDatabase('pglite');
    const { app } = buildTestApp({ database: testDb.database, mappings: unusedMappings });

    const up = await app.request('/healthz');
    expect(up.status).toBe(200);
    expect(up.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await up.json()).toEqual({ status: 'ok' });

    await testDb.drop();
    // Liveness must not follow the database: a restart would not bring it back.
    // Readiness does, which is how the two differ.
    const stillUp = await app.request('/healthz');
    expect(stillUp.status).toBe(200);
    expect(await stillUp.json()).toEqual({ status: 'ok' });
    expect((await app.request('/readyz')).status).toBe(503);
  });

});
