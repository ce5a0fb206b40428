/**
 * Runs one activity task from receipt to report: POST to the target while heartbeating, apply the
 * outcome rules, report to AWS. It never throws: whatever goes wrong inside becomes a reported failure
 * (or, when AWS no longer knows the task, a counted "gone"), so one bad task cannot take the process
 * down or leave an execution waiting.
 */
import { taskIdOf } from "../api/task-id.ts";
import type { PollerSettings } from "../api/types.ts";
import { errorCode } from "../aws/errors.ts";
import type { ActivityTask, ReportResult, StepFunctions } from "../aws/step-functions.ts";
import { describeError, type Logger, payloadLoggingEnabled } from "../observability/logger.ts";
import type { PollerMetrics, TaskOutcomeLabel } from "../observability/metrics.ts";
import { Abandonment, type HttpTarget } from "../target/http-target.ts";
import { decideOutcome, ERROR_NAMES, type TaskOutcome, truncateChars } from "../target/outcome.ts";

// Re-exported: it lived here first; src/api/task-id.ts is its home (the emulator uses it too).
export { taskIdOf };

/** Headers every target request carries, so services can log, deduplicate and budget their work. */
export const TASK_HEADERS = {
  activityArn: "step-func-activity-arn",
  taskId: "step-func-task-id",
  deadline: "step-func-deadline",
} as const;

export interface TaskContext {
  settings: PollerSettings;
  activityArn: string;
  stepFunctions: StepFunctions;
  target: HttpTarget;
  metrics: PollerMetrics;
  log: Logger;
}

/**
 * The task's logger (the loop's, with `taskId`), made on first use: most tasks log nothing, and a
 * winston child costs about 3 µs of CPU, measurable on the dispatch benchmark.
 */
class TaskLog {
  #log: Logger | undefined;
  readonly #parent: Logger;
  readonly #taskId: string;

  constructor(parent: Logger, taskId: string) {
    this.#parent = parent;
    this.#taskId = taskId;
  }

  get debugEnabled(): boolean {
    return this.#parent.isDebugEnabled();
  }

  get logger(): Logger {
    this.#log ??= this.#parent.child({ taskId: this.#taskId });
    return this.#log;
  }
}

export async function runTask(task: ActivityTask, ctx: TaskContext): Promise<TaskOutcomeLabel> {
  const source = ctx.settings.sourceName;
  const taskId = taskIdOf(task.taskToken);
  const log = new TaskLog(ctx.log, taskId);
  const startedAt = performance.now();
  ctx.metrics.tasksInFlight.inc({ source });
  const heartbeat = startHeartbeat(task.taskToken, ctx, log);
  let label: TaskOutcomeLabel;
  try {
    // Debug calls are guarded: winston formats every call (timestamp, JSON) before its transports
    // drop it by level, which cost ~10 µs a call on the dispatch benchmark (three per task).
    if (log.debugEnabled) {
      if (payloadLoggingEnabled()) log.logger.debug("task received", { input: task.input });
      else log.logger.debug("task received", { inputBytes: Buffer.byteLength(task.input) });
    }
    label = await processTask(task, taskId, heartbeat.gone, ctx, log);
  } catch (error) {
    // A bug or an unexpected throw anywhere above: fail the task at AWS rather than leave it hanging.
    log.logger.error("task crashed; reporting it as failed", { error: describeError(error) });
    label = await reportSafely(
      ctx,
      log,
      {
        kind: "failure",
        error: ERROR_NAMES.internalError,
        cause: truncateChars(describeError(error), 32_768),
      },
      task.taskToken,
    );
  } finally {
    heartbeat.stop();
    ctx.metrics.tasksInFlight.dec({ source });
  }
  ctx.metrics.tasks.inc({ source, outcome: label });
  ctx.metrics.taskDuration.observe({ source, outcome: label }, (performance.now() - startedAt) / 1000);
  return label;
}

