import { createHmac } from 'node:crypto';
import { type Config } from '../../src/config';
import { testConfig } from './config';
import type { Database } from '../../src/db/client';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import type { MappingSet } from '../../src/mapping/mapping-set';
import { Metrics } from '../../src/metrics';
import { IngestQueue } from '../../src/outbox/ingest';

export const SECRETS = {
  GENESYS_OCS_SECRET: 'genesys-test-secret-0001',
  ENREACH_SECRET: 'enreach-test-secret-0001',
  UCONTACT_SECRET: 'ucontact-test-secret-0001',
  HCC_SECRET: 'hcc-test-secret-0001',
  HCC_BASIC_USER: 'hcc-user',
  HCC_BASIC_PASSWORD: 'hcc-password-0001',
  WEBEX_CC_SECRET: 'webex-test-secret-0001',
} as const;

export interface TestApp {
  app: ReturnType<typeof createApp>;
  config: Config;
  metrics: Metrics;
  ingest: IngestQueue;
}

export function buildTestApp(options: {
  database: Database;
  mappings: MappingSet;
  env?: Record<string, string | undefined>;
  now?: () => Date;
}): TestApp {
  const config = testConfig({ ...SECRETS, ...options.env });
  const logger = createLogger({ level: config.LOG_LEVEL });
  const metrics = new Metrics();
  const ingest = new IngestQueue(options.database, { maxBatch: config.INGEST_BATCH_MAX, maxInFlight: 2, timeoutMs: 5_000 }, logger, metrics);
  const app = createApp({
    config,
    database: options.database,
    logger,
    metrics,
    ingest,
    mappings: { current: () => options.mappings },
    ...(options.now ? { now: options.now } : {}),
  });
  return { app, config, metrics, ingest };
}

export function webexSignature(body: string, secret: string = SECRETS.WEBEX_CC_SECRET): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}
