import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric the service exports, in one registry per process
 * (tests build their own). Served at GET /metrics.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly webhooksAccepted = new Counter({
    name: 'callsync_webhooks_accepted_total',
    help: 'Webhooks stored (or, for dropped event types, acknowledged), by source and what the mapping does with the event type.',
    labelNames: ['source', 'disposition'] as const,
    registers: [this.registry],
  });

  readonly webhooksDuplicated = new Counter({
    name: 'callsync_webhooks_duplicated_total',
    help: 'Re-deliveries answered 200 without storing a second row, by source.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly webhooksRejected = new Counter({
    name: 'callsync_webhooks_rejected_total',
    help: 'Webhooks refused, by source and reason (unauthorized, bad_request, too_large, unavailable, not_found).',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });

  readonly ingestBatchSize = new Histogram({
    name: 'callsync_ingest_batch_size',
    help: 'Webhooks written per INSERT statement (concurrent requests share one).',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
    registers: [this.registry],
  });

  readonly outboxDepth = new Gauge({
    name: 'callsync_outbox_pending_calls',
    help: 'Calls waiting to be synced (pending in call_syncs).',
    registers: [this.registry],
  });

  readonly outboxPendingEvents = new Gauge({
    name: 'callsync_outbox_pending_events',
    help: 'Events received and not yet synced, across the pending calls.',
    registers: [this.registry],
  });

  readonly outboxOldestAge = new Gauge({
    name: 'callsync_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest pending event, in seconds (0 when none).',
    registers: [this.registry],
  });

  readonly syncsSucceeded = new Counter({
    name: 'callsync_syncs_succeeded_total',
    help: 'Calls written to the CRM, by target.',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  readonly syncsFailed = new Counter({
    name: 'callsync_syncs_failed_total',
    help: 'Sync attempts that failed, by target, error kind and whether the call was rescheduled (retry) or given up (failed).',
    labelNames: ['target', 'kind', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly syncRetries = new Counter({
    name: 'callsync_sync_retries_total',
    help: 'Retries: in-process (quick) and durable (rescheduled), by target.',
    labelNames: ['target', 'scope'] as const,
    registers: [this.registry],
  });

  readonly crmRequestSeconds = new Histogram({
    name: 'callsync_crm_request_seconds',
    help: 'Latency of one CRM write batch, by target and outcome.',
    labelNames: ['target', 'outcome'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly syncLatency = new Histogram({
    name: 'callsync_event_to_crm_seconds',
    help: 'From the newest event of a call being received to its CRM write completing.',
    labelNames: ['target'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'callsync_' });
  }
}
