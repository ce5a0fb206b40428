/**
 * Everything the emulator knows, without HTTP: the activity registry, the task board, the fault
 * rules and the counters. The AWS actions and the side API are thin layers over it, and in-process
 * tests may drive it directly (`RunningEmulator.state`).
 */
import { AWS_LIMITS } from "../api/defaults.ts";
import { ActivityRegistry } from "./activities.ts";
import { FaultInjector } from "./faults.ts";
import { TaskBoard } from "./tasks.ts";
import type {
  EmulatorStats,
  EnqueueRequest,
  EnqueueResult,
  FaultRule,
  TaskFilter,
  TaskRecord,
} from "./types.ts";

/** Settings of the emulator's state (see `EmulatorOptions` for their meaning and defaults). */
export interface CoreOptions {
  region: string;
  accountId: string;
  longPollSeconds: number;
  maxPollersPerActivity: number;
  handToDisconnectedPollers: boolean;
  retainClosedTasks: number;
  random: () => number;
}

/** A side API request that cannot be served; `status` is the HTTP status to answer with. */
export class SideApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = "SideApiError";
    this.status = status;
  }
}

/** Most tasks one `POST /_emulator/tasks` may create: enough for benchmarks, bounded for memory. */
export const MAX_ENQUEUE_COUNT = 100_000;

/** The emulator's state. */
export class EmulatorCore {
  readonly activities: ActivityRegistry;
  readonly tasks: TaskBoard;
  readonly faults: FaultInjector;
  #requests: Record<string, number> = {};
  #errors: Record<string, number> = {};

  constructor(options: CoreOptions) {
    this.activities = new ActivityRegistry(options.region, options.accountId);
    this.tasks = new TaskBoard({
      longPollMs: options.longPollSeconds * 1000,
      maxPollersPerActivity: options.maxPollersPerActivity,
      handToDisconnectedPollers: options.handToDisconnectedPollers,
      retainClosedTasks: options.retainClosedTasks,
    });
    this.faults = new FaultInjector(options.random);
  }

  /** Count one AWS API request. */
  countRequest(action: string): void {
    this.#requests[action] = (this.#requests[action] ?? 0) + 1;
  }

  /** Count one AWS error answer. */
  countError(code: string): void {
    this.#errors[code] = (this.#errors[code] ?? 0) + 1;
  }

  /**
   * Enqueue tasks as a state machine's Activity task state would schedule them. The activity is
   * created when named and missing; an ARN must name an existing activity.
   */
  enqueue(request: EnqueueRequest): EnqueueResult {
    const activityArn = this.#resolveActivity(request);
    const input = normalizeInput(request.input);
    const count = request.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > MAX_ENQUEUE_COUNT) {
      throw new SideApiError(400, `count must be an integer from 1 to ${MAX_ENQUEUE_COUNT}`);
    }
    for (const field of ["heartbeatSeconds", "timeoutSeconds"] as const) {
      const value = request[field];
      if (value !== undefined && !(typeof value === "number" && value > 0 && Number.isFinite(value))) {
        throw new SideApiError(400, `${field} must be a positive number of seconds`);
      }
    }
    const tasks: { taskId: string }[] = [];
    for (let i = 0; i < count; i += 1) {
      const record = this.tasks.enqueue({
        activityArn,
        input,
        ...(request.heartbeatSeconds !== undefined ? { heartbeatSeconds: request.heartbeatSeconds } : {}),
        ...(request.timeoutSeconds !== undefined ? { timeoutSeconds: request.timeoutSeconds } : {}),
      });
      tasks.push({ taskId: record.taskId });
    }
    return { activityArn, tasks };
  }

  /** A task by id, or a 404. */
  getTask(taskId: string): TaskRecord {
    const task = this.tasks.get(taskId);
    if (!task) throw new SideApiError(404, `No task ${taskId}`);
    return task;
  }

  listTasks(filter: TaskFilter = {}): TaskRecord[] {
    return this.tasks.list(filter);
  }

  setFaults(rules: readonly FaultRule[]): void {
    this.faults.setRules(rules);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  stats(): EmulatorStats {
    return {
      requests: { ...this.#requests },
      errors: { ...this.#errors },
      faults: this.faults.counts(),
      waitingPollers: this.tasks.waitingPollers(),
      tasks: this.tasks.countByStatus(),
      activityTasks: this.tasks.activityCounts(),
      tasksLostToDisconnectedPollers: this.tasks.lostToDisconnectedPollers,
      activities: this.activities.all().length,
    };
  }

  /**
   * Back to a fresh start: tasks, fault rules and counters are dropped, waiting polls answered empty;
   * activities too unless `keepActivities` (for tests that keep a poller running across cases).
   */
  reset(options: { keepActivities?: boolean } = {}): void {
    this.tasks.clear();
    if (!options.keepActivities) this.activities.clear();
    this.faults.clear();
    this.faults.resetCounts();
    this.#requests = {};
    this.#errors = {};
  }

  /** End every long poll and clock (the server is closing); the records stay readable. */
  close(): void {
    this.tasks.stop();
    this.faults.clear();
  }

  #resolveActivity(request: EnqueueRequest): string {
    const { activityName, activityArn } = request;
    if ((activityName === undefined) === (activityArn === undefined)) {
      throw new SideApiError(400, "give exactly one of activityName and activityArn");
    }
    try {
      if (activityName !== undefined) return this.activities.create(activityName).arn;
      const activity = this.activities.find(activityArn ?? "");
      if (!activity) throw new SideApiError(404, `No activity ${activityArn}`);
      return activity.arn;
    } catch (error) {
      if (error instanceof SideApiError) throw error;
      throw new SideApiError(400, error instanceof Error ? error.message : String(error));
    }
  }
}

/** The task input as JSON text: strings are taken as JSON text already, other values serialized. */
function normalizeInput(input: unknown): string {
  let text: string;
  if (input === undefined) text = "{}";
  else if (typeof input === "string") {
    try {
      JSON.parse(input);
    } catch {
      throw new SideApiError(
        400,
        "input is a string but not JSON text (send a JSON value, or quote the string)",
      );
    }
    text = input;
  } else text = JSON.stringify(input);
  if (Buffer.byteLength(text, "utf8") > AWS_LIMITS.outputBytes) {
    throw new SideApiError(400, `input exceeds ${AWS_LIMITS.outputBytes} bytes`);
  }
  return text;
}
