import type { Logger } from '../log';

/** Per-request values every route can read. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** The client's address, where a route group resolves it (the admin: see clientAddress). */
    clientAddress?: string | null;
  };
}
