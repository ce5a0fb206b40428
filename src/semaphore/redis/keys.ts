/**
 * Redis names of one source's semaphore. The `{...}` hash tag puts all of them in one Redis Cluster
 * slot, which a multi-key script needs; the activity ARN identifies the semaphore, since every
 * poller of an activity must share one limit whatever source object or process they come from.
 */
export interface SemaphoreKeys {
  /** Sorted set of leases. */
  holders: string;
  /** Pub/sub channel announcing releases. */
  released: string;
  /**
   * Sorted set of the processes waiting for a permit (score = expiry, server ms): tells a process
   * that passes permits among its own loops when another one is waiting for its turn.
   */
  waiting: string;
  /**
   * Sorted set of the same waiting processes in the order of their turns (score = server ms at which
   * the process joined the line: its first refused acquisition, or its last grant or turn, which send
   * it to the back). A release wakes the process at its head.
   */
  queue: string;
  /**
   * Hash `{since, until}` (server ms), without a TTL: its absence tells the scripts that Redis has no
   * record of this semaphore (it is new, or Redis lost its data), which opens a window without new
   * grants while running tasks re-register their leases (scripts.ts).
   */
  epoch: string;
}

export function semaphoreKeys(activityArn: string, prefix = "sfn-operator"): SemaphoreKeys {
  // `{` and `}` would end the hash tag early; ARNs cannot contain them, but be safe.
  const id = activityArn.replace(/[{}]/g, "_");
  const tag = `{${prefix}:${id}}`;
  return {
    holders: `${tag}:holders`,
    released: `${tag}:released`,
    waiting: `${tag}:waiting`,
    queue: `${tag}:queue`,
    epoch: `${tag}:epoch`,
  };
}
