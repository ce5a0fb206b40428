/**
 * A thin, typed layer over `@aws-sdk/client-sfn`: the five calls a poller makes, with the choices
 * that matter made once here.
 *
 * - Two SDK clients: one for long polls and one for reports. A GetActivityTask call holds its socket
 *   for up to 60 s; reports and heartbeats must never queue behind those sockets.
 * - The poll client's request and socket timeouts are 70 s (AWS long-polls up to 60 s; a shorter
 *   timeout would abandon polls that can still hand out a task, which is then lost until the state
 *   times out); the report client's are 20 s. The transport is the SDK's NodeHttpHandler, with
 *   HTTPS_PROXY / HTTP_PROXY / NO_PROXY honoured (transport.ts).
 * - The SDK's standard retry (exponential backoff with full jitter for throttling, 5xx and network
 *   errors) applies to every call. Reports get an outer retry on top, within a bounded window,
 *   because a lost report leaves the execution waiting until its timeout.
 * - Credentials and region come from the SDK's default chain; `AWS_ENDPOINT_URL_SFN` (or
 *   `AWS_ENDPOINT_URL`) points the SDK at another endpoint such as our emulator.
 * - Errors that retrying cannot heal (no region, no credentials, access denied: errors.ts) are
 *   remembered as `problem` until a call succeeds, and handed to `onNonHealingError`, so that the
 *   command can exit (local mode) or say what to fix (poller).
 */
