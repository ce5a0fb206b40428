/**
 * Activity tasks: their queues, long polls, tokens and clocks, and the SendTask* rules.
 *
 * - A task is SCHEDULED when enqueued, STARTED when a GetActivityTask receives it, then SUCCEEDED,
 *   FAILED or TIMED_OUT. Closed tasks answer every SendTask* with TaskTimedOut.
 * - `timeoutSeconds` runs from the moment the task is enqueued (a task nobody picks up times out too),
 *   `heartbeatSeconds` from the hand-out, restarting with each heartbeat, as a Task state's
 *   TimeoutSeconds and HeartbeatSeconds do.
 * - A task goes to the longest-waiting poll. Like AWS, the emulator may hand it to a poll whose client
 *   has already gone away; the task is then lost until a clock closes it. This is on by default
 *   because a poller that aborts its polls must see, in tests, what it would cost in production.
 */
import { randomUUID } from "node:crypto";
import { AWS_LIMITS } from "../api/defaults.ts";
import { taskIdOf } from "../api/task-id.ts";
import { AwsError, validationError } from "./errors.ts";
import { isWellFormedToken, newTaskToken } from "./tokens.ts";
import type { ActivityTaskCounts, TaskFilter, TaskRecord, TaskStatus } from "./types.ts";
import { CLOSED_STATUSES, TASK_STATUSES } from "./types.ts";
import { type Waiter, WaiterQueues } from "./waiters.ts";

/** Settings of the task board. */
export interface TaskBoardOptions {
  /** How long a GetActivityTask waits for a task before answering empty, in ms. */
  longPollMs: number;
  /** Waiting polls allowed per activity before ActivityWorkerLimitExceeded. */
  maxPollersPerActivity: number;
  /** Whether a poll whose client went away can still receive a task (as at AWS). */
  handToDisconnectedPollers: boolean;
  /** Closed tasks remembered (for TaskTimedOut answers and the side API); the oldest are forgotten. */
  retainClosedTasks: number;
}

/** What GetActivityTask hands out. */
export interface HandOut {
  taskToken: string;
  input: string;
}

/** What a new task is made of. */
export interface NewTask {
  activityArn: string;
  /** JSON text. */
  input: string;
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
}

interface Task {
  readonly id: string;
  readonly activityArn: string;
  readonly token: string;
  /** The poller's id of the task (its `taskId` log field and `step-func-task-id` header). */
  readonly stepFuncTaskId: string;
  readonly input: string;
  readonly heartbeatSeconds: number | undefined;
  readonly timeoutSeconds: number | undefined;
  readonly scheduledAt: Date;
  status: TaskStatus;
  output?: string;
  error?: string;
  cause?: string;
  workerName?: string;
  heartbeats: number;
  startedAt?: Date;
  lastHeartbeatAt?: Date;
  closedAt?: Date;
  heartbeatTimer?: NodeJS.Timeout;
  timeoutTimer?: NodeJS.Timeout;
}

const GONE_MESSAGE = "Provided task does not exist anymore";
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Every task of the emulator. */
export class TaskBoard {
  readonly #options: TaskBoardOptions;
  readonly #tasks = new Map<string, Task>();
  readonly #byToken = new Map<string, Task>();
  /** SCHEDULED tasks per activity ARN, oldest first. */
  readonly #queues = new Map<string, Task[]>();
  readonly #waiters = new WaiterQueues<Task>();
  /** Ids of closed tasks, oldest first (a Set keeps insertion order). */
  readonly #closed = new Set<string>();
  /** Tasks closed per activity ARN since the last clear, forgotten ones included. */
  readonly #closedCounts = new Map<string, number>();
  #lostToDisconnectedPollers = 0;

  constructor(options: TaskBoardOptions) {
    this.#options = options;
  }

  /** Schedule a task; it goes to a waiting poll at once if there is one. */
  enqueue(spec: NewTask): TaskRecord {
    const token = newTaskToken();
    const task: Task = {
      id: randomUUID(),
      activityArn: spec.activityArn,
      token,
      stepFuncTaskId: taskIdOf(token),
      input: spec.input,
      heartbeatSeconds: spec.heartbeatSeconds,
      timeoutSeconds: spec.timeoutSeconds,
      scheduledAt: new Date(),
      status: "SCHEDULED",
      heartbeats: 0,
    };
    this.#tasks.set(task.id, task);
    this.#byToken.set(task.token, task);
    if (task.timeoutSeconds !== undefined) {
      const seconds = task.timeoutSeconds;
      task.timeoutTimer = startClock(seconds, () =>
        this.#timeOut(task, `The task was not closed within its TimeoutSeconds (${seconds} s)`),
      );
    }
    const waiter = this.#waiters.handOut(task.activityArn, task, !this.#options.handToDisconnectedPollers);
    if (waiter) this.#start(task, waiter);
    else this.#queueOf(task.activityArn).push(task);
    return toRecord(task);
  }

