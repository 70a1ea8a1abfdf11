import { readFileSync, readdirSync } from 'node:fs';
import type { SourceName } from '../../src/core/event';
import { SECRETS, webexSignature } from './app';
import { fixturePath, fixturesDir } from './source-files';

/** A fixture body as text, exactly as a vendor would post it. */
export function fixtureText(source: SourceName, name: string): string {
  return readFileSync(fixturePath(source, name), 'utf8');
}

export function fixtureJson(source: SourceName, name: string): Record<string, unknown> {
  return JSON.parse(fixtureText(source, name)) as Record<string, unknown>;
}

/** The single-event fixtures of a source (sequence files excluded). */
export function singleFixtures(source: SourceName): string[] {
  return readdirSync(fixturesDir(source))
    .filter((f) => f.endsWith('.json') && !f.startsWith('sequence-'))
    .sort();
}

export function sequenceEvents(source: SourceName, name: string): Array<Record<string, unknown>> {
  return (JSON.parse(fixtureText(source, name)) as { events: Array<Record<string, unknown>> }).events;
}

export type Auth = 'valid' | 'wrong' | 'missing';

export interface WebhookRequest {
  path: string;
  init: RequestInit & { headers: Record<string, string> };
}

/**
 * A request the way the vendor sends it: the right URL, headers and
 * credential (or a wrong or missing one).
 */
export function vendorRequest(
  source: SourceName,
  body: string,
  options: { auth?: Auth; hccEvent?: string; headers?: Record<string, string>; now?: Date } = {},
): WebhookRequest {
  const auth = options.auth ?? 'valid';
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  let path = `/webhooks/${source}`;
  const pick = (good: string) => (auth === 'valid' ? good : auth === 'wrong' ? `${good}-wrong` : undefined);
  switch (source) {
    case 'genesys-ocs': {
      const key = pick(SECRETS.GENESYS_OCS_SECRET);
      if (key) headers['x-api-key'] = key;
      headers['user-agent'] = 'OCS/8.1.528.15';
      break;
    }
    case 'enreach': {
      const key = pick(SECRETS.ENREACH_SECRET);
      if (key) headers['x-benemen-token'] = key;
      const eventType = safeEventType(body);
      if (eventType) headers['x-benemen-event'] = eventType;
      break;
    }
    case 'ucontact': {
      const key = pick(SECRETS.UCONTACT_SECRET);
      if (key) path += `?token=${encodeURIComponent(key)}`;
      break;
    }
    case 'hcc': {
      path += `/${options.hccEvent ?? 'call-created'}`;
      const key = pick(SECRETS.HCC_SECRET);
      if (key) headers['x-api-key'] = key;
      break;
    }
    case 'webex-cc': {
      const secret = pick(SECRETS.WEBEX_CC_SECRET);
      if (secret) headers['x-webexcc-signature'] = webexSignature(body, secret);
      break;
    }
  }
  return { path, init: { method: 'POST', headers, body } };
}

function safeEventType(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { EventType?: unknown };
    return typeof parsed.EventType === 'string' ? parsed.EventType : undefined;
  } catch {
    return undefined;
  }
}
