import { z } from 'zod';
import { TIME_FORMATS } from '../core/time';
import type {
  ConditionInput,
  CrmFileInput,
  FieldRulesInput,
  LookupInput,
  RecordOverrideInput,
  RecordSpecInput,
  RuleInput,
  RuleObjectInput,
  SourceFileInput,
  TableInput,
  TablesFileInput,
  ValueInput,
  ValueObjectInput,
} from './file-inputs';
import { ACTIVITY_FIELDS, CALLBACK_FIELDS, DURATION_UNITS, LOOKUP_KINDS, MERGES, SORT_KEYS, type ActivityFieldName, type CallbackFieldName, type JsonInput } from './language-terms';
import { EVENT_DISPOSITIONS } from '../core/event';
import { CRM_KINDS } from '../core/crm-record';

/**
 * The mapping language, as zod schemas. Structural checks live here (which
 * keys, which types); checks that need the whole set (does this table exist,
 * is this event synced, does this JSONata compile) live in the compiler
 * (compile-*.ts). Both
 * report file:line:column through the YAML node ranges.
 *
 * Value specs and conditions are plain objects checked with superRefine
 * rather than unions, so a typo gets "unknown key" with a suggestion instead
 * of zod's "Invalid input" for every union branch.
 */

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const json: z.ZodType<JsonInput> = z.lazy(() => z.union([scalar, z.array(json), z.record(z.string(), json)]));
const name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a name of letters, digits and _');
const nonEmpty = z.string().min(1, 'must not be empty');
const oneOrMany = z.union([nonEmpty, z.array(nonEmpty).min(1, 'must list at least one')]);

const CONDITION_TESTS = ['equals', 'notEquals', 'in', 'notIn', 'exists', 'matches', 'gt', 'gte', 'lt', 'lte'] as const;

export const conditionSchema: z.ZodType<ConditionInput> = z.lazy(() =>
  z
    .strictObject({
      event: oneOrMany.optional(),
      path: nonEmpty.optional(),
      equals: scalar.optional(),
      notEquals: scalar.optional(),
      in: z.array(scalar).optional(),
      notIn: z.array(scalar).optional(),
      exists: z.boolean().optional(),
      matches: nonEmpty.optional(),
      gt: z.number().optional(),
      gte: z.number().optional(),
      lt: z.number().optional(),
      lte: z.number().optional(),
      ignoreCase: z.boolean().optional(),
      all: z.array(conditionSchema).min(1, 'must list at least one condition').optional(),
      any: z.array(conditionSchema).min(1, 'must list at least one condition').optional(),
      not: conditionSchema.optional(),
      is: nonEmpty.optional(),
      jsonata: nonEmpty.optional(),
    })
    .superRefine((c, ctx) => {
      const tests = CONDITION_TESTS.filter((t) => c[t] !== undefined);
      if (c.path !== undefined && tests.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['path'], message: `a path needs a test: one of ${CONDITION_TESTS.join(', ')}` });
      }
      if (tests.length > 1) {
        ctx.addIssue({ code: 'custom', path: [tests[1] ?? ''], message: `one test per condition (found ${tests.join(' and ')}); combine conditions with all:` });
      }
      const first = tests[0];
      if (first !== undefined && c.path === undefined) {
        ctx.addIssue({ code: 'custom', path: [first], message: `${first} needs a path to test` });
      }
      if (c.ignoreCase !== undefined && c.path === undefined) {
        ctx.addIssue({ code: 'custom', path: ['ignoreCase'], message: 'ignoreCase needs a path and a test' });
      }
      const parts = ['event', 'path', 'all', 'any', 'not', 'is', 'jsonata'] as const;
      if (!parts.some((p) => c[p] !== undefined)) {
        ctx.addIssue({ code: 'custom', message: `an empty condition: give one of ${parts.join(', ')}` });
      }
    }),
);

const SOURCE_KEYS = ['path', 'const', 'template', 'coalesce', 'if', 'jsonata', 'secondsBetween', 'addSeconds', 'subtractSeconds'] as const;
const CONVERSION_KEYS = ['time', 'duration', 'phone', 'table', 'number', 'string', 'boolean', 'date', 'email'] as const;
const trueOnly = z.literal(true, { error: 'must be true (or leave it out)' });

