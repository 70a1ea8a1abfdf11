import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors';
import { createLogger } from '../log';
import { errorResponse } from './error-response';

const request = { requestId: 'req-7', log: createLogger({ level: 'silent' }) };
const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('errorResponse', () => {
  it('answers an AppError with its own status and body', () => {
    expect(errorResponse(new AppError('conflict', 'busy right now'), request)).toEqual({
      status: 409,
      body: { error: { code: 'conflict', message: 'busy right now' } },
      kind: 'refusal',
    });
  });

  it('answers 503 database_unavailable for an unreachable database, or an error it caused', () => {
    for (const err of [refused, new Error('could not list', { cause: refused })]) {
      expect(errorResponse(err, request)).toEqual({
        status: 503,
        body: { error: { code: 'database_unavailable', message: 'the database cannot be reached right now; try again shortly' } },
        kind: 'database_unavailable',
      });
    }
  });

  it('answers 500 internal naming the request, never the error itself', () => {
    for (const err of [new Error('relation "call_syncs" does not exist'), 'a string', undefined]) {
      expect(errorResponse(err, request)).toEqual({
        status: 500,
        body: { error: { code: 'internal', message: 'internal error; see the server log for request req-7' } },
        kind: 'internal',
      });
    }
  });
});
