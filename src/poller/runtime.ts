/**
 * Runs poll loops for one or more sources in this process until a signal stops them: the common
 * runtime of `sfn-operator poller` (one source, in a pod) and `sfn-operator local` (several sources).
 *
 * Shutdown: the first SIGTERM/SIGINT stops new polls and waits for every task already taken to be
 * reported (size the pod's terminationGracePeriodSeconds for the longest task plus a 60 s poll).
 * A second signal exits at once.
 */
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
import { Poller } from "./poller.ts";

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
  /**
   * What an AWS error that retrying cannot heal (no region, no credentials, access denied) does:
   * `exit` stops at the first one (as on SIGTERM) and exits with its code (2 configuration, 1 access),
   * naming the fix (local mode: someone at a terminal can fix it); `retry` (the default) goes on
   * retrying with backoff, warns with the fix now and then, and reports it in /readyz (a pod: the
   * credentials may appear later).
   */
  onNonHealingAwsError?: "exit" | "retry";
}

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
  const pollers = options.sources.map(
    ({ settings, loops, semaphoreFor }) =>
      new Poller(settings, {
        stepFunctions,
        semaphoreFor,
        target: new HttpTarget(settings.targetUrl, loops),
        metrics,
      }),
  );
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

  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      log.warn(`second ${signal}: exiting now; tasks in flight stay open at AWS until their timeout`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    shuttingDown = true;
    const inFlight = pollers.reduce((sum, poller) => sum + (poller.semaphore?.held() ?? 0), 0);
    log.info(
      `${signal}: no new polls; finishing outstanding polls and ${inFlight} held permit(s). Signal again to exit at once.`,
    );
    for (const poller of pollers) poller.stop();
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

  const disposeAfterStart = options.afterStart?.(pollers);
  try {
    await Promise.all(pollers.map((poller, index) => poller.start(options.sources[index]?.loops ?? 1)));
    log.info("every taken task is reported; exiting");
    return fatalProblem?.exitCode ?? 0;
  } catch (error) {
    log.error("poller runtime failed", { error: describeError(error) });
    return 1;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("unhandledRejection", onUnhandled);
    disposeAfterStart?.();
    await options.close?.();
    await server?.close();
    stepFunctions.destroy();
  }
}