  /**
   * GetActivityTask on an existing activity: a queued task at once, else a long poll that ends with a
   * task or, after the long-poll window, undefined. `clientGone` fires when the poll's client leaves.
   */
  async poll(
    activityArn: string,
    workerName: string | undefined,
    clientGone?: AbortSignal,
  ): Promise<HandOut | undefined> {
    const gone = clientGone?.aborted ?? false;
    if (gone && !this.#options.handToDisconnectedPollers) return undefined;
    const queued = this.#queues.get(activityArn)?.shift();
    if (queued) {
      this.#start(queued, { workerName, disconnected: gone });
      return { taskToken: queued.token, input: queued.input };
    }
    if (this.#waiters.count(activityArn) >= this.#options.maxPollersPerActivity) {
      throw new AwsError(
        "ActivityWorkerLimitExceeded",
        `The maximum number of workers (${this.#options.maxPollersPerActivity}) polling this activity concurrently has been reached`,
      );
    }
    const waiter = this.#waiters.add(activityArn, workerName, this.#options.longPollMs);
    const onGone = (): void => {
      waiter.disconnected = true;
      if (!this.#options.handToDisconnectedPollers) this.#waiters.cancel(waiter);
    };
    if (gone) onGone();
    else clientGone?.addEventListener("abort", onGone, { once: true });
    const task = await waiter.result;
    clientGone?.removeEventListener("abort", onGone);
    return task ? { taskToken: task.token, input: task.input } : undefined;
  }

  /** SendTaskSuccess: `output` must be JSON text within AWS's size limit. */
  succeed(token: string, output: string): void {
    if (Buffer.byteLength(output, "utf8") > AWS_LIMITS.outputBytes) {
      throw validationError(
        "output",
        `Member must have length less than or equal to ${AWS_LIMITS.outputBytes}`,
      );
    }
    checkTokenFormat(token);
    if (!isJson(output)) throw new AwsError("InvalidOutput", "Invalid Output: 'output' is not valid JSON");
    const task = this.#openTask(token);
    this.#close(task, "SUCCEEDED", { output });
  }

  /** SendTaskFailure. */
  fail(token: string, error: string | undefined, cause: string | undefined): void {
    checkTokenFormat(token);
    const task = this.#openTask(token);
    this.#close(task, "FAILED", { error, cause });
  }

  /** SendTaskHeartbeat: restarts the task's heartbeat clock. */
  heartbeat(token: string): void {
    checkTokenFormat(token);
    const task = this.#openTask(token);
    task.heartbeats += 1;
    task.lastHeartbeatAt = new Date();
    this.#startHeartbeatClock(task);
  }

  /** A task by id, undefined when unknown. */
  get(taskId: string): TaskRecord | undefined {
    const task = this.#tasks.get(taskId);
    return task ? toRecord(task) : undefined;
  }

  /** Tasks matching the filter, oldest first. */
  list(filter: TaskFilter = {}): TaskRecord[] {
    const records: TaskRecord[] = [];
    for (const task of this.#tasks.values()) {
      if (filter.activityArn !== undefined && task.activityArn !== filter.activityArn) continue;
      if (filter.status !== undefined && task.status !== filter.status) continue;
      if (filter.stepFuncTaskId !== undefined && task.stepFuncTaskId !== filter.stepFuncTaskId) continue;
      records.push(toRecord(task));
    }
    return records;
  }

  /** Tasks per status. */
  countByStatus(): Record<TaskStatus, number> {
    const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0])) as Record<
      TaskStatus,
      number
    >;
    for (const task of this.#tasks.values()) counts[task.status] += 1;
    return counts;
  }

  /** Per activity ARN: its queue's length and the tasks closed since the last clear. */
  activityCounts(): Record<string, ActivityTaskCounts> {
    const counts: Record<string, ActivityTaskCounts> = {};
    for (const [arn, queue] of this.#queues) counts[arn] = { scheduled: queue.length, closed: 0 };
    for (const [arn, closed] of this.#closedCounts) {
      counts[arn] = { scheduled: counts[arn]?.scheduled ?? 0, closed };
    }
    return counts;
  }

  /** Waiting polls per activity ARN. */
  waitingPollers(): Record<string, number> {
    return this.#waiters.counts();
  }

  /** Tasks handed to polls whose client had gone away. */
  get lostToDisconnectedPollers(): number {
    return this.#lostToDisconnectedPollers;
  }

  /** End the long polls of one activity with empty answers (it was deleted). */
  endPolls(activityArn: string): void {
    this.#waiters.endAll(activityArn);
  }

  /** End every long poll (empty answers) and stop every clock, keeping the records: closing time. */
  stop(): void {
    this.#waiters.endAll();
    for (const task of this.#tasks.values()) clearClocks(task);
  }

  /** Forget every task and end every long poll (empty answers); timers are cleared. */
  clear(): void {
    this.#waiters.endAll();
    for (const task of this.#tasks.values()) clearClocks(task);
    this.#tasks.clear();
    this.#byToken.clear();
    this.#queues.clear();
    this.#closed.clear();
    this.#closedCounts.clear();
    this.#lostToDisconnectedPollers = 0;
  }

  #queueOf(activityArn: string): Task[] {
    let queue = this.#queues.get(activityArn);
    if (!queue) {
      queue = [];
      this.#queues.set(activityArn, queue);
    }
    return queue;
  }

  #start(task: Task, poll: Pick<Waiter<Task>, "workerName" | "disconnected">): void {
    task.status = "STARTED";
    task.startedAt = new Date();
    if (poll.workerName !== undefined) task.workerName = poll.workerName;
    if (poll.disconnected) this.#lostToDisconnectedPollers += 1;
    this.#startHeartbeatClock(task);
  }

  #startHeartbeatClock(task: Task): void {
    if (task.heartbeatSeconds === undefined) return;
    clearTimeout(task.heartbeatTimer);
    const seconds = task.heartbeatSeconds;
    task.heartbeatTimer = startClock(seconds, () =>
      this.#timeOut(task, `No heartbeat was received within HeartbeatSeconds (${seconds} s)`),
    );
  }

