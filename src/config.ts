import { z } from 'zod';
import { CRM_TARGETS, type CrmTargetName } from './core/crm-targets';
import { boolFromEnv, httpUrl, intFromEnv, optionalSecret, optionalString, type EnvRule } from './env-values';
import { sourceEnvRules, sourceEnvShape } from './sources/settings-registry';

/**
 * Every environment variable the service reads, parsed once at start-up.
 * An invalid value stops the process with the full list of what is wrong
 * (see `loadConfig`), never a stack trace.
 */

export const ROLES = ['all', 'web', 'worker'] as const;
export type Role = (typeof ROLES)[number];

export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    ROLE: z.enum(ROLES).default('all'),
    PORT: intFromEnv(3000, 0, 65535),
    HOST: z.string().default('0.0.0.0'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    DATABASE_URL: optionalString.pipe(
      z
        .string()
        .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must start with postgres:// or postgresql://')
        .optional(),
    ),
    DATA_DIR: z.string().default('./data'),
    DATABASE_POOL_SIZE: intFromEnv(10, 1, 200),

    MAX_BODY_BYTES: intFromEnv(1024 * 1024, 1024, 64 * 1024 * 1024),
    /** How many concurrent webhook inserts are gathered into one statement. */
    INGEST_BATCH_MAX: intFromEnv(256, 1, 5000),
    /** Insert statements in flight at once; webhooks arriving meanwhile form the next batch. */
    INGEST_MAX_IN_FLIGHT: intFromEnv(2, 1, 64),

    /** Each source's credentials and settings: src/sources/<vendor>/settings.ts. */
    ...sourceEnvShape,

    MAPPINGS_DIR: z.string().default('./mappings'),
    /** Default region for phone numbers written without a country code (ISO 3166 alpha-2). */
    DEFAULT_PHONE_REGION: z
      .string()
      .regex(/^[A-Z]{2}$/, 'must be a two-letter ISO country code such as US')
      .default('US'),
    MAPPINGS_WATCH: boolFromEnv(true),

    CRM_TARGET: z.enum(CRM_TARGETS).optional(),

    SALESFORCE_LOGIN_URL: httpUrl.default('https://login.salesforce.com'),
    SALESFORCE_CLIENT_ID: optionalString,
    SALESFORCE_CLIENT_SECRET: optionalSecret,
    SALESFORCE_REFRESH_TOKEN: optionalSecret,
    SALESFORCE_USERNAME: optionalString,
    SALESFORCE_PRIVATE_KEY: optionalSecret,
    SALESFORCE_INSTANCE_URL: optionalString.pipe(httpUrl.optional()),
    SALESFORCE_ACCESS_TOKEN: optionalSecret,
    SALESFORCE_API_VERSION: z
      .string()
      .regex(/^\d+\.0$/, 'must look like 62.0')
      .default('62.0'),
    SALESFORCE_EXTERNAL_ID_FIELD: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a Salesforce field API name')
      .default('Call_Sync_Id__c'),
    /** What to do when a phone number matches several Contacts/Leads: link none, or the first by the tie-break. */
    SALESFORCE_AMBIGUOUS_MATCH: z.enum(['none', 'first']).default('none'),

    HUBSPOT_ACCESS_TOKEN: optionalSecret,
    HUBSPOT_BASE_URL: httpUrl.default('https://api.hubapi.com'),
    /** Unique-value call property used with batch/upsert; empty string disables upsert (search-before-create). */
    HUBSPOT_ID_PROPERTY: z.string().default('call_sync_id'),
    HUBSPOT_AMBIGUOUS_MATCH: z.enum(['none', 'first']).default('none'),
    /**
     * false forces search-before-create. true lets the portal decide: the target reads
     * HUBSPOT_ID_PROPERTY's definition and upserts only when it has unique values.
     */
    HUBSPOT_ID_PROPERTY_UNIQUE: boolFromEnv(true),
    /** CRM searches a second (HubSpot allows about 5 per account); raise only against a simulated CRM. */
    HUBSPOT_SEARCH_PER_SECOND: intFromEnv(4, 1, 1000),

    LOOKUP_CACHE_TTL_SECONDS: intFromEnv(900, 0, 7 * 24 * 3600),
    /** Upper bound on one CRM write (all its requests, lookups included). */
    CRM_TIMEOUT_MS: intFromEnv(30_000, 100, 600_000),

    SYNC_MAX_ATTEMPTS: intFromEnv(10, 1, 100),
    SYNC_BACKOFF_BASE_MS: intFromEnv(5_000, 10, 3_600_000),
    SYNC_BACKOFF_MAX_MS: intFromEnv(3_600_000, 1_000, 7 * 24 * 3_600_000),
    SYNC_LEASE_SECONDS: intFromEnv(120, 5, 3600),
    SYNC_POLL_MS: intFromEnv(5_000, 50, 600_000),
    /** After a part-full batch, wait this long so the next CRM request carries more calls. */
    SYNC_BATCH_WAIT_MS: intFromEnv(200, 0, 10_000),
    WORKER_CONCURRENCY: intFromEnv(4, 1, 64),
    WORKER_SHUTDOWN_MS: intFromEnv(20_000, 0, 600_000),
    RETENTION_DAYS: intFromEnv(30, 1, 3650),

    ADMIN_TOKEN: optionalSecret.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
    /**
     * Reverse proxies in front of the service that append X-Forwarded-For:
     * with N > 0 the admin takes the client's address from that header (the
     * N-th entry from the right) for its login limits and audit; with 0 it
     * trusts only the socket, so no client can pick its own address.
     */
    TRUST_PROXY_HOPS: intFromEnv(0, 0, 10),
  });

export type Env = z.infer<typeof envSchema>;
type EnvName = keyof Env;

