import { type CountryCode } from 'libphonenumber-js';

export type HubSpotRequestKind =
  | 'upsert'
  | 'create'
  | 'update'
  | 'read'
  | 'search'
  | 'owners'
  | 'associate'
  | 'associations'
  | 'get'
  | 'property'
  | 'other';

export interface HsObject {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  archived: false;
}

export interface HsOwner {
  id: string;
  email: string;
  firstName: string;
  lastName: string;
  userId: number;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}

export const STANDARD_PROPERTIES: Record<string, readonly string[]> = {
  calls: [
    'hs_timestamp',
    'hs_call_title',
    'hs_call_body',
    'hs_call_direction',
    'hs_call_disposition',
    'hs_call_duration',
    'hs_call_from_number',
    'hs_call_to_number',
    'hs_call_recording_url',
    'hs_call_status',
    'hs_call_external_id',
    'hs_call_source',
    'hubspot_owner_id',
  ],
  tasks: ['hs_timestamp', 'hs_task_subject', 'hs_task_body', 'hs_task_status', 'hs_task_priority', 'hs_task_type', 'hubspot_owner_id'],
  contacts: ['firstname', 'lastname', 'email', 'phone', 'mobilephone', 'company', 'hubspot_owner_id'],
  companies: ['name', 'domain', 'phone'],
  deals: ['dealname', 'amount'],
};

export const ENUMS: Record<string, Record<string, readonly string[]>> = {
  calls: {
    hs_call_direction: ['INBOUND', 'OUTBOUND'],
    hs_call_status: ['BUSY', 'CALLING_CRM_USER', 'CANCELED', 'COMPLETED', 'CONNECTING', 'FAILED', 'IN_PROGRESS', 'NO_ANSWER', 'QUEUED', 'RINGING'],
  },
  tasks: {
    hs_task_status: ['NOT_STARTED', 'IN_PROGRESS', 'WAITING', 'COMPLETED', 'DEFERRED'],
    hs_task_priority: ['NONE', 'LOW', 'MEDIUM', 'HIGH'],
    hs_task_type: ['CALL', 'EMAIL', 'TODO', 'LINKED_IN'],
  },
};

/** Default association type ids (HUBSPOT_DEFINED), from → to. */
export const ASSOCIATION_TYPE: Record<string, number> = {
  'calls:contacts': 194,
  'tasks:contacts': 204,
  'calls:companies': 182,
  'tasks:companies': 192,
  'calls:deals': 206,
  'tasks:deals': 216,
};

export const TYPE_IDS: Record<string, string> = { '0-1': 'contacts', '0-2': 'companies', '0-3': 'deals', '0-27': 'tasks', '0-48': 'calls' };
export const TYPE_ID_OF: Record<string, string> = Object.fromEntries(Object.entries(TYPE_IDS).map(([id, name]) => [name, id]));
export const PORTAL_ID = 4_000_001;

/** Objects whose writes require hs_timestamp on create. */
export const TIMESTAMPED = new Set(['calls', 'tasks']);

export interface FakeHubSpotOptions {
  baseUrl?: string;
  accessToken?: string;
  /** Custom properties per object; created with "unique values" when listed in `uniqueProperties`. */
  customProperties?: Record<string, string[]>;
  uniqueProperties?: Record<string, string[]>;
  /** Burst limit: requests per 10 s (X-HubSpot-RateLimit-Max). */
  tenSecondLimit?: number;
  dailyLimit?: number;
  /** Searches per second; unset = not enforced (the real API allows about 5). */
  searchPerSecond?: number;
  /** Region used to compute hs_searchable_calculated_* for numbers without a country code. */
  defaultRegion?: CountryCode;
  /** How long after an API write a new record becomes visible to search (real time). */
  searchIndexDelayMs?: number;
}

export interface WriteError {
  status: 'error';
  category: string;
  message: string;
  context: Record<string, string[]>;
  errors?: Array<{ message: string; code: string; context?: Record<string, string[]> }>;
}

export type HubSpotValidationRule = (properties: Record<string, string>, object: string) => string | undefined;

export function matchFilter(properties: Record<string, string>, filter: Record<string, unknown>): boolean {
  const name = typeof filter['propertyName'] === 'string' ? filter['propertyName'] : '';
  const actual = properties[name];
  const value = typeof filter['value'] === 'string' || typeof filter['value'] === 'number' ? String(filter['value']).toLowerCase() : undefined;
  const values = Array.isArray(filter['values']) ? filter['values'].map((v) => String(v).toLowerCase()) : [];
  const lower = actual?.toLowerCase();
  switch (filter['operator']) {
    case 'EQ':
      return lower !== undefined && lower === value;
    case 'NEQ':
      return lower !== value;
    case 'IN':
      return lower !== undefined && lower !== '' && values.includes(lower);
    case 'NOT_IN':
      return lower === undefined || !values.includes(lower);
    case 'HAS_PROPERTY':
      return actual !== undefined && actual !== '';
    case 'NOT_HAS_PROPERTY':
      return actual === undefined || actual === '';
    default:
      return false;
  }
}

export function objectName(segment: string | undefined): string {
  const name = segment ?? '';
  return TYPE_IDS[name] ?? name;
}

/** HubSpot ids are numbers in strings: compare as numbers. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

export function stringProps(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) out[name] = v === null || v === undefined ? '' : String(v);
  return out;
}

export function parseBody(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
