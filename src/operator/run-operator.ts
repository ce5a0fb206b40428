/**
 * `sfn-operator operator`: the process. Serves /metrics, /healthz and /readyz at once (a standby is
 * ready: it is healthy, and a Service in front of replicas should not flap with the leadership);
 * with leader election on, runs the controller only while it leads; on SIGTERM stops taking work,
 * finishes the reconciles in flight, releases the Lease (a standby takes over at once) and exits 0.
 * A leader that loses its Lease (it could not renew in time, or another holder is in it) stops and
 * exits 1: the Deployment restarts it as a candidate, which is simpler to reason about than stepping
 * down in place. A controller that cannot start (its caches do not fill in time: a missing RBAC
 * rule, an API server out of reach) releases the Lease and exits 1, naming what failed.
 */
import { CoordinationV1Api } from "@kubernetes/client-node";
import { collectDefaultMetrics, Registry } from "prom-client";
import { describeError, getLogger } from "../observability/logger.ts";
import { createLeaderGauge } from "../observability/metrics.ts";
import { startObservabilityServer } from "../observability/server.ts";
import { PooledKubeConfig } from "./kube-config.ts";
import { LeaderElector } from "./leader-election.ts";
import { Operator } from "./operator.ts";
import type { OperatorSettings } from "./settings.ts";

export interface OperatorCommandOptions {
  settings: OperatorSettings;
  /** Settings worked around rather than refused (operatorSettingsFrom): logged once at start-up. */
  warnings?: readonly string[];
  metricsPort: number;
  env: NodeJS.ProcessEnv;
}

export async function runOperatorCommand(options: OperatorCommandOptions): Promise<number> {
  const { settings } = options;
  const log = getLogger("operator");
  // Every call over kept connections (client-node would open a new one per call: kube-config.ts).
  const kubeConfig = new PooledKubeConfig();
  // In a pod: the ServiceAccount's token; elsewhere: KUBECONFIG or ~/.kube/config.
  kubeConfig.loadFromDefault();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "sfn_operator_" });
  const leaderGauge = createLeaderGauge(registry);
  const operator = new Operator({ kubeConfig, settings, registry, env: options.env });
  const server = await startObservabilityServer({
    port: options.metricsPort,
    registry,
    readiness: () => ({ ready: true, reasons: [] }),
  });
  log.info("operator starting", {
    identity: settings.leaderElection.identity,
    namespace: settings.namespace,
    watchNamespaces: settings.watchNamespaces.length > 0 ? settings.watchNamespaces : "all",
    leaderElection: settings.leaderElection.enabled,
  });
  for (const warning of options.warnings ?? []) log.warn(warning);

  let stopping = false;
  let elector: LeaderElector | undefined;
  // A controller that cannot start (its caches never sync) must not sit on the Lease doing nothing.
  let startFailed: (error: unknown) => void = () => {};
  const failed = new Promise<"failed">((resolve) => {
    startFailed = (error) => {
      log.error("the controller could not start", { error: describeError(error) });
      resolve("failed");
    };
  });
  const stopped = new Promise<"signal">((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info("stopping: finishing the reconciles in flight", { signal });
      resolve("signal");
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });

  let outcome: "signal" | "lost" | "failed";
  if (!settings.leaderElection.enabled) {
    leaderGauge.set({ identity: settings.leaderElection.identity }, 1);
    operator.start().catch(startFailed);
    outcome = await Promise.race([stopped, failed]);
  } else {
    const election = settings.leaderElection;
    elector = new LeaderElector({
      api: kubeConfig.makeApiClient(CoordinationV1Api),
      namespace: settings.namespace,
      name: election.leaseName,
      identity: election.identity,
      leaseDurationMs: election.leaseDurationMs,
      renewDeadlineMs: election.renewDeadlineMs,
      retryPeriodMs: election.retryPeriodMs,
      leaderGauge,
      onStartedLeading: (signal) => {
        log.info("leading: starting the controller", { identity: election.identity });
        operator.start(signal).catch(startFailed);
      },
      onStoppedLeading: () => log.info("stopped leading", { identity: election.identity }),
      onNewLeader: (identity) => {
        if (identity !== election.identity) log.info("another process leads", { leader: identity });
      },
    });
    const ended = elector.run().then((end) => (end === "lost" ? ("lost" as const) : ("signal" as const)));
    outcome = await Promise.race([stopped, ended, failed]).catch((error: unknown) => {
      log.error("leader election failed", { error: describeError(error) });
      return "failed" as const;
    });
  }

  // A lost Lease means another process may lead already: stop writing at once (abort in flight).
  await operator.stop({ abortInFlight: outcome !== "signal" });
  // A stop asked for, or a controller that could not start (it exits 1 and must not keep the Lease
  // from a standby for a lease duration), hands the Lease over; a lost one is not ours to release.
  if (elector !== undefined && outcome !== "lost") {
    const released = await elector.release().catch((error: unknown) => {
      log.warn("could not release the Lease; a standby takes over when it expires", {
        error: describeError(error),
      });
      return false;
    });
    if (released) log.info("released the Lease");
  }
  await server.close();
  if (outcome === "lost")
    // Why is in the elector's "stopped leading" line: no renewal within the deadline, another
    // holder in the Lease, or the Lease deleted.
    log.error("lost the Lease: exiting to restart as a candidate");
  return outcome === "signal" ? 0 : 1;
}