  /** The STARTED task of a well-formed token, or TaskDoesNotExist / TaskTimedOut. */
  #openTask(token: string): Task {
    const task = this.#byToken.get(token);
    if (!task) throw new AwsError("TaskDoesNotExist", "Task Does Not Exist: 'Provided task does not exist'");
    // A SCHEDULED task's token has not been handed out; only a guess could find it.
    if (task.status !== "STARTED") throw new AwsError("TaskTimedOut", GONE_MESSAGE);
    return task;
  }

  #timeOut(task: Task, cause: string): void {
    if (CLOSED_STATUSES.includes(task.status)) return;
    if (task.status === "SCHEDULED") {
      const queue = this.#queues.get(task.activityArn);
      const index = queue?.indexOf(task) ?? -1;
      if (queue && index >= 0) queue.splice(index, 1);
    }
    this.#close(task, "TIMED_OUT", { error: "States.Timeout", cause });
  }

  #close(task: Task, status: TaskStatus, fields: { output?: string; error?: string; cause?: string }): void {
    clearClocks(task);
    task.status = status;
    task.closedAt = new Date();
    if (fields.output !== undefined) task.output = fields.output;
    if (fields.error !== undefined) task.error = fields.error;
    if (fields.cause !== undefined) task.cause = fields.cause;
    this.#closed.add(task.id);
    this.#closedCounts.set(task.activityArn, (this.#closedCounts.get(task.activityArn) ?? 0) + 1);
    // Forget the oldest closed tasks so that a long-running emulator (demo, bench) stays small.
    while (this.#closed.size > this.#options.retainClosedTasks) {
      const oldest = this.#closed.values().next().value;
      if (oldest === undefined) break;
      this.#closed.delete(oldest);
      const forgotten = this.#tasks.get(oldest);
      this.#tasks.delete(oldest);
      if (forgotten) this.#byToken.delete(forgotten.token);
    }
  }
}

/** InvalidToken for anything the emulator could not have handed out. */
function checkTokenFormat(token: string): void {
  if (token.length > AWS_LIMITS.taskTokenLength || !isWellFormedToken(token)) {
    throw new AwsError("InvalidToken", "Invalid Token: 'Invalid token'");
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A timer of `seconds`, or none when that is beyond what setTimeout can wait (24.8 days; Node would
 * fire it at once): such a clock never runs out in an emulator's lifetime anyway.
 */
function startClock(seconds: number, onExpiry: () => void): NodeJS.Timeout | undefined {
  const ms = seconds * 1000;
  return ms <= MAX_TIMER_MS ? setTimeout(onExpiry, ms) : undefined;
}

function clearClocks(task: Task): void {
  clearTimeout(task.heartbeatTimer);
  clearTimeout(task.timeoutTimer);
  task.heartbeatTimer = undefined;
  task.timeoutTimer = undefined;
}

function toRecord(task: Task): TaskRecord {
  const record: TaskRecord = {
    taskId: task.id,
    stepFuncTaskId: task.stepFuncTaskId,
    activityArn: task.activityArn,
    status: task.status,
    input: task.input,
    heartbeats: task.heartbeats,
    scheduledAt: task.scheduledAt.toISOString(),
  };
  if (task.output !== undefined) record.output = task.output;
  if (task.error !== undefined) record.error = task.error;
  if (task.cause !== undefined) record.cause = task.cause;
  if (task.workerName !== undefined) record.workerName = task.workerName;
  if (task.heartbeatSeconds !== undefined) record.heartbeatSeconds = task.heartbeatSeconds;
  if (task.timeoutSeconds !== undefined) record.timeoutSeconds = task.timeoutSeconds;
  if (task.startedAt) record.startedAt = task.startedAt.toISOString();
  if (task.lastHeartbeatAt) record.lastHeartbeatAt = task.lastHeartbeatAt.toISOString();
  if (task.closedAt) record.closedAt = task.closedAt.toISOString();
  return record;
}
