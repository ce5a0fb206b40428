/**
 * Runs poll loops for one or more sources in this process until a signal stops them: the common
 * runtime of `sfn-operator poller` (one source, in a pod) and `sfn-operator local` (several sources).
 *
 * Shutdown: the first SIGTERM/SIGINT stops new polls and waits for every task already taken to be
 * reported (size the pod's terminationGracePeriodSeconds for the longest task plus a 60 s poll).
 * It says what it waits for and for how long at most, since an idle Ctrl-C otherwise looks hung for
 * up to a minute. A second signal exits at once.
 */
import { formatDuration } from "../api/duration.ts";
import type { PollerSettings } from "../api/types.ts";
import type { AwsProblem } from "../aws/errors.ts";
import { AwsProblemLog } from "../aws/problems.ts";
import { StepFunctions } from "../aws/step-functions.ts";
import { describeError, getLogger } from "../observability/logger.ts";
import { PollerMetrics } from "../observability/metrics.ts";
import {
  type ObservabilityServer,
  type Readiness,
  startObservabilityServer,
} from "../observability/server.ts";
import type { Semaphore } from "../semaphore/semaphore.ts";
import { HttpTarget } from "../target/http-target.ts";
import { VERSION } from "../version.ts";
import { LONG_POLL_MS, Poller, type PollerActivity } from "./poller.ts";
import { formatSeconds, RuntimeWatch } from "./watch.ts";

export interface SourceRuntime {
  settings: PollerSettings;
  /** Poll loops to run in this process for the source. */
  loops: number;
  /** The source's semaphore, created once its activity ARN is known (see PollerDependencies). */
  semaphoreFor: (activityArn: string, settings: PollerSettings) => Semaphore;
}

export interface PollerRuntimeOptions {
  sources: SourceRuntime[];
  region?: string;
  workerName: string;
  /** The process's metrics (created here when absent). */
  metrics?: PollerMetrics;
  /** Port of /metrics, /healthz and /readyz; no server when undefined. */
  metricsPort?: number;
  metricsHost?: string;
  /** Called once the pollers exist (e.g. to watch configuration); returns a disposer. */
  afterStart?: (pollers: readonly Poller[]) => () => void;
  /** Releases shared resources (a Redis connection) after every poller stopped. */
  close?: () => Promise<void>;
  /** Period of the task summary line (60 s by default; 0: only the final one). */
  summaryIntervalMs?: number;
  /**
   * What an AWS error that retrying cannot heal (no region, no credentials, access denied) does:
   * `exit` stops at the first one (as on SIGTERM) and exits with its code (2 configuration, 1 access),
   * naming the fix (local mode: someone at a terminal can fix it); `retry` (the default) goes on
   * retrying with backoff, warns with the fix now and then, and reports it in /readyz (a pod: the
   * credentials may appear later).
   */
  onNonHealingAwsError?: "exit" | "retry";
}

/** How often a shutdown that is still waiting says so again. */
const STILL_STOPPING_MS = 15_000;

const log = getLogger("runtime");