import {
  CreateActivityCommand,
  GetActivityTaskCommand,
  paginateListActivities,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from "@aws-sdk/client-sfn";
import { AWS_LIMITS } from "../api/defaults.ts";
import { describeError, getLogger, type Logger } from "../observability/logger.ts";
import { Backoff, sleep } from "../util/backoff.ts";
import {
  type AwsProblem,
  errorCode,
  isRetryable,
  isTaskGone,
  nonHealingProblem,
  type TaskGoneCode,
} from "./errors.ts";
import { AwsRequestHandler, type PoolOptions } from "./transport.ts";

/** Request and socket timeout of long polls: above AWS's 60 s long poll, as AWS recommends. */
export const POLL_SOCKET_TIMEOUT_MS = 70_000;
/** Request and socket timeout of reports, heartbeats and CreateActivity: they answer at once. */
export const REPORT_SOCKET_TIMEOUT_MS = 20_000;

export interface ActivityTask {
  taskToken: string;
  /** The task input: a JSON document as a string. */
  input: string;
}

/** The result of a SendTask* call. */
export type ReportResult = { kind: "accepted" } | { kind: "gone"; code: TaskGoneCode; message: string };
const ACCEPTED: ReportResult = Object.freeze({ kind: "accepted" });

export interface StepFunctionsOptions {
  /** AWS region; the SDK's default resolution when absent. */
  region?: string;
  /** Worker name sent with GetActivityTask (truncated to AWS's 80 characters). */
  workerName: string;
  /** Concurrent long polls this gateway must carry (sizes the poll client's socket pool). */
  maxConcurrentPolls: number;
  /** SDK attempts per call (first try included). */
  maxAttempts?: number;
  /** How long a report keeps retrying transient failures before it is given up, in ms. */
  reportRetryWindowMs?: number;
  /** Called for every failed attempt, including those the SDK retries (for metrics). */
  onAwsError?: (api: string, code: string) => void;
  /**
   * Called, before the call rejects, for every call that failed in a way retrying cannot heal
   * (errors.ts: nonHealingProblem).
   */
  onNonHealingError?: (problem: AwsProblem, api: string) => void;
  /** Called by the first call that succeeds after a non-healing error. */
  onRecovered?: () => void;
  logger?: Logger;
}

export class StepFunctions {
  readonly workerName: string;
  readonly #pollClient: SFNClient;
  readonly #reportClient: SFNClient;
  readonly #reportRetryWindowMs: number;
  readonly #log: Logger;
  readonly #onNonHealingError: ((problem: AwsProblem, api: string) => void) | undefined;
  readonly #onRecovered: (() => void) | undefined;
  #problem: AwsProblem | undefined;

  constructor(options: StepFunctionsOptions) {
    this.workerName = options.workerName.slice(0, AWS_LIMITS.workerNameLength);
    this.#reportRetryWindowMs = options.reportRetryWindowMs ?? 5 * 60_000;
    this.#log = options.logger ?? getLogger("aws");
    this.#onNonHealingError = options.onNonHealingError;
    this.#onRecovered = options.onRecovered;
    const maxAttempts = options.maxAttempts ?? 5;
    this.#pollClient = newClient({
      region: options.region,
      maxAttempts,
      pool: {
        name: "poll",
        // One connection per concurrent poll, plus one so a poll never waits for a socket.
        maxSockets: options.maxConcurrentPolls + 1,
        timeoutMs: POLL_SOCKET_TIMEOUT_MS,
        logger: this.#log,
      },
      onAwsError: options.onAwsError,
    });
    this.#reportClient = newClient({
      region: options.region,
      maxAttempts,
      pool: {
        name: "report",
        // Each in-flight task reports and heartbeats; twice the polls leaves room for both at once.
        maxSockets: 2 * options.maxConcurrentPolls + 2,
        timeoutMs: REPORT_SOCKET_TIMEOUT_MS,
        logger: this.#log,
      },
      onAwsError: options.onAwsError,
    });
  }

  /** The non-healing problem the last failed call met, until a call succeeds. */
  get problem(): AwsProblem | undefined {
    return this.#problem;
  }

  /**
   * The ARN of the named activity. AWS's CreateActivity is idempotent by name and returns the
   * existing ARN; some other implementations (moto) answer ActivityAlreadyExists instead, so that
   * answer is resolved through ListActivities.
   */
  async resolveActivityArn(activityName: string): Promise<string> {
    try {
      const result = await this.#call("CreateActivity", () =>
        this.#reportClient.send(new CreateActivityCommand({ name: activityName })),
      );
      if (!result.activityArn)
        throw new Error(`CreateActivity for "${activityName}" returned no activityArn`);
      return result.activityArn;
    } catch (error) {
      if (errorCode(error) !== "ActivityAlreadyExists") throw error;
      return this.#findActivityArn(activityName);
    }
  }

  /**
   * One long poll. Resolves to undefined when AWS had no task within its long-poll window. Never
   * aborted by us: a poll whose client gives up can still hand out a task.
   */
  async getActivityTask(activityArn: string): Promise<ActivityTask | undefined> {
    const result = await this.#call("GetActivityTask", () =>
      this.#pollClient.send(new GetActivityTaskCommand({ activityArn, workerName: this.workerName })),
    );
    if (!result.taskToken) return undefined;
    return { taskToken: result.taskToken, input: result.input ?? "{}" };
  }

  /** SendTaskSuccess, retried within the report window. InvalidOutput and validation errors throw. */
  sendTaskSuccess(taskToken: string, output: string): Promise<ReportResult> {
    return this.#report("SendTaskSuccess", () =>
      this.#call("SendTaskSuccess", () =>
        this.#reportClient.send(new SendTaskSuccessCommand({ taskToken, output })),
      ),
    );
  }

  sendTaskFailure(taskToken: string, error: string, cause: string): Promise<ReportResult> {
    return this.#report("SendTaskFailure", () =>
      this.#call("SendTaskFailure", () =>
        this.#reportClient.send(new SendTaskFailureCommand({ taskToken, error, cause })),
      ),
    );
  }

  /** One heartbeat (the SDK's retries only): the next interval tries again anyway. */
  async sendTaskHeartbeat(taskToken: string): Promise<ReportResult> {
    try {
      await this.#call("SendTaskHeartbeat", () =>
        this.#reportClient.send(new SendTaskHeartbeatCommand({ taskToken })),
      );
      return ACCEPTED;
    } catch (error) {
      if (isTaskGone(error)) return { kind: "gone", code: error.name, message: error.message };
      throw error;
    }
  }

  async #findActivityArn(activityName: string): Promise<string> {
    for await (const page of paginateListActivities({ client: this.#reportClient }, {})) {
      const found = page.activities?.find((activity) => activity.name === activityName);
      if (found?.activityArn) return found.activityArn;
    }
    throw new Error(
      `activity "${activityName}" exists according to CreateActivity but ListActivities does not show it`,
    );
  }

  /** Runs one SDK call, keeping `problem` up to date. */
  async #call<T>(api: string, send: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await send();
    } catch (error) {
      const problem = nonHealingProblem(error);
      if (problem) {
        this.#problem = problem;
        this.#onNonHealingError?.(problem, api);
      }
      throw error;
    }
    if (this.#problem) {
      this.#problem = undefined;
      this.#onRecovered?.();
    }
    return result;
  }

  destroy(): void {
    this.#pollClient.destroy();
    this.#reportClient.destroy();
  }

  async #report(api: string, call: () => Promise<unknown>): Promise<ReportResult> {
    const deadline = Date.now() + this.#reportRetryWindowMs;
    let backoff: Backoff | undefined; // made on the first failure: most reports never need one
    for (;;) {
      try {
        await call();
        return ACCEPTED;
      } catch (error) {
        if (isTaskGone(error)) return { kind: "gone", code: error.name, message: error.message };
        backoff ??= new Backoff({ baseMs: 500, capMs: 30_000 });
        const delay = backoff.next();
        if (!isRetryable(error) || Date.now() + delay > deadline) throw error;
        this.#log.warn(`${api} failed, retrying`, {
          error: describeError(error),
          attempt: backoff.failures,
          retryInMs: delay,
        });
        await sleep(delay);
      }
    }
  }
}

function newClient(options: {
  region: string | undefined;
  maxAttempts: number;
  pool: PoolOptions;
  onAwsError: ((api: string, code: string) => void) | undefined;
}): SFNClient {
  const client = new SFNClient({
    ...(options.region ? { region: options.region } : {}),
    maxAttempts: options.maxAttempts,
    // Resolve each command's middleware stack once, not on every call (clone, sort, add: about 5 µs
    // of CPU per call on the dispatch benchmark). Safe because the stack is complete when `send` is
    // first called: the metrics middleware below is added here, at construction.
    cacheMiddleware: true,
    // The SDK's NodeHttpHandler per pool and proxy route (transport.ts). The credential chain's STS
    // calls (IRSA) use this client's handler too, so they take the same proxy route rules.
    requestHandler: new AwsRequestHandler(options.pool),
  });
  const onAwsError = options.onAwsError;
  if (onAwsError) {
    // Inside the retry middleware (finalizeRequest step), so every attempt is counted, not only the
    // last: throttling that the SDK absorbs is still visible in the metrics.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        try {
          return await next(args);
        } catch (error) {
          onAwsError(context.commandName?.replace(/Command$/, "") ?? "unknown", errorCode(error));
          throw error;
        }
      },
      { step: "deserialize", priority: "high", name: "sfnOperatorErrorMetrics" },
    );
  }
  return client;
}
