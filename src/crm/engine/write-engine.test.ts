import { describe, expect, it } from 'vitest';
import type { CrmRecord } from '../../core/crm-record';
import { SyncError } from '../../core/errors';
import { ManualClock } from '../../../test/support/manual-clock';
import { createLogger } from '../../log';
import { Pacer } from './pacer';
import type { WriteItem } from './target-contract';
import { CrmWriteEngine, type CrmDriver, type PreparedRecord, type RecordOutcome, type WriteContext } from './write-engine';

/**
 * The engine with a CRM made up here: what the skeleton does whatever the
 * CRM (the real targets are tested against their fakes, beside their code).
 */

interface P extends PreparedRecord {
  attempt: number;
}

function record(externalId: string, kind: CrmRecord['kind'] = 'activity', object = 'Task'): CrmRecord {
  return { kind, object, externalId, fields: {}, createOnly: [], lookups: {} };
}

function item(syncId: number, records: CrmRecord[]): WriteItem {
  return { syncId, externalId: `x:${syncId}`, records: { salesforce: records }, knownIds: {} };
}

function driver(answer: (p: P) => RecordOutcome | undefined, overrides: Partial<CrmDriver<P, RecordOutcome, undefined, WriteContext>> = {}): CrmDriver<P, RecordOutcome, undefined, WriteContext> {
  const clock = new ManualClock(0);
  return {
    crm: 'Made-up CRM',
    kind: 'salesforce',
    timeoutMs: 1_000,
    clock,
    logger: createLogger({ level: 'silent' }),
    pacer: new Pacer({ name: 'made-up', clock, maxConcurrent: 1 }),
    begin: (deadline) => ({ deadline }),
    recordProblem: (r) => (r.object === 'Bad!' ? 'not an object name' : undefined),
    screen: () => undefined,
    resolveLookups: (records) => Promise.resolve(new Map(records.map((r) => [r, undefined]))),
    prepare: (itemIndex, r) => ({ itemIndex, record: r, attempt: 1 }),
    send: (prepared) => {
      const out = new Map<P, RecordOutcome>();
      for (const p of prepared) {
        const outcome = answer(p);
        if (outcome !== undefined) out.set(p, outcome);
      }
      return Promise.resolve(out);
    },
    resendFor: () => undefined,
    refusedLookups: () => [],
    sentRecords: (mine) => mine.map((p) => ({ kind: p.record.kind, object: p.record.object, externalId: p.record.externalId, operation: 'upsert', request: 'PATCH /x', payload: {} })),
    callError: (_mine, error) => error,
    writeError: (error) => error,
    ...overrides,
  };
}

const ok = (id: string, created = true): RecordOutcome => ({ ok: true, id, created, result: { id } });

describe('CrmWriteEngine', () => {
  it('answers one result per call, in order; a record the CRM cannot take fails its call with a mapping error and is not sent', async () => {
    const sent: string[] = [];
    const engine = new CrmWriteEngine(
      driver((p) => {
        sent.push(p.record.externalId);
        return ok(`id-${p.record.externalId}`);
      }),
    );
    const results = await engine.write([item(1, [record('a')]), item(2, [record('b'), record('c', 'followup', 'Bad!')]), item(3, [])]);
    expect(sent).toEqual(['a']);
    expect(results[0]).toMatchObject({ ok: true, ids: { a: 'id-a' }, created: true, response: [{ id: 'id-a' }] });
    expect(results[1]).toMatchObject({ ok: false, error: { kind: 'mapping', message: 'not an object name' } });
    expect(results[2]).toMatchObject({ ok: true, ids: {}, created: false });
  });

  it('lets the worst error speak for a call, and reports a record the CRM answered nothing for as transient', async () => {
    const engine = new CrmWriteEngine(
      driver((p) =>
        p.record.externalId === 'a' ? { ok: false, error: new SyncError('transient', 'busy') } : p.record.externalId === 'b' ? { ok: false, error: new SyncError('permanent', 'no') } : undefined,
      ),
    );
    const [both, silent] = await engine.write([item(1, [record('a'), record('b', 'followup')]), item(2, [record('c')])]);
    expect(both).toMatchObject({ ok: false, error: { kind: 'permanent', message: 'no' } });
    expect(silent).toMatchObject({ ok: false, error: { kind: 'transient', message: 'Made-up CRM returned no result for this record' } });
  });

  it('sends once more what the CRM asks to resend, and keeps the second answer', async () => {
    const engine = new CrmWriteEngine(
      driver((p) => (p.attempt === 1 ? { ok: false, error: new SyncError('permanent', 'first') } : ok('second')), {
        resendFor: (p, outcome) => (outcome.ok ? undefined : { ...p, attempt: 2 }),
      }),
    );
    const [result] = await engine.write([item(1, [record('a')])]);
    expect(result).toMatchObject({ ok: true, ids: { a: 'second' } });
  });

  it('turns a refusal of a cached lookup into a quick retry, and forgets the lookup', async () => {
    const forgotten: string[] = [];
    const engine = new CrmWriteEngine(
      driver(() => ({ ok: false, error: new SyncError('permanent', 'INVALID_CROSS_REFERENCE_KEY') }), {
        refusedLookups: () => [{ name: 'WhoId', cached: true, forget: () => forgotten.push('WhoId') }],
      }),
    );
    const [result] = await engine.write([item(1, [record('a')])]);
    expect(forgotten).toEqual(['WhoId']);
    expect(result).toMatchObject({ ok: false, error: { kind: 'transient', retryAt: new Date(5_000) } });
  });

  it('throws a whole-batch failure as a SyncError', async () => {
    const engine = new CrmWriteEngine(
      driver(() => ok('x'), {
        send: () => Promise.reject(new Error('socket hang up')),
      }),
    );
    await expect(engine.write([item(1, [record('a')])])).rejects.toMatchObject({ kind: 'transient', message: 'Made-up CRM request failed: socket hang up' });
  });

  it('is typed so that a CRM without one of the pieces does not compile', () => {
    const { send: _send, ...withoutSend } = driver(() => undefined);
    // @ts-expect-error -- `send` is required
    const incomplete: CrmDriver<P, RecordOutcome, undefined, WriteContext> = withoutSend;
    expect(incomplete).toBeDefined();
  });
});
