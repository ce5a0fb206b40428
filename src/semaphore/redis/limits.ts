/**
 * The Redis command timeout and the lease TTL bounds that depend on it, in one place so that they
 * cannot drift apart: connection.ts uses the timeout, the semaphore and the configuration the bounds.
 */
import { formatDuration, parseDuration } from "../../api/duration.ts";

/** How long one Redis command may take before the client gives up on it (the script may still run). */
export const COMMAND_TIMEOUT_MS = 2_000;

/**
 * The shortest lease TTL: 3 x the command timeout. Leases are refreshed every TTL/3: each tick of the
 * refresh timer writes the REFRESH at once, before anything else it sends and without waiting for
 * anything still in flight (an earlier refresh, or the pending releases, which it resends after the
 * REFRESH: redis-semaphore.ts `#refresh`). A refresh sent at `t` sets the expiry to at least
 * `t + TTL` (the script runs no earlier than it was sent). If the next refresh (at `t + TTL/3`) is
 * lost entirely, the one after it is sent at `t + 2TTL/3` and, answered within the command timeout,
 * has run by `t + 2TTL/3 + timeout`; that is before the lease expires when `timeout <= TTL/3`. Any
 * shorter TTL lets one slow refresh cost a running task its lease (and another process its permit:
 * the limit broken). Not counted: an event loop blocked for longer than that (timers fire late),
 * and a Redis that answers nothing within the timeout for a whole TTL (the process then fails closed:
 * its leases are unconfirmed, and may have expired).
 */
export const MIN_LEASE_TTL_MS = 3 * COMMAND_TIMEOUT_MS;

/** The longest lease TTL: a crashed process's permits stay taken this long. */
export const MAX_LEASE_TTL_MS = 10 * 60_000;

/** Why `ms` is not an allowed lease TTL (`shown` is how the value was given), or undefined. */
export function leaseTtlProblem(ms: number, shown: string): string | undefined {
  if (Number.isSafeInteger(ms) && ms >= MIN_LEASE_TTL_MS && ms <= MAX_LEASE_TTL_MS) return undefined;
  return `must be from ${formatDuration(MIN_LEASE_TTL_MS)} to ${formatDuration(MAX_LEASE_TTL_MS)}, got ${shown}`;
}

/** The lease TTL in ms from `SFN_REDIS_LEASE_TTL`'s text, or the problem with it (for a ConfigError). */
export function leaseTtlFromText(text: string): { ms: number } | { problem: string } {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    return { problem: error instanceof Error ? error.message : String(error) };
  }
  const problem = leaseTtlProblem(ms, JSON.stringify(text));
  return problem === undefined ? { ms } : { problem };
}
