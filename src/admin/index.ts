import type { Hono } from 'hono';
import type { Config } from '../config';
import type { CrmTarget } from '../crm/engine/target-contract';
import type { Database } from '../db/client';
import type { AppEnv } from '../http/context';
import type { Logger } from '../log';
import type { MappingSet } from '../mapping/mapping-set';
import { adminApi } from './api';
import { clientAddress } from './auth';
import { adminPage } from './page';
import { crmKindsOf } from '../core/crm-targets';
import { AdminService } from './service';

export interface AdminDeps {
  config: Config;
  database: Database;
  logger: Logger;
  mappings: { current(): MappingSet };
  /**
   * The worker's CRM target, when this process has one. Without it (web
   * role) a single replay still builds the records CRM_TARGET needs, so a
   * CRM-side mapping error is caught before anything is queued.
   */
  target?: CrmTarget | undefined;
  now?: () => Date;
}

/**
 * Mounts the admin on the app: the JSON API (Bearer token, /admin/openapi.json)
 * and the web page at /admin (login form, cookie session). Without
 * ADMIN_TOKEN both answer 403 admin_disabled.
 *
 * Use as `createApp({ ..., mount: (app) => mountAdmin(app, deps) })`.
 */
export function mountAdmin(app: Hono<AppEnv>, deps: AdminDeps): void {
  const now = deps.now ?? (() => new Date());
  const service = new AdminService({
    database: deps.database,
    logger: deps.logger.child({ component: 'admin' }),
    mappings: deps.mappings,
    crmKinds: deps.target?.needs ?? crmKindsOf(deps.config.crmTarget),
    now,
  });
  // Only the admin's routes resolve the client address (not the webhook hot path).
  app.use('/admin/*', clientAddress(deps.config.TRUST_PROXY_HOPS));
  app.route('/', adminApi(deps.config, service));
  app.route('/', adminPage(deps.config, service, now));
  app.get('/admin/', (c) => c.redirect('/admin', 301));
  if (deps.config.ADMIN_TOKEN === undefined) deps.logger.info('admin disabled: set ADMIN_TOKEN (16+ characters) to enable /admin');
}

export { AdminService } from './service';
