/**
 * A typed client of the emulator's side API (global fetch), for tests, the demo and benchmarks that
 * talk to an emulator in another process as well as in their own.
 */
import type {
  EmulatorStats,
  EnqueueRequest,
  EnqueueResult,
  FaultRule,
  TaskFilter,
  TaskRecord,
  TaskStatus,
} from "./types.ts";
import { CLOSED_STATUSES } from "./types.ts";

/** What `waitForTasks` waits for: a predicate over all tasks, or a number of closed ones. */
export type TaskCondition =
  | ((tasks: TaskRecord[]) => boolean)
  | { closedCount: number; activityArn?: string };

/** A failed side API call. */
export class EmulatorClientError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = "EmulatorClientError";
    this.status = status;
  }
}

const WAIT_INTERVAL_MS = 50;

/** The side API of one emulator. */
export class EmulatorClient {
  readonly baseUrl: string;

  /** `baseUrl`: the emulator's URL, e.g. `RunningEmulator.url`. */
  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  /** Schedule tasks (creates the activity when given by name and missing). */
  enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    return this.#call("POST", "/tasks", request);
  }

  /** One task's record. */
  getTask(taskId: string): Promise<TaskRecord> {
    return this.#call("GET", `/tasks/${encodeURIComponent(taskId)}`);
  }

  /** Tasks, oldest first, optionally filtered by activity and status. */
  async listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    const query = new URLSearchParams();
    if (filter.activityArn) query.set("activityArn", filter.activityArn);
    if (filter.status) query.set("status", filter.status);
    if (filter.stepFuncTaskId) query.set("stepFuncTaskId", filter.stepFuncTaskId);
    const suffix = query.size > 0 ? `?${query}` : "";
    const result = await this.#call<{ tasks: TaskRecord[] }>("GET", `/tasks${suffix}`);
    return result.tasks;
  }

  stats(): Promise<EmulatorStats> {
    return this.#call("GET", "/stats");
  }

  /** The fault rules in force, with their remaining counts. */
  async faults(): Promise<FaultRule[]> {
    return (await this.#call<{ rules: FaultRule[] }>("GET", "/faults")).rules;
  }

  /** Replace the fault rules. */
  async setFaults(rules: FaultRule[]): Promise<FaultRule[]> {
    return (await this.#call<{ rules: FaultRule[] }>("PUT", "/faults", { rules })).rules;
  }

  async clearFaults(): Promise<void> {
    await this.#call("DELETE", "/faults");
  }

  /** Drop tasks, fault rules and counters (and activities unless `keepActivities`). */
  async reset(options: { keepActivities?: boolean } = {}): Promise<void> {
    await this.#call("POST", "/reset", options);
  }

  /**
   * Poll every ~50 ms until the condition holds; resolves to the (filtered) task list then. Throws
   * after `timeoutMs` with the tasks' statuses, so that a failing test says how far it got.
   */
  async waitForTasks(condition: TaskCondition, timeoutMs = 10_000): Promise<TaskRecord[]> {
    const deadline = Date.now() + timeoutMs;
    if (typeof condition !== "function" && !condition.activityArn) {
      // A closed count over all activities is read from the stats: cheap even with many tasks.
      while (Date.now() < deadline && closedIn((await this.stats()).tasks) < condition.closedCount) {
        await pause(WAIT_INTERVAL_MS);
      }
    }
    const filter: TaskFilter =
      typeof condition === "function" || !condition.activityArn ? {} : { activityArn: condition.activityArn };
    const holds =
      typeof condition === "function"
        ? condition
        : (tasks: TaskRecord[]) =>
            tasks.filter((task) => CLOSED_STATUSES.includes(task.status)).length >= condition.closedCount;
    for (;;) {
      const tasks = await this.listTasks(filter);
      if (holds(tasks)) return tasks;
      if (Date.now() >= deadline) {
        const wanted =
          typeof condition === "function" ? "the condition" : `${condition.closedCount} closed tasks`;
        throw new Error(
          `waitForTasks: no ${wanted} after ${timeoutMs} ms; tasks by status: ${summarize(tasks)}`,
        );
      }
      await pause(WAIT_INTERVAL_MS);
    }
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.baseUrl}/_emulator${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const message = (parsed as { error?: unknown } | undefined)?.error;
      throw new EmulatorClientError(
        response.status,
        `${method} /_emulator${path}: ${response.status} ${typeof message === "string" ? message : text.slice(0, 200)}`,
      );
    }
    return parsed as T;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closedIn(byStatus: Record<TaskStatus, number>): number {
  return CLOSED_STATUSES.reduce((sum, status) => sum + byStatus[status], 0);
}

function summarize(tasks: TaskRecord[]): string {
  const counts = new Map<TaskStatus, number>();
  for (const task of tasks) counts.set(task.status, (counts.get(task.status) ?? 0) + 1);
  return counts.size === 0 ? "none" : [...counts].map(([status, n]) => `${status}=${n}`).join(", ");
}
