import { Writable } from 'node:stream';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log';
import type { AppEnv } from './context';
import { lazyChild, requestContext } from './request-context';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

describe('request context', () => {
  it('binds the request id to every line the request logs, with the caller id when sane', async () => {
    const { lines, logger } = capture();
    const app = new Hono<AppEnv>();
    app.use(requestContext(logger));
    app.get('/x', (c) => {
      c.get('log').info({ step: 1 }, 'one');
      c.get('log').warn('two');
      return c.text(c.get('requestId'));
    });
    const given = await app.request('/x', { headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers.get('x-request-id')).toBe('abc-123');
    const ours = await app.request('/x', { headers: { 'x-request-id': 'not sane!' } });
    const id = await ours.text();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
    expect(lines.map((l) => [l['msg'], l['reqId']])).toEqual([
      ['one', 'abc-123'],
      ['two', 'abc-123'],
      ['one', id],
      ['two', id],
    ]);
    expect(lines[0]).toMatchObject({ step: 1, level: 'info' });
  });

  it('makes the bound logger only when a line is written at an enabled level', () => {
    const { lines, logger } = capture();
    let made = 0;
    const counting = new Proxy(logger, {
      get: (target, property) => (property === 'child' ? (...args: Parameters<typeof logger.child>) => (made++, target.child(...args)) : Reflect.get(target, property, target)),
    });
    const log = lazyChild(counting, { reqId: 'r1' });
    log.debug('not written');
    log.trace('not written');
    expect(made).toBe(0);
    log.error({ code: 7 }, 'written');
    log.info('written too');
    expect(made).toBe(1);
    expect(lines).toEqual([
      expect.objectContaining({ reqId: 'r1', code: 7, msg: 'written', level: 'error' }),
      expect.objectContaining({ reqId: 'r1', msg: 'written too', level: 'info' }),
    ]);
    expect(log.isLevelEnabled('debug')).toBe(false);
  });
});
