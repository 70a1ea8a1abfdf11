import type { Logger } from '../log';

/** Per-request values every route can read. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
  };
}
