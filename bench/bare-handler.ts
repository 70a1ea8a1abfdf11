import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import postgres from 'postgres';

/**
 * The reference the ingest benchmark compares against: Hono + postgres.js,
 * one INSERT per request, no auth, no dedupe, no batching. Same pool size as
 * the service's default.
 */
const sql = postgres(process.env.DATABASE_URL ?? '', { max: Number(process.env.DATABASE_POOL_SIZE ?? 10), onnotice: () => {} });
await sql`CREATE TABLE IF NOT EXISTS bare_events (id bigserial PRIMARY KEY, source text NOT NULL, received_at timestamptz NOT NULL DEFAULT now(), body jsonb NOT NULL)`;

const app = new Hono();
app.post('/webhooks/:source/:event?', async (c) => {
  const body = await c.req.text();
  await sql`INSERT INTO bare_events (source, body) VALUES (${c.req.param('source')}, ${body}::jsonb)`;
  return c.body(null, 200);
});
app.get('/readyz', (c) => c.json({ status: 'ready' }));

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3001) });