const valueObjectShape = {
  path: nonEmpty.optional(),
  const: json.optional(),
  template: z.string().optional(),
  get coalesce() {
    return z.array(valueSchema).min(1, 'must list at least one value').optional();
  },
  if: conditionSchema.optional(),
  get then() {
    return valueSchema.optional();
  },
  get else() {
    return valueSchema.optional();
  },
  jsonata: nonEmpty.optional(),
  get secondsBetween() {
    return z.array(valueSchema).length(2, 'needs exactly two times: [from, to]').optional();
  },
  get addSeconds() {
    return z.array(valueSchema).length(2, 'needs exactly two values: [time, seconds]').optional();
  },
  get subtractSeconds() {
    return z.array(valueSchema).length(2, 'needs exactly two values: [time, seconds]').optional();
  },
  nullIf: z.array(scalar).optional(),
  replace: z.strictObject({ pattern: nonEmpty, with: z.string() }).optional(),
  case: z.enum(['lower', 'upper']).optional(),
  time: z.enum(TIME_FORMATS).optional(),
  zone: nonEmpty.optional(),
  duration: z.union([z.enum(DURATION_UNITS), z.strictObject({ from: z.enum(DURATION_UNITS), to: z.enum(DURATION_UNITS) })]).optional(),
  phone: z.union([z.literal(true), z.string().regex(/^[A-Z]{2}$/, 'must be true or a two-letter region such as US')]).optional(),
  table: nonEmpty.optional(),
  fallback: z.union([z.enum(['raw', 'null']), z.null()]).optional(),
  number: trueOnly.optional(),
  string: trueOnly.optional(),
  boolean: trueOnly.optional(),
  date: trueOnly.optional(),
  email: trueOnly.optional(),
  truncate: z.number().int().positive().optional(),
  default: json.optional(),
  lineBreak: z.string().optional(),
};

function checkValueObject(v: ValueObjectInput, ctx: z.RefinementCtx): void {
  const sources = SOURCE_KEYS.filter((k) => v[k] !== undefined);
  if (sources.length === 0) {
    ctx.addIssue({ code: 'custom', message: `a value needs one of ${SOURCE_KEYS.join(', ')}` });
  } else if (sources.length > 1) {
    ctx.addIssue({ code: 'custom', path: [sources[1] ?? ''], message: `a value takes one of ${SOURCE_KEYS.join(', ')} (found ${sources.join(' and ')})` });
  }
  const conversions = CONVERSION_KEYS.filter((k) => v[k] !== undefined);
  if (conversions.length > 1) {
    ctx.addIssue({
      code: 'custom',
      path: [conversions[1] ?? ''],
      message: `one conversion per value (found ${conversions.join(' and ')}); nest a value in coalesce or if/then to chain`,
    });
  }
  if ((v.then !== undefined || v.else !== undefined) && v.if === undefined) {
    ctx.addIssue({ code: 'custom', path: [v.then !== undefined ? 'then' : 'else'], message: 'then/else need an if' });
  }
  if (v.if !== undefined && v.then === undefined) {
    ctx.addIssue({ code: 'custom', path: ['if'], message: 'if needs a then' });
  }
  if (v.zone !== undefined && v.time === undefined && v.date === undefined) {
    ctx.addIssue({ code: 'custom', path: ['zone'], message: 'zone goes with time or date' });
  }
  // time: local without a zone is reported by the compiler, which knows the source's zone setting.
  if (v.fallback !== undefined && v.table === undefined) {
    ctx.addIssue({ code: 'custom', path: ['fallback'], message: 'fallback goes with table' });
  }
  if (v.lineBreak !== undefined && v.template === undefined) {
    ctx.addIssue({ code: 'custom', path: ['lineBreak'], message: 'lineBreak goes with template' });
  }
}

export const valueObjectSchema: z.ZodType<ValueObjectInput> = z.lazy(() => z.strictObject(valueObjectShape).superRefine(checkValueObject));
export const valueSchema: z.ZodType<ValueInput> = z.lazy(() => z.union([scalar, valueObjectSchema]));

const ruleObjectSchema: z.ZodType<RuleObjectInput> = z.lazy(() =>
  z
    .strictObject({
      ...valueObjectShape,
      events: oneOrMany.optional(),
      when: conditionSchema.optional(),
      merge: z.enum(MERGES).optional(),
    })
    .superRefine(checkValueObject),
);
const ruleSchema: z.ZodType<RuleInput> = z.union([scalar, ruleObjectSchema]);
const fieldRulesSchema: z.ZodType<FieldRulesInput> = z.union([ruleSchema, z.array(ruleSchema).min(1, 'must list at least one rule')]);

export const lookupSchema: z.ZodType<LookupInput> = z
  .strictObject({
    by: z.enum(LOOKUP_KINDS),
    value: valueSchema,
    object: nonEmpty.optional(),
    field: nonEmpty.optional(),
  })
  .superRefine((l, ctx) => {
    if (l.by === 'field') {
      if (l.object === undefined) ctx.addIssue({ code: 'custom', path: ['by'], message: 'by: field needs object (e.g. Account)' });
      if (l.field === undefined) ctx.addIssue({ code: 'custom', path: ['by'], message: 'by: field needs field (e.g. AccountNumber)' });
    } else {
      if (l.object !== undefined) ctx.addIssue({ code: 'custom', path: ['object'], message: `object goes with by: field, not by: ${l.by}` });
      if (l.field !== undefined) ctx.addIssue({ code: 'custom', path: ['field'], message: `field goes with by: field, not by: ${l.by}` });
    }
  });

