/**
 * Runs a fake CRM as a standalone HTTP server, for trying the worker by hand
 * or benchmarking it from another process:
 *
 *   npx tsx test/fakes/serve.ts salesforce --port 4010 --latency 50
 *   npx tsx test/fakes/serve.ts hubspot --port 4020 --latency 50 --ten-second-limit 100000
 *
 * It prints one JSON line with its URL and the environment variables a
 * worker needs, then serves until SIGINT/SIGTERM. GET <url>/__fake/state
 * answers the request counters and record counts.
 */
import { parseArgs } from 'node:util';
import { startFakeHubSpot } from './hubspot';
import { startFakeSalesforce } from './salesforce';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '0' },
    latency: { type: 'string', default: '0' },
    'ten-second-limit': { type: 'string' },
    'api-daily-limit': { type: 'string' },
  },
});

const which = positionals[0];
const port = Number(values.port);
const latencyMs = Number(values.latency);
if ((which !== 'salesforce' && which !== 'hubspot') || !Number.isInteger(port) || !(latencyMs >= 0)) {
  process.stderr.write('usage: tsx test/fakes/serve.ts salesforce|hubspot [--port N] [--latency MS] [--ten-second-limit N] [--api-daily-limit N]\n');
  process.exit(2);
}

const started =
  which === 'salesforce'
    ? await startFakeSalesforce({
        port,
        latencyMs,
        ...(values['api-daily-limit'] === undefined ? {} : { apiDailyLimit: Number(values['api-daily-limit']) }),
      })
    : await startFakeHubSpot({
        port,
        latencyMs,
        ...(values['ten-second-limit'] === undefined ? {} : { tenSecondLimit: Number(values['ten-second-limit']) }),
      });

process.stdout.write(`${JSON.stringify({ crm: which, url: started.url, env: started.env })}\n`);

const stop = () => {
  void started.fake.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
