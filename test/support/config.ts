import { parseConfig, type Config } from '../../src/config';

/** A config for tests: defaults plus overrides, validated as the service validates its environment. */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', MAPPINGS_WATCH: 'false', ...overrides });
}
