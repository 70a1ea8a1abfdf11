import type { IncomingMessage } from 'node:http';
import { AppError } from '../core/errors';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads the request body, refusing more than `maxBytes` without reading
 * further: a declared Content-Length over the limit is refused before a byte
 * is read, and a chunked body is cut off as soon as it passes the limit.
 * Returns the exact text (a BOM is kept; invalid UTF-8 is refused).
 *
 * Under @hono/node-server the body is read from Node's request stream
 * itself (`incoming`): the Buffer Node hands over is decoded as it is,
 * without the ArrayBuffer copy a Web Request's arrayBuffer() makes. Tests'
 * app.request() (no Node stream) read the Web Request.
 */
export async function readBodyText(request: Request, maxBytes: number, incoming?: IncomingMessage): Promise<string> {
  const nodeStream = incoming?.headers && typeof incoming.on === 'function' && !incoming.readableDidRead ? incoming : undefined;
  const declared = nodeStream ? (nodeStream.headers['content-length'] ?? null) : request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  let bytes: Uint8Array;
  try {
    if (nodeStream) {
      bytes = await readIncoming(nodeStream, maxBytes);
    } else if (declared !== null) {
      bytes = new Uint8Array(await request.arrayBuffer());
      if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
    } else {
      bytes = await readLimited(request, maxBytes);
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    // The client went away mid-body (or sent a broken chunked encoding):
    // its request, not a fault of ours.
    throw new AppError('bad_request', 'the request body could not be read to its end (the client closed the connection?)', { cause: err });
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new AppError('bad_request', 'the body is not valid UTF-8 text');
  }
}

/**
 * Node's request stream to its end, at most `maxBytes`. Past the limit it
 * stops listening and pauses the stream: @hono/node-server drains or drops
 * what is left once the 413 is sent (with Connection: close).
 */
function readIncoming(incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > maxBytes) {
        cleanup();
        incoming.pause();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      if (incoming.readableEnded) return onEnd();
      cleanup();
      reject(new Error('the client closed the connection before the body ended'));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

async function readLimited(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function tooLarge(maxBytes: number): AppError {
  return new AppError('payload_too_large', `the body is larger than the ${maxBytes}-byte limit (MAX_BODY_BYTES)`);
}

export type ParsedBody = { ok: true; json: Record<string, unknown> } | { ok: false; error: AppError };

/**
 * Deeper than any webhook needs, shallow enough for every database: past a
 * few thousand levels Postgres refuses the jsonb ("stack depth limit
 * exceeded") and embedded PGlite fails outright.
 */
export const MAX_JSON_DEPTH = 512;

/** Whether JSON text nests objects/arrays deeper than `max` (one linear pass, strings skipped). */
export function nestsDeeperThan(text: string, max: number): boolean {
  // Nesting needs an opening bracket per level: a body with no more than
  // `max` of them (every webhook) is settled by a few native searches.
  if (openingBracketsAtMost(text, max)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c /* \\ */) i += 1;
      else if (ch === 0x22 /* " */) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      depth += 1;
      if (depth > max) return true;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      depth -= 1;
    }
  }
  return false;
}

function openingBracketsAtMost(text: string, max: number): boolean {
  let count = 0;
  for (const bracket of ['{', '[']) {
    for (let at = text.indexOf(bracket); at !== -1; at = text.indexOf(bracket, at + 1)) {
      count += 1;
      if (count > max) return false;
    }
  }
  return true;
}

/** Parses a webhook body, which must be a JSON object. */
export function parseJsonObject(text: string): ParsedBody {
  // A UTF-8 BOM is harmless to a vendor and fatal to JSON.parse; the raw body keeps it.
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (source.trim() === '') return { ok: false, error: new AppError('not_json_object', 'the body is empty; expected a JSON object') };
  if (nestsDeeperThan(source, MAX_JSON_DEPTH)) {
    return { ok: false, error: new AppError('bad_request', `the body nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels`) };
  }
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    const detail = err instanceof SyntaxError ? err.message : 'invalid JSON';
    return { ok: false, error: new AppError('invalid_json', `the body is not valid JSON: ${detail}`) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return { ok: false, error: new AppError('not_json_object', `the body must be a JSON object, got ${kind}`) };
  }
  return { ok: true, json: value as Record<string, unknown> };
}
