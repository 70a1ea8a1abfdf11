import { type KeyObject } from 'node:crypto';

export type SalesforceRequestKind = 'token' | 'sosl' | 'soql' | 'upsert' | 'upsert-one' | 'retrieve' | 'other';

export type SObjectValue = string | number | boolean | null;
export interface SObject {
  Id: string;
  [field: string]: SObjectValue;
}

export interface FieldDef {
  /** The JSON type the API deserializes the value into; a value of another type fails the whole request. */
  type?: 'int' | 'boolean';
  createable?: boolean;
  updateable?: boolean;
  picklist?: readonly string[];
  references?: readonly string[];
  label?: string;
}

export const TASK_FIELDS: Record<string, FieldDef> = {
  Subject: {},
  Description: {},
  ActivityDate: {},
  Status: { picklist: ['Not Started', 'In Progress', 'Completed', 'Waiting on someone else', 'Deferred'] },
  Priority: { picklist: ['High', 'Normal', 'Low'] },
  Type: {},
  CallType: { picklist: ['Internal', 'Inbound', 'Outbound'], label: 'Call Type' },
  CallDurationInSeconds: { type: 'int' },
  CallDisposition: {},
  CallObject: {},
  TaskSubtype: { picklist: ['Task', 'Email', 'ListEmail', 'Cadence', 'Call', 'LinkedIn'], updateable: false, label: 'Task Subtype' },
  WhoId: { references: ['Contact', 'Lead'], label: 'Name ID' },
  WhatId: { references: ['Account', 'Opportunity', 'Case'], label: 'Related To ID' },
  OwnerId: { references: ['User'], label: 'Assigned To ID' },
  ReminderDateTime: {},
  IsReminderSet: { type: 'boolean' },
  Id: { createable: false, updateable: false },
  CreatedDate: { createable: false, updateable: false },
  LastModifiedDate: { createable: false, updateable: false },
};

export const PREFIX: Record<string, string> = { Task: '00T', Contact: '003', Lead: '00Q', User: '005', Account: '001', Case: '500', Opportunity: '006' };

export const PHONE_FIELDS: Record<string, readonly string[]> = {
  Contact: ['Phone', 'MobilePhone', 'HomePhone', 'OtherPhone', 'AssistantPhone'],
  Lead: ['Phone', 'MobilePhone'],
  Account: ['Phone'],
};

export interface FakeSalesforceOptions {
  /** Where the org's API lives (msw mode). listen() replaces it with the server URL. */
  instanceUrl?: string;
  /** Where the token endpoint lives (msw mode). listen() replaces it with the server URL. */
  loginUrl?: string;
  /** The Task External ID field (Text, External ID, Unique). */
  externalIdField?: string;
  /** Daily API request allowance reported in Sforce-Limit-Info. */
  apiDailyLimit?: number;
  /** Accept any `__c` field on Task (true) or only those declared with `addCustomField`. */
  allowAnyCustomField?: boolean;
}

export interface ConnectedApp {
  clientId: string;
  clientSecret: string | undefined;
  certificate: KeyObject | undefined;
  runAsUserId: string | undefined;
}

export type ValidationRule = (record: SObject, object: string) => string | undefined;

export function formatId(prefix: string, n: number): string {
  return `${prefix}${String(n).padStart(12, '0')}AAA`;
}

/**
 * The fake's phone search: a stored number matches a term when their digits
 * are equal, or one ends with the other and the shorter has at least 7
 * digits. Looser than an exact match on purpose, like a real search index:
 * the client must check candidates itself. Built once per search so each
 * stored number costs a few set lookups whatever the number of terms.
 */
export function phoneMatcher(terms: string[]): (stored: string) => boolean {
  const exact = new Set(terms.filter((t) => t !== ''));
  const suffixes = new Set<string>();
  for (const term of exact) for (let i = 1; term.length - i >= 7; i += 1) suffixes.add(term.slice(i));
  return (stored) => {
    const digits = stored.replace(/\D/g, '');
    if (digits === '') return false;
    if (exact.has(digits) || (digits.length >= 7 && suffixes.has(digits))) return true;
    for (let i = 1; digits.length - i >= 7; i += 1) if (exact.has(digits.slice(i))) return true;
    return false;
  };
}

export interface SoqlQuery {
  fields: string[];
  object: string;
  conditions: Array<{ field: string; values: SObjectValue[] }>;
  limit: number | undefined;
}

/** SELECT a, b FROM X [WHERE f IN ('..') AND g = 'x' AND h = true] [ORDER BY ...] [LIMIT n]. */
export function parseSoql(soql: string): SoqlQuery | string {
  const m = /^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+ORDER\s+BY\s+[\w\s,]+?)?(?:\s+LIMIT\s+(\d+))?\s*$/is.exec(soql);
  if (m === null) return `unexpected token in query: ${soql.slice(0, 40)}`;
  const fields = (m[1] ?? '').split(',').map((f) => f.trim());
  const conditions: SoqlQuery['conditions'] = [];
  for (const part of splitOutsideQuotes(m[3] ?? '', /\s+AND\s+/iy)) {
    const text = part.trim();
    if (text === '') continue;
    const inList = /^(\w+)\s+IN\s*\((.*)\)$/is.exec(text);
    const equals = /^(\w+)\s*=\s*(.+)$/s.exec(text);
    if (inList !== null) conditions.push({ field: inList[1] ?? '', values: parseLiterals(inList[2] ?? '') });
    else if (equals !== null) conditions.push({ field: equals[1] ?? '', values: parseLiterals(equals[2] ?? '') });
    else return `unexpected condition: ${text}`;
  }
  return { fields, object: m[2] ?? '', conditions, limit: m[4] === undefined ? undefined : Number(m[4]) };
}

export function splitOutsideQuotes(text: string, separator: RegExp): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] ?? '';
    if (quoted && c === '\\') {
      current += text.slice(i, i + 2);
      i += 1;
      continue;
    }
    if (c === "'") quoted = !quoted;
    if (!quoted) {
      separator.lastIndex = i;
      const sep = separator.exec(text);
      if (sep !== null) {
        parts.push(current);
        current = '';
        i += sep[0].length - 1;
        continue;
      }
    }
    current += c;
  }
  parts.push(current);
  return parts;
}

export function parseLiterals(text: string): SObjectValue[] {
  const values: SObjectValue[] = [];
  const re = /'((?:[^'\\]|\\.)*)'|\b(true|false|null)\b|(-?\d+(?:\.\d+)?)/gi;
  for (const m of text.matchAll(re)) {
    if (m[1] !== undefined) values.push(m[1].replace(/\\(.)/g, '$1'));
    else if (m[2] !== undefined) values.push(m[2].toLowerCase() === 'null' ? null : m[2].toLowerCase() === 'true');
    else if (m[3] !== undefined) values.push(Number(m[3]));
  }
  return values;
}

export function sameValue(actual: SObjectValue | undefined, expected: SObjectValue): boolean {
  if (typeof actual === 'string' && typeof expected === 'string') return actual.toLowerCase() === expected.toLowerCase();
  return (actual ?? null) === expected;
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
