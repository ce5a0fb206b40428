/**
 * `sfn-operator poller`: one source's loops in one pod, configured by environment variables
 * (src/poller/env.ts; the operator sets them on the poller Deployment).
 */
import { getLogger } from "../observability/logger.ts";
import { PollerMetrics } from "../observability/metrics.ts";
import { createSemaphoreFactory } from "../semaphore/factory.ts";
import { type PollerEnvConfig, pollerConfigFromEnv } from "./env.ts";
import { liveSource } from "./live-source.ts";
import type { Poller } from "./poller.ts";
import { runPollers } from "./runtime.ts";

export interface PollerCommandOptions {
  metricsPort: number;
  /** The configuration, when the caller already read it (the CLI does, to report every problem). */
  config?: PollerEnvConfig;
}

export async function runPollerCommand(options: PollerCommandOptions): Promise<number> {
  const log = getLogger("poller");
  const config = options.config ?? pollerConfigFromEnv(process.env);
  const { settings } = config;
  for (const warning of config.warnings) log.warn(warning);
  const metrics = new PollerMetrics();
  const semaphores = createSemaphoreFactory({
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    env: process.env,
    holderName: config.workerName,
    metrics,
  });
  // Without Redis a pod can only bound itself; with it, the limit is the source's, cluster-wide.
  const limitOf = (current: typeof settings): number =>
    config.redisUrl ? current.maxConcurrency : Math.min(current.maxConcurrency, current.concurrencyPerPoller);
  if (!config.redisUrl)
    log.warn("no SFN_REDIS_URL: concurrency is limited per pod only", { limit: limitOf(settings) });
  // The operator's pollers: the limit is the one in Redis, followed without a restart (the
  // environment's check requires SFN_REDIS_URL with it, so the connection exists).
  const live =
    config.limitFromRedis && semaphores.connection
      ? liveSource({
          connection: semaphores.connection,
          createSemaphore: (current, activityArn, limit) =>
            semaphores.semaphoreFor(current, activityArn, limit),
          workerName: config.workerName,
        })
      : undefined;
  if (config.limitFromRedis && !live) throw new Error("SFN_LIMIT_FROM_REDIS=true needs SFN_REDIS_URL");
  return runPollers({
    sources: [
      {
        settings,
        loops: settings.concurrencyPerPoller,
        semaphoreFor: live
          ? (activityArn, current) => live.semaphoreFor(activityArn, current)
          : (activityArn, current) => semaphores.semaphoreFor(current, activityArn, limitOf(current)),
      },
    ],
    metrics,
    workerName: config.workerName,
    metricsPort: options.metricsPort,
    ...(live ? { afterStart: (pollers: readonly Poller[]) => live.afterStart(pollers) } : {}),
    close: async () => {
      // The last figures go out before the connection closes.
      await live?.close();
      await semaphores.close();
    },
  });
}