/** Runs until stopped by a signal; resolves to the process's exit code. */
export async function runPollers(options: PollerRuntimeOptions): Promise<number> {
  const metrics = options.metrics ?? new PollerMetrics();
  const totalLoops = options.sources.reduce((sum, source) => sum + source.loops, 0);
  const exitOnProblem = options.onNonHealingAwsError === "exit";
  const problemLog = new AwsProblemLog(getLogger("aws"));
  let fatalProblem: AwsProblem | undefined;
  // Assigned below, once the pollers exist; AWS calls start only after that.
  let stopAll = (): void => {};
  const stepFunctions = new StepFunctions({
    ...(options.region ? { region: options.region } : {}),
    workerName: options.workerName,
    maxConcurrentPolls: totalLoops,
    onAwsError: (api, code) => metrics.awsErrors.inc({ api, code }),
    onNonHealingError: (problem, api) => {
      if (!exitOnProblem) {
        problemLog.failed(problem, api);
        return;
      }
      if (fatalProblem) return;
      fatalProblem = problem;
      log.error(`${problem.summary}: ${problem.hint}; exiting`, { api, code: problem.code });
      stopAll();
    },
    onRecovered: () => problemLog.recovered(),
  });
  const pollers = options.sources.map(({ settings, loops, semaphoreFor }) => {
    const target = new HttpTarget(settings.targetUrl, loops, settings.targetHeaders);
    if (target.headerNames.length > 0) {
      // Names only: the values are credentials.
      log.info("target requests carry configured headers", {
        source: settings.sourceName,
        headers: target.headerNames,
      });
    }
    return new Poller(settings, { stepFunctions, semaphoreFor, target, metrics });
  });
  let shuttingDown = false;
  const readiness = (): Readiness => {
    const reasons: string[] = [];
    if (shuttingDown) reasons.push("shutting down");
    const problem = stepFunctions.problem;
    if (problem) reasons.push(`AWS: ${problem.summary}: ${problem.hint}`);
    for (const poller of pollers) {
      const source = poller.settings.sourceName;
      if (poller.problem) reasons.push(`${source}: ${poller.problem}`);
      else if (poller.state === "starting") reasons.push(`${source}: starting`);
      const health = poller.semaphore?.health();
      if (health && !health.ready) reasons.push(`${source}: ${health.reason ?? "semaphore not ready"}`);
    }
    return { ready: reasons.length === 0, reasons };
  };
  const sampleSemaphores = (): void => {
    for (const poller of pollers) {
      const source = poller.settings.sourceName;
      metrics.permitsHeld.set({ source }, poller.semaphore?.held() ?? 0);
      metrics.permitWaiters.set({ source }, poller.semaphore?.waiting() ?? 0);
      metrics.concurrencyLimit.set({ source }, poller.semaphore?.limit ?? 0);
    }
  };
  metrics.onScrapeSampleSemaphores(sampleSemaphores);

  let server: ObservabilityServer | undefined;
  if (options.metricsPort !== undefined) {
    server = await startObservabilityServer({
      port: options.metricsPort,
      ...(options.metricsHost ? { host: options.metricsHost } : {}),
      registry: metrics.registry,
      readiness,
    });
  }

  const watch = new RuntimeWatch({
    pollers,
    log,
    ...(options.summaryIntervalMs !== undefined ? { summaryIntervalMs: options.summaryIntervalMs } : {}),
  });
  let stillStopping: NodeJS.Timeout | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      log.warn(`second ${signal}: exiting now; tasks in flight stay open at AWS until their timeout`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    shuttingDown = true;
    for (const poller of pollers) poller.stop();
    const again =
      signal === "SIGINT"
        ? "press Ctrl-C again to exit now"
        : `send ${signal} again to exit now (tasks in flight then stay open at AWS until their timeout)`;
    const first = describeStopping(pollers, performance.now());
    log.info(`stopping: ${first.text}; ${again}`, { signal, ...first.fields });
    stillStopping = setInterval(() => {
      const now = describeStopping(pollers, performance.now());
      log.info(`still stopping: ${now.text}; ${again}`, { signal, ...now.fields });
    }, STILL_STOPPING_MS);
    stillStopping.unref();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  stopAll = () => {
    // As on SIGTERM: no new polls, every task already taken is still run and reported.
    shuttingDown = true;
    for (const poller of pollers) poller.stop();
  };
  // Last line of defence: every task path catches its own errors, so a rejection reaching here is
  // a bug; logging it keeps the other loops (and their tasks) alive instead of crashing the process.
  const onUnhandled = (reason: unknown): void => {
    log.error("unhandled promise rejection (a bug; please report it)", { error: describeError(reason) });
  };
  process.on("unhandledRejection", onUnhandled);

  log.info(`sfn-operator ${VERSION} starting`, {
    sources: options.sources.map((source) => source.settings.sourceName),
    workerName: options.workerName,
    // Which Step Functions this talks to is the first thing to doubt when nothing arrives.
    stepFunctionsEndpoint:
      process.env.AWS_ENDPOINT_URL_SFN || process.env.AWS_ENDPOINT_URL || "AWS (the SDK's default)",
  });
  const disposeAfterStart = options.afterStart?.(pollers);
  watch.start();
  try {
    await Promise.all(pollers.map((poller, index) => poller.start(options.sources[index]?.loops ?? 1)));
    watch.final();
    log.info("every taken task is reported; exiting");
    return fatalProblem?.exitCode ?? 0;
  } catch (error) {
    log.error("poller runtime failed", { error: describeError(error) });
    return 1;
  } finally {
    watch.stop();
    clearInterval(stillStopping);
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("unhandledRejection", onUnhandled);
    disposeAfterStart?.();
    await options.close?.();
    await server?.close();
    stepFunctions.destroy();
  }
}

/** The parts of a poller a shutdown message reads. */
export interface StoppingPoller {
  readonly settings: Pick<PollerSettings, "requestTimeoutMs">;
  activity(): PollerActivity;
}

/**
 * What stopping waits for, with upper bounds: outstanding polls end within AWS's long poll (they are
 * never aborted: a task handed to a poll whose client has gone would be lost until its timeout), and
 * running tasks within what is left of their requestTimeout (then their report). A poll that brings a
 * task runs it too, so the whole may take a poll plus a requestTimeout.
 */
export function describeStopping(
  pollers: readonly StoppingPoller[],
  now: number,
): { text: string; fields: Record<string, unknown> } {
  let polls = 0;
  let tasks = 0;
  let pollsEndWithinMs = 0;
  let tasksEndWithinMs = 0;
  let requestTimeoutMs = 0;
  for (const poller of pollers) {
    const activity = poller.activity();
    polls += activity.polls;
    tasks += activity.tasks;
    if (activity.lastPollStartedAt !== undefined) {
      pollsEndWithinMs = Math.max(pollsEndWithinMs, LONG_POLL_MS - (now - activity.lastPollStartedAt));
      requestTimeoutMs = Math.max(requestTimeoutMs, poller.settings.requestTimeoutMs);
    }
    if (activity.lastTaskStartedAt !== undefined) {
      const left = poller.settings.requestTimeoutMs - (now - activity.lastTaskStartedAt);
      tasksEndWithinMs = Math.max(tasksEndWithinMs, left);
    }
  }
  const waits: string[] = [];
  if (polls > 0) {
    waits.push(
      `${count(polls, "outstanding poll")} (at most ${formatSeconds(pollsEndWithinMs)}: a poll is never ` +
        "abandoned, a task it receives would be lost; a task it brings is run, up to requestTimeout " +
        `${formatDuration(requestTimeoutMs)})`,
    );
  }
  if (tasks > 0) {
    waits.push(
      `${count(tasks, "running task")} (at most ${formatSeconds(tasksEndWithinMs)}, then its report)`,
    );
  }
  return {
    text: waits.length > 0 ? `waiting for ${waits.join(" and ")}` : "nothing in flight",
    fields: {
      outstandingPolls: polls,
      runningTasks: tasks,
      ...(polls > 0 ? { pollsEndWithin: formatSeconds(pollsEndWithinMs) } : {}),
      ...(tasks > 0 ? { tasksEndWithin: formatSeconds(tasksEndWithinMs) } : {}),
    },
  };
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
