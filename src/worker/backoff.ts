/**
 * Durable retry schedule: exponential, capped, with "equal jitter" (half
 * fixed, half random), so many calls failing together (a CRM outage) do not
 * come back together and knock the CRM over again, while each still waits at
 * least half its nominal delay.
 *
 * `attempt` is the number of attempts made so far (1 after the first failure).
 * A Retry-After or quota reset later than the computed time wins.
 */
export function nextAttemptAt(options: {
  now: Date;
  attempt: number;
  baseMs: number;
  maxMs: number;
  retryAt?: Date | undefined;
  random?: () => number;
}): Date {
  const random = options.random ?? Math.random;
  const nominal = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, options.attempt - 1));
  const delay = nominal / 2 + (random() * nominal) / 2;
  const computed = options.now.getTime() + Math.round(delay);
  const floor = options.retryAt?.getTime() ?? 0;
  return new Date(Math.max(computed, floor));
}
