import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { serve, type HttpBindings, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../core/errors';
import { nestsDeeperThan, readBodyText } from './request-body';

/**
 * readBodyText over a real socket, as @hono/node-server hands it Node's own
 * request stream (the app.request() tests elsewhere read a Web Request).
 */
describe('readBodyText under @hono/node-server', () => {
  let server: ServerType;
  let port: number;
  const outcomes: string[] = [];

  beforeAll(async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.post('/', async (c) => {
      try {
        const text = await readBodyText(c.req.raw, 1024, c.env.incoming);
        outcomes.push(`text:${text.length}`);
        return c.text(text);
      } catch (err) {
        const error = err as AppError;
        outcomes.push(`${error.code}`);
        if (error.code === 'payload_too_large') c.header('Connection', 'close');
        return c.json(error.toBody(), error.status);
      }
    });
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Sends raw HTTP/1.1 and answers everything the server wrote back until it closed or went quiet. */
  function raw(request: string, { end = true, quietMs = 400 } = {}): Promise<string> {
    return new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let answer = '';
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(answer);
      };
      socket.on('data', (chunk) => {
        answer += chunk.toString();
        clearTimeout(timer);
        timer = setTimeout(done, quietMs);
      });
      socket.on('close', done);
      socket.on('error', done);
      socket.write(request);
      if (end) socket.end();
      timer = setTimeout(done, 2_000);
    });
  }

  it('reads a body sent with Content-Length, and one sent in chunks, exactly', async () => {
    const body = '{"a":"é ü"}';
    const length = Buffer.byteLength(body);
    const sized = await raw(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n${body}`);
    expect(sized).toMatch(/^HTTP\/1\.1 200/);
    expect(sized.endsWith(body)).toBe(true);
    const chunked = await raw(
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\n{"a"\r\n${(length - 4).toString(16)}\r\n${body.slice(4)}\r\n0\r\n\r\n`,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 200/);
    expect(chunked.endsWith(body)).toBe(true);
  });

  it('refuses a declared Content-Length over the limit with 413 before the body arrives', async () => {
    // Only the headers are sent: the answer cannot have waited for a body.
    const answer = await raw(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n`, { end: false });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toContain('the body is larger than the 1024-byte limit (MAX_BODY_BYTES)');
  });

  it('cuts a chunked body off with 413 as soon as it passes the limit', async () => {
    const chunk = 'x'.repeat(800);
    // Two chunks pass the limit; the request never ends (no last chunk), yet the 413 comes.
    const answer = await raw(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n${chunk}\r\n320\r\n${chunk}\r\n`, { end: false });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  it('refuses invalid UTF-8 with 400', async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
      socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\n');
      socket.end(Buffer.from([0x7b, 0xff, 0x7d]));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).toContain('the body is not valid UTF-8 text');
  });

  it('answers a client that hangs up mid-body as bad input, not a server error', async () => {
    const before = outcomes.length;
    const socket = net.connect(port, '127.0.0.1');
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":`);
    setTimeout(() => socket.destroy(), 100);
    await expect.poll(() => outcomes.slice(before), { timeout: 2_000 }).toEqual(['bad_request']);
  });
});

describe('nestsDeeperThan', () => {
  it('counts levels, not brackets, and skips brackets inside strings', () => {
    const siblings = `[${Array.from({ length: 1_000 }, () => '{"a":[1]}').join(',')}]`;
    expect(nestsDeeperThan(siblings, 512)).toBe(false);
    expect(nestsDeeperThan(`{"s":"${'{['.repeat(1_000)}"}`, 512)).toBe(false);
    expect(nestsDeeperThan(`${'['.repeat(512)}${']'.repeat(512)}`, 512)).toBe(false);
    expect(nestsDeeperThan(`${'['.repeat(513)}${']'.repeat(513)}`, 512)).toBe(true);
    expect(nestsDeeperThan(`{"a":${'{"b":'.repeat(600)}1${'}'.repeat(600)}}`, 512)).toBe(true);
  });
});
