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

/**
 * `{<prefix>:<arn>}`: the hash tag every key of one activity starts with, so that Redis Cluster keeps
 * them in one slot (the semaphore's scripts and deleteSourceState touch several at once).
 */
export function activityHashTag(activityArn: string, prefix = "sfn-operator"): string {
  // `{` and `}` would end the hash tag early; ARNs cannot contain them, but be safe.
  const id = activityArn.replace(/[{}]/g, "_");
  return `{${prefix}:${id}}`;
}

export function semaphoreKeys(activityArn: string, prefix = "sfn-operator"): SemaphoreKeys {
  const tag = activityHashTag(activityArn, prefix);
  return {
    holders: `${tag}:holders`,
    released: `${tag}:released`,
    waiting: `${tag}:waiting`,
    queue: `${tag}:queue`,
    epoch: `${tag}:epoch`,
  };
}

/**
 * Redis names of what the operator and the pollers share about one activity besides the semaphore
 * (source-state.ts): the live limit and the task figures. Same hash tag, so same slot.
 */
export interface SourceStateKeys {
  /** String: the limit (maxConcurrency) as a decimal integer, written by the operator, no TTL. */
  limit: string;
  /** Pub/sub channel: a change of `limit` (the message is the new value, "" when deleted). */
  limitChanged: string;
  /**
   * Hash of task totals, no TTL: `succeeded`, `failed`, `gone`, `unreported` (counts, by the
   * outcome labels of sfn_operator_tasks_total) and `last` (server ms of the latest recorded task end).
   */
  tasks: string;
  /** Sorted set of the processes reporting tasks in flight, score = expiry of their report (server ms). */
  reporters: string;
  /** Hash: reporting process -> its tasks in flight; read only for processes live in `reporters`. */
  inFlight: string;
}

export function sourceStateKeys(activityArn: string, prefix = "sfn-operator"): SourceStateKeys {
  const tag = activityHashTag(activityArn, prefix);
  return {
    limit: `${tag}:limit`,
    limitChanged: `${tag}:limit-changed`,
    tasks: `${tag}:tasks`,
    reporters: `${tag}:reporters`,
    inFlight: `${tag}:in-flight`,
  };
}

/** Every key (not channel) Redis may hold for one activity: the semaphore's and the source state's. */
export function allActivityKeys(activityArn: string, prefix = "sfn-operator"): string[] {
  const semaphore = semaphoreKeys(activityArn, prefix);
  const state = sourceStateKeys(activityArn, prefix);
  return [
    semaphore.holders,
    semaphore.waiting,
    semaphore.queue,
    semaphore.epoch,
    state.limit,
    state.tasks,
    state.reporters,
    state.inFlight,
  ];
}
