/**
 * The shapes the emulator's side API (`/_emulator/...`) speaks, shared by the server and by
 * `EmulatorClient`. Plain JSON: times are ISO strings, payloads are JSON text exactly as sent.
 */

/** Life cycle of an activity task, as a state machine's execution history would show it. */
export type TaskStatus = "SCHEDULED" | "STARTED" | "SUCCEEDED" | "FAILED" | "TIMED_OUT";

/** All statuses, in life-cycle order. */
export const TASK_STATUSES: readonly TaskStatus[] = [
  "SCHEDULED",
  "STARTED",
  "SUCCEEDED",
  "FAILED",
  "TIMED_OUT",
];

/** Statuses after which every SendTask* call answers TaskTimedOut. */
export const CLOSED_STATUSES: readonly TaskStatus[] = ["SUCCEEDED", "FAILED", "TIMED_OUT"];

/** One task as the side API shows it. The task token is never part of it. */
export interface TaskRecord {
  /** The emulator's own id of the task (side API paths). */
  taskId: string;
  /**
   * The id the poller derives from the task token (src/api/task-id.ts): its `taskId` log field and
   * the `step-func-task-id` header of the request to the target. Follows one task end to end.
   */
  stepFuncTaskId: string;
  activityArn: string;
  status: TaskStatus;
  /** The task input: JSON text, as GetActivityTask hands it out. */
  input: string;
  /** JSON text sent with SendTaskSuccess. */
  output?: string;
  /** From SendTaskFailure, or `States.Timeout` when a clock ran out. */
  error?: string;
  cause?: string;
  /** The workerName of the GetActivityTask call that received the task. */
  workerName?: string;
  /** SendTaskHeartbeat calls accepted for this task. */
  heartbeats: number;
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
  scheduledAt: string;
  startedAt?: string;
  lastHeartbeatAt?: string;
  closedAt?: string;
}

/** Body of `POST /_emulator/tasks`. */
export interface EnqueueRequest {
  /** The activity by name; created when missing. */
  activityName?: string;
  /** The activity by ARN; must exist. */
  activityArn?: string;
  /**
   * The task input: any JSON value, or a string holding JSON text (taken as is, so a JSON string
   * value must be sent quoted: `"\"hello\""`). Defaults to `{}`.
   */
  input?: unknown;
  /** Like a Task state's HeartbeatSeconds: clock starts at hand-out, restarts on each heartbeat. */
  heartbeatSeconds?: number;
  /** Like a Task state's TimeoutSeconds: clock starts when the task is enqueued. */
  timeoutSeconds?: number;
  /** How many identical tasks to enqueue (default 1). */
  count?: number;
}

/** Answer of `POST /_emulator/tasks`. */
export interface EnqueueResult {
  activityArn: string;
  tasks: { taskId: string }[];
}

/** Filter of `GET /_emulator/tasks`. */
export interface TaskFilter {
  activityArn?: string;
  status?: TaskStatus;
  /** The id a poller logs (`taskId`): finds the task a log line is about. */
  stepFuncTaskId?: string;
}

/**
 * A fault injection rule. Each AWS API request is checked against the rules in order; every rule
 * that matches it (by action, while it has requests `remaining`) counts it, adds its delay and may
 * fail it: throttling is rolled first, then the server error. The first failure decided wins.
 */
export interface FaultRule {
  /** AWS actions the rule applies to (e.g. `GetActivityTask`); all actions when absent. */
  actions?: string[];
  /** Share of matching requests answered 400 ThrottlingException, 0..1 (1 = every one). */
  throttleRate?: number;
  /** Share of matching requests answered with a server error, 0..1. */
  errorRate?: number;
  /** Status of those server errors: 500 InternalFailure (default) or 503 ServiceUnavailable. */
  errorStatus?: 500 | 503;
  /**
   * Share of matching requests answered 400 AccessDeniedException, 0..1: an IAM policy that does not
   * allow the action (tests of how callers report a refusal that retrying cannot heal).
   */
  accessDeniedRate?: number;
  /** Delay before the request is handled (or failed), in ms. */
  delayMs?: number;
  /** How many more requests the rule applies to; unlimited when absent. Spent rules are dropped. */
  remaining?: number;
}

/** Kinds of injected faults, as counted in the stats. */
export type FaultKind = "throttle" | "accessDenied" | "internalFailure" | "serviceUnavailable" | "delay";

/** One activity's task counts in the stats. */
export interface ActivityTaskCounts {
  /** SCHEDULED tasks: the activity's queue. */
  scheduled: number;
  /** Tasks closed (SUCCEEDED, FAILED or TIMED_OUT) since the last reset, forgotten ones included. */
  closed: number;
}

/** Answer of `GET /_emulator/stats`. */
export interface EmulatorStats {
  /** AWS API requests received per action (including failed and faulted ones). */
  requests: Record<string, number>;
  /** AWS error answers per error code (including injected ones). */
  errors: Record<string, number>;
  /** Injected faults per kind. */
  faults: Record<FaultKind, number>;
  /** Long polls waiting right now, per activity ARN (including ones whose client went away). */
  waitingPollers: Record<string, number>;
  /**
   * Tasks per status, over the tasks the emulator remembers (closed ones are forgotten beyond its
   * retention, oldest first).
   */
  tasks: Record<TaskStatus, number>;
  /**
   * Per activity ARN: tasks waiting to be handed out, and tasks closed since the last reset. The
   * closed count is kept apart from the task records, so it never drops when old ones are forgotten:
   * a benchmark or a long demo can take differences of it over any span.
   */
  activityTasks: Record<string, ActivityTaskCounts>;
  /** Tasks handed to a long poll whose client had already gone away (lost until their timeout). */
  tasksLostToDisconnectedPollers: number;
  activities: number;
}
