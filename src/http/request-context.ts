import { randomBytes } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log';
import type { AppEnv } from './context';

const INCOMING_ID = /^[\w\-=.:]{1,64}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when it is sane,
 * else ours) and a logger bound to it, so every log line of the request
 * carries `reqId`.
 *
 * Cheap on the webhook hot path, where it runs thousands of times a second:
 * the id is a per-process prefix plus a counter (unique without a UUID per
 * request); the header is read from Node's own header object rather than a
 * Web Headers built for it; the bound logger is made on the first line the
 * request actually logs (most webhooks log none); and the id is echoed in a
 * response header only outside /webhooks (vendors ignore it, and a bare
 * response stays on @hono/node-server's fast path).
 */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  const prefix = randomBytes(4).toString('hex');
  let counter = 0;
  return async (c, next) => {
    const nodeHeaders = (c.env as Partial<HttpBindings> | undefined)?.incoming?.headers;
    const header = nodeHeaders ? nodeHeaders['x-request-id'] : c.req.header('x-request-id');
    const given = Array.isArray(header) ? header[0] : header;
    const id = given !== undefined && INCOMING_ID.test(given) ? given : `${prefix}-${(counter++).toString(36)}`;
    c.set('requestId', id);
    c.set('log', lazyChild(logger, { reqId: id }));
    if (!c.req.path.startsWith('/webhooks/')) c.header('X-Request-Id', id);
    await next();
  };
}

const noop = () => {};

/**
 * `logger.child(bindings)`, made when first used. A level method that would
 * write nothing at the configured level answers a no-op without making it.
 */
export function lazyChild(logger: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  const real = () => (child ??= logger.child(bindings));
  return new Proxy(logger, {
    get(_target, property) {
      if (child === undefined && typeof property === 'string' && property in logger.levels.values && !logger.isLevelEnabled(property)) return noop;
      const target = real();
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
