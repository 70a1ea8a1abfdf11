import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SourceName } from '../src/core/event';
import { fixturePath } from '../test/support/source-files';
import type { PreparedRequest } from './load';

/** Share of requests that re-send a recent body (a vendor re-delivery). */
const DUPLICATE_SHARE = 0.05;

export const SECRETS = {
  GENESYS_OCS_SECRET: 'bench-genesys-secret',
  ENREACH_SECRET: 'bench-enreach-secret',
  UCONTACT_SECRET: 'bench-ucontact-secret',
  HCC_SECRET: 'bench-hcc-secret',
  WEBEX_CC_SECRET: 'bench-webex-secret',
};

const fixture = (source: SourceName, name: string) => JSON.parse(readFileSync(fixturePath(source, name), 'utf8')) as Record<string, unknown>;

/** Realistic bodies from the fixtures, each made a distinct event by a counter. */
export function requestFactory(options: { eventsPerCall?: number } = {}): () => PreparedRequest {
  const perCall = options.eventsPerCall ?? 3;
  const genesys = fixture('genesys-ocs', 'contact-processed-answered.json');
  const enreach = [fixture('enreach', 'QueueCallInArrived.json'), fixture('enreach', 'QueueCallInUserConnected.json'), fixture('enreach', 'QueueCallInDisconnected.json')];
  const ucontact = [fixture('ucontact', 'FinishInteraction.json'), fixture('ucontact', 'InteractionDisposition.json')];
  const hcc = [
    ['call-created', fixture('hcc', 'call-created.json')],
    ['call-ended', fixture('hcc', 'call-ended.json')],
    ['call-saved', fixture('hcc', 'call-saved.json')],
  ] as const;
  const webex = [fixture('webex-cc', 'task_new.json'), fixture('webex-cc', 'task_connected.json'), fixture('webex-cc', 'task_ended.json')];
  const json = { 'content-type': 'application/json' };
  const recent: PreparedRequest[] = [];
  let n = 0;

  const make = (): PreparedRequest => {
    n += 1;
    const call = Math.floor(n / perCall);
    switch (n % 5) {
      case 0: {
        const body = JSON.stringify({ ...genesys, GSW_MESSAGE_GUID: `bench-msg-${n}`, GSW_CALL_ATTEMPT_GUID: `bench-att-${call}` });
        return { path: '/webhooks/genesys-ocs', headers: { ...json, 'x-api-key': SECRETS.GENESYS_OCS_SECRET }, body };
      }
      case 1: {
        const base = enreach[n % 3] as Record<string, unknown>;
        const body = JSON.stringify({ ...base, Id: `bench-id-${n}`, CallId: `bench-call-${call}` });
        return { path: '/webhooks/enreach', headers: { ...json, 'x-benemen-token': SECRETS.ENREACH_SECRET, 'x-benemen-event': String(base.EventType) }, body };
      }
      case 2: {
        const body = JSON.stringify({ ...(ucontact[n % 2] as Record<string, unknown>), guid: `bench-guid-${call}`, seq: n });
        return { path: `/webhooks/ucontact?token=${SECRETS.UCONTACT_SECRET}`, headers: json, body };
      }
      case 3: {
        const [event, base] = hcc[n % 3] as (typeof hcc)[number];
        const body = JSON.stringify({ ...base, call_id: 1_000_000 + call });
        return { path: `/webhooks/hcc/${event}`, headers: { ...json, 'x-api-key': SECRETS.HCC_SECRET }, body };
      }
      default: {
        const base = webex[n % 3] as { data: Record<string, unknown> };
        const body = JSON.stringify({ ...base, id: `bench-${n}`, data: { ...base.data, taskId: `bench-task-${call}` } });
        const signature = createHmac('sha256', SECRETS.WEBEX_CC_SECRET).update(body).digest('hex');
        return { path: '/webhooks/webex-cc', headers: { ...json, 'x-webexcc-signature': signature }, body };
      }
    }
  };

  return () => {
    if (recent.length > 100 && Math.random() < DUPLICATE_SHARE) return recent[Math.floor(Math.random() * recent.length)] as PreparedRequest;
    const req = make();
    if (recent.length < 1000) recent.push(req);
    else recent[n % 1000] = req;
    return req;
  };
}

