import { randomBytes } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log';
import type { AppEnv } from './context';

const INCOMING_ID = /^[\w\-=.:]{1,64}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when it is sane,
 * else ours) and a logger bound to it, so every log line of the request
 * carries `reqId`.
 *
 * Cheaper than hono/request-id on the webhook hot path, where it runs
 * thousands of times a second: the id is a per-process prefix plus a
 * counter (unique without a UUID per request), and the id is echoed in a
 * response header only outside /webhooks (vendors ignore it, and a bare
 * response stays on @hono/node-server's fast path).
 */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  const prefix = randomBytes(4).toString('hex');
  let counter = 0;
  return async (c, next) => {
    const incoming = c.req.header('x-request-id');
    const id = incoming !== undefined && INCOMING_ID.test(incoming) ? incoming : `${prefix}-${(counter++).toString(36)}`;
    c.set('requestId', id);
    c.set('log', logger.child({ reqId: id }));
    if (!c.req.path.startsWith('/webhooks/')) c.header('X-Request-Id', id);
    await next();
  };
}
