import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import type { Logger } from '../../src/log';
import { MappingStore } from '../../src/mapping';
import type { FakeSalesforce } from '../fakes/salesforce';
import { createTestDatabase, type TestDatabase, type TestDbKind } from './db';
import { fixtureJson, vendorRequest } from './webhooks';

/**
 * Set-up the admin's test files share (vitest hooks, the real mappings and
 * the Salesforce fake). Test-only, like admin.ts beside it.
 */

/** A fresh database for the test file (dropped after it), emptied before each test. */
export function useAdminTestDatabase(kind: TestDbKind): () => TestDatabase {
  let testDb: TestDatabase | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb?.drop();
  });
  beforeEach(async () => {
    await current().database.query('TRUNCATE webhook_events, call_syncs, sync_attempts, admin_audit, admin_sessions RESTART IDENTITY CASCADE');
  });
  const current = (): TestDatabase => {
    if (!testDb) throw new Error('the test database is not open yet (use it inside a test or hook)');
    return testDb;
  };
  return current;
}

const SHIPPED_MAPPINGS = path.resolve(import.meta.dirname, '../../mappings');

/** A copy of the shipped mappings in a temp dir, for a test to edit like RevOps would, and a store on it. */
export async function copyShippedMappings(logger: Logger): Promise<{ dir: string; store: MappingStore; remove(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'callsync-mappings-'));
  cpSync(SHIPPED_MAPPINGS, dir, { recursive: true });
  const opened = await MappingStore.open({ dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' }, logger });
  if (!opened.ok) throw new Error(`the shipped mappings do not load: ${JSON.stringify(opened.errors)}`);
  const store = opened.store;
  return {
    dir,
    store,
    async remove() {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** RevOps' fix: a label for an HCC disposition code, in the `dispositions` value table of hcc.yaml. */
export function addHccDispositionLabel(mappingsDir: string, code: number, label: string): void {
  const file = path.join(mappingsDir, 'hcc.yaml');
  const yaml = readFileSync(file, 'utf8');
  const anchor = '    51: Sale\n';
  if (!yaml.includes(anchor)) throw new Error(`hcc.yaml no longer has "${anchor.trim()}" in its dispositions table`);
  writeFileSync(file, yaml.replace(anchor, `${anchor}    ${code}: ${label}\n`));
}

export const CALL_RESULT_RULE = 'Call Result must be a disposition label, not a raw code';

/**
 * The org the HCC fixtures point at (phone 9725550138, agent 19 =
 * maria.lopez@example.com, account 12345678), with a validation rule that
 * rejects a Task whose Call Result is a bare code: what a disposition
 * missing from the value table gives.
 */
export function seedHccOrg(fake: FakeSalesforce): { contactId: string; ownerId: string; accountId: string } {
  fake.addValidationRule('Task', (task) => (/^\d+$/.test(String(task['CallDisposition'] ?? '')) ? CALL_RESULT_RULE : undefined));
  return {
    contactId: fake.addContact({ FirstName: 'Dana', LastName: 'Customer', Phone: '(972) 555-0138' }),
    ownerId: fake.addUser({ Email: 'maria.lopez@example.com', LastName: 'Lopez' }),
    accountId: fake.addAccount({ Name: 'Acme', AccountNumber: '12345678' }),
  };
}

/** One HCC call as the vendor posts it: seed 003's three webhooks, with this call's id and disposition code, through the intake. */
export async function postHccCall(app: { request(url: string, init: RequestInit): Response | Promise<Response> }, callId: number, disposition: number): Promise<void> {
  for (const hccEvent of ['call-created', 'call-ended', 'call-saved'] as const) {
    const body = { ...fixtureJson('hcc', `${hccEvent}.json`), call_id: callId, ...(hccEvent === 'call-saved' ? { agent_disp: disposition } : {}) };
    const { path: url, init } = vendorRequest('hcc', JSON.stringify(body), { hccEvent });
    const res = await app.request(url, init);
    expect(res.status, `${hccEvent}: ${await res.clone().text()}`).toBe(200);
  }
}
