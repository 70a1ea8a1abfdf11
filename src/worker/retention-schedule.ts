import type { Database } from '../db/client';
import { sleep } from '../core/time';
import type { Logger } from '../log';
import { deleteExpiredBatch } from '../outbox/purge-expired';

/**
 * Runs retention in the worker process: every `intervalMs`, small batches
 * until nothing is left, with a pause between batches so the deletes never
 * crowd out syncing.
 */
export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly database: Database,
    private readonly options: { days: number; intervalMs: number; batchSize: number; pauseMs: number },
    private readonly logger: Logger,
  ) {}

  start(firstRunInMs = 60_000): void {
    this.stopped = false;
    const schedule = (ms: number) => {
      this.timer = setTimeout(() => {
        this.running = this.runOnce()
          .then(() => undefined)
          .catch((err: unknown) => this.logger.warn({ err }, 'retention run failed'))
          .finally(() => {
            this.running = undefined;
            if (!this.stopped) schedule(this.options.intervalMs);
          });
      }, ms);
      this.timer.unref();
    };
    schedule(firstRunInMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Deletes everything expired, batch by batch; returns the totals. */
  async runOnce(): Promise<{ calls: number; events: number }> {
    const total = { calls: 0, events: 0 };
    for (;;) {
      const batch = await deleteExpiredBatch(this.database, { days: this.options.days, batchSize: this.options.batchSize });
      total.calls += batch.calls;
      total.events += batch.events;
      if (batch.calls < this.options.batchSize && batch.events < this.options.batchSize) break;
      if (this.stopped) break;
      await sleep(this.options.pauseMs);
    }
    if (total.calls > 0 || total.events > 0) this.logger.info(total, 'retention deleted expired rows');
    return total;
  }
}
