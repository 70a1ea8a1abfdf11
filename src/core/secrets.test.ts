import { describe, expect, it } from 'vitest';
import { matchesConfiguredSecret, safeEqual } from './secrets';

describe.each([
  ['safeEqual', safeEqual],
  ['matchesConfiguredSecret', matchesConfiguredSecret],
] as const)('%s', (_name, equal) => {
  it('compares exactly, whatever the lengths', () => {
    expect(equal('secret', 'secret')).toBe(true);
    expect(equal('secret ', 'secret')).toBe(false);
    expect(equal('', 'secret')).toBe(false);
    expect(equal(undefined, 'secret')).toBe(false);
    expect(equal('x'.repeat(10_000), 'secret')).toBe(false);
  });

  it('answers for the secret it is given, however many it has seen', () => {
    for (let i = 0; i < 200; i += 1) expect(equal(`token-${i}`, `token-${i}`)).toBe(true);
    expect(equal('token-1', 'token-2')).toBe(false);
  });
});
