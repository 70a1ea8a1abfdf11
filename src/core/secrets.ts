import { createHmac, hash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time string comparison. Both sides are hashed first so the
 * comparison takes the same time whatever the lengths: a length mismatch must
 * not answer faster than a wrong last character.
 */
export function safeEqual(given: string | undefined | null, expected: string): boolean {
  if (given === undefined || given === null) return false;
  return timingSafeEqual(sha256(given), sha256(expected));
}

/**
 * safeEqual against a secret from the configuration (a webhook credential):
 * its digest is computed once, since it is checked on every webhook. Only
 * for those few fixed values: per-session tokens would churn the cache.
 */
export function matchesConfiguredSecret(given: string | undefined | null, secret: string): boolean {
  if (given === undefined || given === null) return false;
  return timingSafeEqual(sha256(given), configuredDigest(secret));
}

/**
 * crypto.hash is the one-shot form: for the short texts hashed on every
 * webhook (credentials, bodies) it costs a third of createHash's object.
 */
function sha256(text: string): Buffer {
  return Buffer.from(hash('sha256', text, 'hex'), 'hex');
}

/** The digests of the configured secrets, computed once (they are few and fixed). */
const configuredDigests = new Map<string, Buffer>();
function configuredDigest(secret: string): Buffer {
  let digest = configuredDigests.get(secret);
  if (!digest) {
    if (configuredDigests.size > 64) configuredDigests.clear();
    digest = sha256(secret);
    configuredDigests.set(secret, digest);
  }
  return digest;
}

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

export function hmacSha256Hex(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}
