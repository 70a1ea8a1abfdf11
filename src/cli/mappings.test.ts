import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyMappings, SHIPPED_DIR } from '../../test/support/mappings';
import { fixturePath } from '../../test/support/source-files';

const ROOT = path.resolve(import.meta.dirname, '../..');

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/mappings.ts', ...args],
      // A clean environment: only what the CLI reads.
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let m: Awaited<ReturnType<typeof copyMappings>> | undefined;
afterEach(async () => {
  await m?.remove();
  m = undefined;
});

describe('npm run mappings', () => {
  it('validate: ok on the shipped mappings', async () => {
    const r = await cli(['validate', '--dir', SHIPPED_DIR]);
    expect(r).toEqual({ code: 0, stdout: `ok: 15 files in ${SHIPPED_DIR} (5 sources, 12 examples)\n`, stderr: '' });
  });

  it('validate: needs only the mapping settings, not the service’s CRM credentials', async () => {
    // CRM_TARGET=salesforce without credentials stops the service; the mapping commands do not read it.
    const env = { CRM_TARGET: 'salesforce', DATABASE_URL: 'not a url', MAPPINGS_DIR: SHIPPED_DIR };
    expect(await cli(['validate'], env)).toEqual({ code: 0, stdout: `ok: 15 files in ${SHIPPED_DIR} (5 sources, 12 examples)\n`, stderr: '' });
    const test = await cli(['test', '--source', 'hcc'], env);
    expect(test.code).toBe(0);
    const preview = await cli(['preview', '--source', 'hcc', '--json', fixturePath('hcc', 'call-saved.json')], env);
    expect(preview.code).toBe(0);
  });

  it('validate: a bad mapping setting is reported as the service reports it, and only those', async () => {
    const r = await cli(['validate', '--dir', SHIPPED_DIR], { CRM_TARGET: 'salesforce', DEFAULT_PHONE_REGION: 'usa', HCC_TIMEZONE: 'Mars/Olympus' });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'Invalid configuration:\n' +
        '  - HCC_TIMEZONE: must be an IANA time zone such as America/Chicago\n' +
        '  - DEFAULT_PHONE_REGION: must be a two-letter ISO country code such as US\n',
    });
  });

  it('preview: reads uContact dates in UCONTACT_TIMEZONE, as intake does', async () => {
    const file = fixturePath('ucontact', 'FinishInteraction.json');
    const run = async (zone: string) => {
      const r = await cli(['preview', '--source', 'ucontact', '--json', '--dir', SHIPPED_DIR, file], { UCONTACT_TIMEZONE: zone });
      return (JSON.parse(r.stdout) as { calls: { activity: { endedAt: string } }[] }).calls[0]?.activity.endedAt;
    };
    expect([await run('UTC'), await run('America/Montevideo')]).toEqual(['2023-06-13T10:21:40.000Z', '2023-06-13T13:21:40.000Z']);
  });

  it('validate: exit 1 with file:line:col errors and no stack trace', async () => {
    m = await copyMappings();
    await m.edit('hcc.yaml', 'table: dispositions }', 'table: disposition }');
    const lines = (await m.read('hcc.yaml')).split('\n');
    const line = lines.findIndex((l) => l.includes('table: disposition }'));
    const column = (lines[line]?.indexOf('disposition }') ?? 0) + 1;
    const r = await cli(['validate', '--dir', m.dir]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `${m.file('hcc.yaml')}:${line + 1}:${column} unknown table "disposition" (did you mean "dispositions"?)\n1 error in ${m.dir}\n`,
    });
  });

  it('preview: the activity and both CRMs’ records for payload files (HCC event from the file name)', async () => {
    const files = ['call-created.json', 'call-ended.json', 'call-saved.json'].map((f) => fixturePath('hcc', f));
    const r = await cli(['preview', '--source', 'hcc', '--json', '--dir', SHIPPED_DIR, ...files], { HCC_TIMEZONE: 'America/Chicago' });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      calls: { callKey: string; events: { eventType: string }[]; activity: Record<string, unknown>; salesforce: { fields: Record<string, unknown> }[]; hubspot: { fields: Record<string, unknown> }[] }[];
    };
    expect(out.calls.map((c) => [c.callKey, c.events.map((e) => e.eventType)])).toEqual([['11142', ['call-created', 'call-ended', 'call-saved']]]);
    const call = out.calls[0];
    expect(call?.activity.dispositionLabel).toBe('Sale');
    expect(call?.salesforce[0]?.fields.Subject).toBe('Outbound call – Sale');
    expect(call?.hubspot[0]?.fields.hs_call_disposition).toBe('f240bbac-87c9-4f6e-bf70-924b57d47db7');
  });

  it('preview: shows lookups unresolved in the text output', async () => {
    const r = await cli(['preview', '--source', 'genesys-ocs', '--dir', SHIPPED_DIR, fixturePath('genesys-ocs', 'contact-processed-answered.json')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('=== genesys-ocs call 0A3F9E2B-77C4-4D5A-9E61-0B9F8A7C6D01: 1 event, final\n');
    expect(r.stdout).toContain(
      'lookups (resolved by the CRM target when writing):\n  WhoId: phone +13125550147\n  OwnerId: email jane.doe@example.com\n  WhatId: Account with AccountNumber = CUST-20931\n',
    );
  });

  it('preview: shows the exact request the dry-run target builds, with the configured external-id field', async () => {
    type Sent = { externalId: string; request: string; payload: Record<string, unknown> };
    type Out = { calls: { dryRun: { ok: boolean; sent: { salesforce: Sent[]; hubspot: Sent[] } } }[] };
    const file = fixturePath('genesys-ocs', 'contact-processed-callback.json');
    const run = async (args: string[]) => {
      const r = await cli(['preview', '--source', 'genesys-ocs', '--json', '--dir', SHIPPED_DIR, ...args, file], { SALESFORCE_EXTERNAL_ID_FIELD: 'Vendor_Call_Key__c' });
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as Out).calls[0]?.dryRun;
    };
    const first = await run([]);
    expect(first?.ok).toBe(true);
    const [task, followup] = first?.sent.salesforce ?? [];
    expect(task?.request).toBe('PATCH /services/data/v62.0/composite/sobjects/Task/Vendor_Call_Key__c');
    expect(task?.payload).toMatchObject({ Subject: 'Outbound call – Callback requested', TaskSubtype: 'Call', Vendor_Call_Key__c: 'genesys-ocs:0A3F9E2B-77C4-4D5A-9E61-0B9F8A7C6D03' });
    expect(followup?.payload).toMatchObject({ Status: 'Not Started', Vendor_Call_Key__c: 'genesys-ocs:0A3F9E2B-77C4-4D5A-9E61-0B9F8A7C6D03:callback' });
    const [call, task2] = first?.sent.hubspot ?? [];
    expect(call?.request).toMatch(/^POST \/crm\/v3\/objects\/calls\/batch\/(upsert|create)$/);
    expect(JSON.stringify(call?.payload)).toContain('"hs_call_title":"Outbound call – Callback requested"');
    expect(task2?.request).toMatch(/^POST \/crm\/v3\/objects\/tasks\/batch\//);

    // A later sync of a call already in the CRM: TaskSubtype (create-only) is left out.
    const update = await run(['--update']);
    expect(update?.sent.salesforce[0]?.payload).not.toHaveProperty('TaskSubtype');
    expect(update?.sent.salesforce[0]?.payload).toMatchObject({ Subject: 'Outbound call – Callback requested' });

    const text = await cli(['preview', '--source', 'genesys-ocs', '--dir', SHIPPED_DIR, file]);
    expect(text.stdout).toContain('--- dry-run request, for the first sync of the call\n{\n  "crm": "dry-run",\n');
  });

  it('preview: a clear message for bad input', async () => {
    m = await copyMappings();
    const body = m.file('body.json');
    await writeFile(body, '{"call_id": 1}');
    const noEvent = await cli(['preview', '--source', 'hcc', '--dir', SHIPPED_DIR, body]);
    expect(noEvent.code).toBe(2);
    expect(noEvent.stderr.split('\n')[0]).toBe(
      `${body}: HCC bodies do not name their event; pass --event (call-created, call-ended, call-saved, regulation-f-declined) or name the file after it`,
    );
    await writeFile(body, '{"call_id": 1');
    const badJson = await cli(['preview', '--source', 'hcc', '--event', 'call-saved', '--dir', SHIPPED_DIR, body]);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr.split('\n')[0]).toMatch(new RegExp(`^${body.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON: `));
    const badSource = await cli(['preview', '--source', 'genesys', body]);
    expect(badSource.stderr.split('\n')[0]).toBe('unknown source "genesys"; sources: genesys-ocs, enreach, ucontact, hcc, webex-cc');
    expect(badSource.stderr).not.toContain('    at ');
  });

  it('test: runs the examples; exit 1 naming what differs', async () => {
    const ok = await cli(['test', '--dir', SHIPPED_DIR, '--source', 'webex-cc']);
    expect(ok).toEqual({
      code: 0,
      stdout: '✓ webex-cc: a courtesy callback: a RONA task:ended is not the end\n✓ webex-cc: a courtesy callback: the Customer Left task:ended is\n\n2 examples passed, 0 failed\n',
      stderr: '',
    });
    m = await copyMappings();
    await m.edit('webex-cc.yaml', '    - { is: rona }', '    - { event: task:parked }');
    const failing = await cli(['test', '--dir', m.dir, '--source', 'webex-cc']);
    expect(failing.code).toBe(1);
    const where = (await m.read('examples/webex-cc.yaml')).split('\n').findIndex((l) => l.includes('RONA task:ended is not the end')) + 1;
    expect(failing.stdout).toBe(
      [
        `✗ webex-cc: a courtesy callback: a RONA task:ended is not the end (${m.file('examples/webex-cc.yaml')}:${where})`,
        '    activity.final: expected false, got true',
        '    salesforce[0].fields.Status: expected "In Progress", got "Completed"',
        '    hubspot[0].fields.hs_call_status: expected "IN_PROGRESS", got "COMPLETED"',
        '✓ webex-cc: a courtesy callback: the Customer Left task:ended is',
        '',
        '1 example passed, 1 failed',
        '',
      ].join('\n'),
    );
  });
});
