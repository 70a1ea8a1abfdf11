import type { TimeFormat } from '../core/time';
import type { ActivityFieldName, CallbackFieldName, DurationUnit, JsonInput, LOOKUP_KINDS, Merge, Scalar, SortKey } from './language-terms';
import type { EventDisposition } from '../core/event';
import type { CrmKind } from '../core/crm-record';

/** What a mapping file parses into, once its schema (file-schemas.ts) accepted it. */

export interface ConditionInput {
  event?: string | string[] | undefined;
  path?: string | undefined;
  equals?: Scalar | undefined;
  notEquals?: Scalar | undefined;
  in?: Scalar[] | undefined;
  notIn?: Scalar[] | undefined;
  exists?: boolean | undefined;
  matches?: string | undefined;
  gt?: number | undefined;
  gte?: number | undefined;
  lt?: number | undefined;
  lte?: number | undefined;
  ignoreCase?: boolean | undefined;
  all?: ConditionInput[] | undefined;
  any?: ConditionInput[] | undefined;
  not?: ConditionInput | undefined;
  is?: string | undefined;
  jsonata?: string | undefined;
}

export interface ValueObjectInput {
  path?: string | undefined;
  const?: JsonInput | undefined;
  template?: string | undefined;
  coalesce?: ValueInput[] | undefined;
  if?: ConditionInput | undefined;
  then?: ValueInput | undefined;
  else?: ValueInput | undefined;
  jsonata?: string | undefined;
  secondsBetween?: ValueInput[] | undefined;
  addSeconds?: ValueInput[] | undefined;
  subtractSeconds?: ValueInput[] | undefined;
  nullIf?: Scalar[] | undefined;
  replace?: { pattern: string; with: string } | undefined;
  case?: 'lower' | 'upper' | undefined;
  time?: TimeFormat | undefined;
  zone?: string | undefined;
  duration?: DurationUnit | { from: DurationUnit; to: DurationUnit } | undefined;
  phone?: true | string | undefined;
  table?: string | undefined;
  /** raw (the default): an unlisted code stays as it is; null: it becomes empty. */
  fallback?: 'raw' | 'null' | null | undefined;
  number?: true | undefined;
  string?: true | undefined;
  boolean?: true | undefined;
  date?: true | undefined;
  email?: true | undefined;
  truncate?: number | undefined;
  default?: JsonInput | undefined;
  lineBreak?: string | undefined;
}
export type ValueInput = Scalar | ValueObjectInput;

export interface RuleObjectInput extends ValueObjectInput {
  events?: string | string[] | undefined;
  when?: ConditionInput | undefined;
  merge?: Merge | undefined;
}
export type RuleInput = Scalar | RuleObjectInput;
export type FieldRulesInput = RuleInput | RuleInput[];

export interface LookupInput {
  by: (typeof LOOKUP_KINDS)[number];
  value: ValueInput;
  object?: string | undefined;
  field?: string | undefined;
}

export interface RecordOverrideInput {
  when?: ConditionInput | undefined;
  fields?: Record<string, ValueInput> | undefined;
  createOnly?: string[] | undefined;
  lookups?: Record<string, LookupInput | null> | undefined;
}

export interface RecordSpecInput {
  object: string;
  when?: ConditionInput | undefined;
  fields: Record<string, ValueInput>;
  createOnly?: string[] | undefined;
  lookups?: Record<string, LookupInput> | undefined;
}

export type TableInput = Record<string, Scalar>;

export interface CrmOverridesInput {
  activity?: RecordOverrideInput | undefined;
  followup?: RecordOverrideInput | undefined;
}

export interface SourceFileInput {
  source: string;
  description?: string | undefined;
  phoneRegion?: string | undefined;
  events: { unknown: EventDisposition; sync: string[]; ignore?: string[] | undefined; drop?: string[] | undefined };
  fold?: { sort?: SortKey[] | undefined; order?: string[] | undefined; merge?: Merge | undefined } | undefined;
  conditions?: Record<string, ConditionInput> | undefined;
  tables?: Record<string, TableInput> | undefined;
  activity: { [K in ActivityFieldName]?: FieldRulesInput | undefined } & { custom?: Record<string, FieldRulesInput> | undefined };
  callback?: { [K in CallbackFieldName]?: FieldRulesInput | undefined } | undefined;
  derive?: Record<string, ValueInput> | undefined;
  lifecycle: { final: ConditionInput[]; except?: ConditionInput[] | undefined };
  crm?:
    | {
        when?: ConditionInput | undefined;
        salesforce?: CrmOverridesInput | undefined;
        hubspot?: CrmOverridesInput | undefined;
      }
    | undefined;
}

export interface CrmFileInput {
  crm: CrmKind;
  description?: string | undefined;
  tables?: Record<string, TableInput> | undefined;
  activity: RecordSpecInput;
  followup: RecordSpecInput;
}

export type TablesFileInput = Record<string, TableInput>;