/** Rules across variables (see EnvRule): the sources' own first, then the service's. */
type CrossFieldRule = EnvRule<Env>;

const SALESFORCE_AUTH_VARIABLES = [
  'SALESFORCE_CLIENT_ID',
  'SALESFORCE_CLIENT_SECRET',
  'SALESFORCE_REFRESH_TOKEN',
  'SALESFORCE_USERNAME',
  'SALESFORCE_PRIVATE_KEY',
  'SALESFORCE_INSTANCE_URL',
  'SALESFORCE_ACCESS_TOKEN',
] as const satisfies readonly EnvName[];

const CROSS_FIELD_RULES: readonly CrossFieldRule[] = [
  ...sourceEnvRules,
  {
    reads: ['CRM_TARGET', 'HUBSPOT_ACCESS_TOKEN'],
    check: (env) =>
      env.CRM_TARGET === 'hubspot' && env.HUBSPOT_ACCESS_TOKEN === undefined
        ? { variable: 'HUBSPOT_ACCESS_TOKEN', message: 'required when CRM_TARGET=hubspot' }
        : null,
  },
  {
    reads: ['CRM_TARGET', ...SALESFORCE_AUTH_VARIABLES],
    check: (env) =>
      env.CRM_TARGET === 'salesforce' && salesforceAuthMode(env) === undefined
        ? {
            variable: 'SALESFORCE_CLIENT_ID',
            message:
              'CRM_TARGET=salesforce needs one way to authenticate: SALESFORCE_INSTANCE_URL + SALESFORCE_ACCESS_TOKEN, ' +
              'SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET (+ SALESFORCE_REFRESH_TOKEN), ' +
              'or SALESFORCE_CLIENT_ID + SALESFORCE_USERNAME + SALESFORCE_PRIVATE_KEY (JWT)',
          }
        : null,
  },
  {
    reads: ['SYNC_BACKOFF_BASE_MS', 'SYNC_BACKOFF_MAX_MS'],
    check: (env) =>
      env.SYNC_BACKOFF_BASE_MS > env.SYNC_BACKOFF_MAX_MS
        ? { variable: 'SYNC_BACKOFF_BASE_MS', message: 'must not exceed SYNC_BACKOFF_MAX_MS' }
        : null,
  },
];

/**
 * Variables whose empty value means something: `HUBSPOT_ID_PROPERTY=` turns
 * the id property off (see the HubSpot target). Every other empty or blank
 * value counts as unset, so `PORT=` is the default port, not port 0.
 */
const EMPTY_IS_A_VALUE: ReadonlySet<string> = new Set<EnvName>(['HUBSPOT_ID_PROPERTY']);

function withoutEmptyValues(source: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.keys(envSchema.shape)) {
    const value = source[name];
    if (value === undefined) continue;
    if (value.trim() === '' && !EMPTY_IS_A_VALUE.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export type SalesforceAuthMode = 'access-token' | 'refresh-token' | 'jwt' | 'client-credentials';

/** Which Salesforce grant the configured variables select; the most specific wins. */
export function salesforceAuthMode(env: {
  SALESFORCE_CLIENT_ID?: string | undefined;
  SALESFORCE_CLIENT_SECRET?: string | undefined;
  SALESFORCE_REFRESH_TOKEN?: string | undefined;
  SALESFORCE_USERNAME?: string | undefined;
  SALESFORCE_PRIVATE_KEY?: string | undefined;
  SALESFORCE_INSTANCE_URL?: string | undefined;
  SALESFORCE_ACCESS_TOKEN?: string | undefined;
}): SalesforceAuthMode | undefined {
  if (env.SALESFORCE_CLIENT_ID && env.SALESFORCE_USERNAME && env.SALESFORCE_PRIVATE_KEY) return 'jwt';
  if (env.SALESFORCE_CLIENT_ID && env.SALESFORCE_CLIENT_SECRET && env.SALESFORCE_REFRESH_TOKEN) return 'refresh-token';
  if (env.SALESFORCE_CLIENT_ID && env.SALESFORCE_CLIENT_SECRET) return 'client-credentials';
  if (env.SALESFORCE_INSTANCE_URL && env.SALESFORCE_ACCESS_TOKEN) return 'access-token';
  return undefined;
}

export interface Config extends Env {
  /** CRM_TARGET, or dry-run when no CRM is configured. */
  crmTarget: CrmTargetName;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment; throws ConfigError listing every bad variable:
 * each invalid value, and each cross-variable rule broken by the valid ones.
 */
export function parseConfig(source: Record<string, string | undefined> = process.env): Config {
  const values = withoutEmptyValues(source);
  const result = envSchema.safeParse(values);
  const problems = result.success
    ? []
    : result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`);
  const invalid = new Set(result.success ? [] : result.error.issues.map((issue) => String(issue.path[0])));
  // The cross-variable rules see the valid values, each invalid one read as
  // unset (every variable has a default or is optional, so this parses).
  const validOnly = result.success
    ? result
    : envSchema.safeParse(Object.fromEntries(Object.entries(values).filter(([name]) => !invalid.has(name))));
  if (validOnly.success) {
    for (const rule of CROSS_FIELD_RULES) {
      if (rule.reads.some((name) => invalid.has(name))) continue;
      const broken = rule.check(validOnly.data);
      if (broken) problems.push(`${broken.variable}: ${broken.message}`);
    }
  }
  if (!result.success || problems.length > 0) throw new ConfigError(problems);
  return { ...result.data, crmTarget: result.data.CRM_TARGET ?? 'dry-run' };
}

/** For entry points: parse or print the problems and exit 1. */
export function loadConfigOrExit(source: Record<string, string | undefined> = process.env): Config {
  try {
    return parseConfig(source);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
