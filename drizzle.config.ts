import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes reviewed SQL migrations into drizzle/ from
// src/db/schema.ts; the service applies them at start (src/db/run-migrations.ts).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
});