const crmFieldName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a CRM field name');

const recordOverrideSchema: z.ZodType<RecordOverrideInput> = z.strictObject({
  when: conditionSchema.optional(),
  fields: z.record(crmFieldName, valueSchema).optional(),
  createOnly: z.array(crmFieldName).optional(),
  lookups: z.record(crmFieldName, z.union([lookupSchema, z.null()])).optional(),
});

const recordSpecSchema: z.ZodType<RecordSpecInput> = z.strictObject({
  object: nonEmpty,
  when: conditionSchema.optional(),
  fields: z.record(crmFieldName, valueSchema),
  createOnly: z.array(crmFieldName).optional(),
  lookups: z.record(crmFieldName, lookupSchema).optional(),
});

export const tableSchema: z.ZodType<TableInput> = z.record(z.string(), scalar);
const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'must be a name of letters, digits, _ and -');
const tablesSchema = z.record(tableName, tableSchema);

const activityShape = Object.fromEntries(ACTIVITY_FIELDS.map((f) => [f, fieldRulesSchema.optional()])) as Record<
  ActivityFieldName,
  z.ZodOptional<z.ZodType<FieldRulesInput>>
>;
const callbackShape = Object.fromEntries(CALLBACK_FIELDS.map((f) => [f, fieldRulesSchema.optional()])) as Record<
  CallbackFieldName,
  z.ZodOptional<z.ZodType<FieldRulesInput>>
>;

export const sourceFileSchema: z.ZodType<SourceFileInput> = z.strictObject({
  source: nonEmpty,
  description: z.string().optional(),
  phoneRegion: z.string().regex(/^[A-Z]{2}$/, 'must be a two-letter region such as US').optional(),
  events: z.strictObject({
    unknown: z.enum(EVENT_DISPOSITIONS),
    sync: z.array(nonEmpty),
    ignore: z.array(nonEmpty).optional(),
    drop: z.array(nonEmpty).optional(),
  }),
  fold: z
    .strictObject({
      sort: z.array(z.enum(SORT_KEYS)).min(1).optional(),
      order: z.array(nonEmpty).optional(),
      merge: z.enum(MERGES).optional(),
    })
    .optional(),
  conditions: z.record(name, conditionSchema).optional(),
  tables: tablesSchema.optional(),
  activity: z.strictObject({ ...activityShape, custom: z.record(name, fieldRulesSchema).optional() }),
  callback: z.strictObject(callbackShape).optional(),
  derive: z.record(z.string(), valueSchema).optional(),
  lifecycle: z.strictObject({
    final: z.array(conditionSchema).min(1, 'must list at least one condition'),
    except: z.array(conditionSchema).optional(),
  }),
  crm: z
    .strictObject({
      when: conditionSchema.optional(),
      salesforce: z.strictObject({ activity: recordOverrideSchema.optional(), followup: recordOverrideSchema.optional() }).optional(),
      hubspot: z.strictObject({ activity: recordOverrideSchema.optional(), followup: recordOverrideSchema.optional() }).optional(),
    })
    .optional(),
});

export const crmFileSchema: z.ZodType<CrmFileInput> = z.strictObject({
  crm: z.enum(CRM_KINDS),
  description: z.string().optional(),
  tables: tablesSchema.optional(),
  activity: recordSpecSchema,
  followup: recordSpecSchema,
});

export const tablesFileSchema: z.ZodType<TablesFileInput> = tablesSchema;

/** Every key the language knows, for "did you mean" suggestions. */
export const KNOWN_KEYS: readonly string[] = [
  ...new Set([
    ...Object.keys(valueObjectShape),
    'events',
    'when',
    'merge',
    ...CONDITION_TESTS,
    'event',
    'ignoreCase',
    'all',
    'any',
    'not',
    'is',
    'by',
    'value',
    'object',
    'field',
    'fields',
    'createOnly',
    'lookups',
    'source',
    'description',
    'phoneRegion',
    'unknown',
    'sync',
    'ignore',
    'drop',
    'fold',
    'sort',
    'order',
    'conditions',
    'tables',
    'activity',
    'callback',
    'derive',
    'lifecycle',
    'final',
    'except',
    'crm',
    'salesforce',
    'hubspot',
    'followup',
    'custom',
    ...ACTIVITY_FIELDS,
    ...CALLBACK_FIELDS,
  ]),
];
