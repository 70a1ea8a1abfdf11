import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, maskPhone, scrubPhones } from './log';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logs', () => {
  it('masks phone numbers', () => {
    expect(maskPhone('+358501231234')).toBe('+358…34');
    expect(scrubPhones('no contact for +1 (312) 555-0147 or 3125550199; call 11142')).toBe('no contact for +131…47 or 3125…99; call 11142');
  });

  it('never writes a credential header or a full number from an error', () => {
    const { stream, lines } = capture();
    const logger = createLogger({ level: 'info', destination: stream });
    const err = Object.assign(new Error('invalid input: "phone":"+358501231234"'), { code: '22P02' });
    logger.error({ err, headers: { 'x-api-key': 'k-123', authorization: 'Basic abc', 'content-type': 'application/json' } }, 'insert failed');
    const [line] = lines();
    expect(line?.headers).toEqual({ 'x-api-key': '[redacted]', authorization: '[redacted]', 'content-type': 'application/json' });
    expect((line?.err as { message: string; code: string }).message).toBe('invalid input: "phone":"+358…34"');
    expect(JSON.stringify(line)).not.toContain('358501231234');
  });
});