async function processTask(
  task: ActivityTask,
  taskId: string,
  gone: Abandonment,
  ctx: TaskContext,
  log: TaskLog,
): Promise<TaskOutcomeLabel> {
  const timeoutMs = ctx.settings.requestTimeoutMs;
  const result = await ctx.target.post({
    body: task.input,
    timeoutMs,
    abandonment: gone,
    headers: {
      [TASK_HEADERS.activityArn]: ctx.activityArn,
      [TASK_HEADERS.taskId]: taskId,
      [TASK_HEADERS.deadline]: new Date(Date.now() + timeoutMs).toISOString(),
    },
  });
  if (gone.abandoned) {
    log.logger.warn("task is gone at AWS (timed out or deleted); its HTTP call was abandoned", {
      code: gone.reason,
    });
    return "gone";
  }
  const outcome = decideOutcome(result, { method: "POST", path: ctx.target.path });
  if (outcome.kind === "failure") {
    // The start of the cause says why in most cases; the whole (up to 32 KiB, possibly a response
    // body) goes to AWS only, so a failing target cannot flood the log.
    log.logger.info("task failed", {
      error: outcome.error,
      cause: shortCause(outcome.cause),
      ...(result.kind === "response" ? { status: result.status } : {}),
    });
  }
  return reportSafely(ctx, log, outcome, task.taskToken);
}

/** Characters of a failure's cause that the log line carries. */
export const LOGGED_CAUSE_CHARS = 200;

/** A cause cut for a log line, marked when cut. */
function shortCause(cause: string): string {
  return cause.length > LOGGED_CAUSE_CHARS ? `${truncateChars(cause, LOGGED_CAUSE_CHARS)}...` : cause;
}

/** Reports an outcome; maps every answer (and every exception) to the label we count. */
async function reportSafely(
  ctx: TaskContext,
  log: TaskLog,
  outcome: TaskOutcome,
  taskToken: string,
): Promise<TaskOutcomeLabel> {
  try {
    return labelOf(await report(ctx, log, outcome, taskToken), outcome, log);
  } catch (error) {
    log.logger.error("could not report the task's outcome; it stays open at AWS until its timeout", {
      outcome: outcome.kind,
      error: describeError(error),
    });
    return "unreported";
  }
}

/** The report call; a success whose output AWS refuses becomes a failure report (the task must end). */
function report(
  ctx: TaskContext,
  log: TaskLog,
  outcome: TaskOutcome,
  taskToken: string,
): Promise<ReportResult> {
  if (outcome.kind === "failure")
    return ctx.stepFunctions.sendTaskFailure(taskToken, outcome.error, outcome.cause);
  if (payloadLoggingEnabled() && log.debugEnabled)
    log.logger.debug("reporting success", { output: outcome.output });
  // A `.catch` rather than an async function with try/await: one promise less per task.
  return ctx.stepFunctions.sendTaskSuccess(taskToken, outcome.output).catch((error: unknown) => {
    const code = errorCode(error);
    // AWS refused the output itself (not JSON by its rules, or too large): the task must still end.
    if (code !== "InvalidOutput" && code !== "ValidationException") throw error;
    log.logger.warn("Step Functions refused the output; reporting the task as failed", { code });
    return ctx.stepFunctions.sendTaskFailure(
      taskToken,
      ERROR_NAMES.invalidOutput,
      `Step Functions refused the target's output (${code}): ${describeError(error)}`,
    );
  });
}

function labelOf(result: ReportResult, outcome: TaskOutcome, log: TaskLog): TaskOutcomeLabel {
  if (result.kind === "gone") {
    log.logger.warn("task was gone at AWS when its outcome was reported", { code: result.code });
    return "gone";
  }
  if (log.debugEnabled) log.logger.debug("task reported", { outcome: outcome.kind });
  return outcome.kind === "success" ? "succeeded" : "failed";
}

/**
 * Sends SendTaskHeartbeat every `heartbeatInterval` until stopped. When AWS says the task is gone
 * (TaskTimedOut, TaskDoesNotExist), `gone` aborts so the HTTP call is abandoned and the permit freed.
 * Heartbeats are chained, not on an interval, so a slow one never overlaps the next.
 */
function startHeartbeat(
  taskToken: string,
  ctx: TaskContext,
  log: TaskLog,
): { gone: Abandonment; stop: () => void } {
  const gone = new Abandonment();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const beat = async (): Promise<void> => {
    try {
      const result = await ctx.stepFunctions.sendTaskHeartbeat(taskToken);
      if (result.kind === "gone") {
        gone.abandon(result.code);
        return;
      }
      ctx.metrics.heartbeats.inc({ source: ctx.settings.sourceName });
    } catch (error) {
      log.logger.warn("heartbeat failed; trying again at the next interval", { error: describeError(error) });
    }
    schedule();
  };
  const schedule = (): void => {
    if (!stopped) timer = setTimeout(() => void beat(), ctx.settings.heartbeatIntervalMs);
  };
  schedule();
  return {
    gone,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
