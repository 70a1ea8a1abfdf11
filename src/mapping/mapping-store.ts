import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log';
import { formatMappingErrors, type MappingFileError } from './file-errors';
import { loadMappings, type LoadOptions } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';

export interface MappingStoreOptions extends LoadOptions {
  logger: Logger;
  /** Quiet time after the last change before reloading: editors write a file in several steps. */
  debounceMs?: number;
}

/**
 * Holds the current mappings and, once started, reloads them when a file
 * under the mappings dir changes. A reload validates everything first; a bad
 * edit keeps the last good mappings and logs why (file:line:col), so the
 * running service never drops to "no mappings".
 */
export class MappingStore {
  private set: LoadedMappings;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<boolean> | null = null;
  /** A reload was asked for while one ran: null for none, else whether it must happen even if nothing changed. */
  private again: { force: boolean } | null = null;
  /** What the last load read (see LoadResult), good or bad: a change that leaves it the same is not a reload. */
  private fingerprint: string;
  private lastErrors: MappingFileError[] = [];
  private loadedAt = new Date();

  private constructor(
    initial: LoadedMappings,
    fingerprint: string,
    private readonly options: MappingStoreOptions,
  ) {
    this.set = initial;
    this.fingerprint = fingerprint;
  }

  /** Loads the mappings once; start-up stops on { ok: false } with the errors. */
  static async open(options: MappingStoreOptions): Promise<{ ok: true; store: MappingStore } | { ok: false; errors: MappingFileError[] }> {
    const result = await loadMappings(options);
    if (!result.ok) return result;
    options.logger.info({ files: result.files.length, dir: options.dir }, 'mappings loaded');
    return { ok: true, store: new MappingStore(result.set, result.fingerprint, options) };
  }

  /** The mappings to use now. Take it once per unit of work: a reload swaps it, never changes it. */
  current(): LoadedMappings {
    return this.set;
  }

  status(): { loadedAt: Date; files: readonly string[]; lastErrors: readonly MappingFileError[] } {
    return { loadedAt: this.loadedAt, files: this.set.files, lastErrors: this.lastErrors };
  }

  /**
   * Watches the mappings dir (and crm/, tables/) and reloads on change. Any
   * change counts, not only *.yaml names: a Kubernetes ConfigMap update
   * swaps the ..data symlink and never touches hcc.yaml -> ..data/hcc.yaml
   * itself. A change that leaves the files as they were (an editor's swap
   * file) is recognised by the loader's fingerprint and changes nothing.
   */
  start(): void {
    if (this.watcher) return;
    const onChange = (): void => this.schedule();
    this.watcher = watch(this.options.dir, { recursive: true, persistent: false }, onChange);
    this.watcher.on('error', (err) => this.options.logger.error({ err, dir: this.options.dir }, 'watching the mappings dir failed'));
    this.options.logger.info({ dir: path.resolve(this.options.dir) }, 'watching mapping files for changes');
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.again = null;
    await this.running;
  }

  /**
   * Validates and, when everything is valid, swaps in the new mappings.
   * Answers whether it swapped. Reloads never overlap: a change during a
   * reload triggers one more afterwards. `onlyIfChanged` (the watcher's
   * reloads) skips files that read exactly as last time.
   */
  reload(options: { onlyIfChanged?: boolean } = {}): Promise<boolean> {
    const force = options.onlyIfChanged !== true;
    if (this.running) {
      this.again = { force: force || (this.again?.force ?? false) };
      return this.running;
    }
    this.running = this.doReload(force).finally(() => {
      this.running = null;
      const again = this.again;
      if (again) {
        this.again = null;
        void this.reload({ onlyIfChanged: !again.force });
      }
    });
    return this.running;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.reload({ onlyIfChanged: true });
    }, this.options.debounceMs ?? 250);
  }

  private async doReload(force: boolean): Promise<boolean> {
    const { logger } = this.options;
    try {
      const result = await loadMappings(this.options);
      const unchanged = result.fingerprint === this.fingerprint;
      this.fingerprint = result.fingerprint;
      if (unchanged && !force) {
        logger.debug({ dir: this.options.dir }, 'mapping files changed on disk but read the same; nothing to reload');
        return false;
      }
      if (!result.ok) {
        this.lastErrors = result.errors;
        logger.error(
          { errors: result.errors },
          `mapping files rejected; keeping the last good mappings (loaded ${this.loadedAt.toISOString()}):\n${formatMappingErrors(result.errors)}`,
        );
        return false;
      }
      this.set = result.set;
      this.lastErrors = [];
      this.loadedAt = new Date();
      logger.info({ files: result.files.length, dir: this.options.dir }, 'mappings reloaded');
      return true;
    } catch (err) {
      // An unreadable file mid-save and the like: keep what works, try again on the next change.
      logger.error({ err }, 'mapping reload failed; keeping the last good mappings');
      return false;
    }
  }
}
