import { describe, expect, it } from 'vitest';
import { pgTextArray, repairJsonText } from './pg-text';

describe('repairJsonText', () => {
  it.each([
    ['{"a":"x\\u0000y"}', '{"a":"x\\ufffdy"}'],
    ['{"a":"\\ud800"}', '{"a":"\\ufffd"}'],
    ['{"a":"\\udc00x"}', '{"a":"\\ufffdx"}'],
    ['{"a":"\\ud83d\\ude00"}', '{"a":"\\ud83d\\ude00"}'],
    ['{"a":"\\ud83d \\ude00"}', '{"a":"\\ufffd \\ufffd"}'],
    ['{"a":"\\ud800\\ud83d\\ude00"}', '{"a":"\\ufffd\\ud83d\\ude00"}'],
    ['{"a":"\\\\u0000"}', '{"a":"\\\\u0000"}'],
    ['{"a":"\\\\\\u0000"}', '{"a":"\\\\\\ufffd"}'],
    ['\uFEFF{"a":"\\u00e9"}', '{"a":"\\u00e9"}'],
  ])('%s -> %s', (raw, repaired) => {
    expect(repairJsonText(raw)).toBe(repaired);
    // What it produces always parses to the same structure with the bad code points replaced.
    expect(() => JSON.parse(repaired)).not.toThrow();
  });

  it('is linear whatever the nesting depth', () => {
    const deep = `{"x":${'['.repeat(200_000)}"\\u0000"${']'.repeat(200_000)}}`;
    const repaired = repairJsonText(deep);
    expect(repaired.length).toBe(deep.length);
    expect(repaired).toContain('"\\ufffd"');
  });
});

describe('pgTextArray', () => {
  it('quotes every element and escapes quotes and backslashes', () => {
    expect(pgTextArray(['a"b', 'c\\d', null, '{x}', ''])).toBe('{"a\\"b","c\\\\d",NULL,"{x}",""}');
  });
});
