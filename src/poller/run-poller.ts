/**
 * `sfn-operator poller`: one source's loops in one pod, configured by environment variables
 * (src/poller/env.ts; the operator sets them on the poller Deployment).
 */
import { getLogger } from "../observability/logger.ts";
import { InProcessSemaphore } from "../semaphore/in-process.ts";
import { pollerConfigFromEnv } from "./env.ts";
import { runPollers } from "./runtime.ts";

export interface PollerCommandOptions {
  metricsPort: number;
}

export async function runPollerCommand(options: PollerCommandOptions): Promise<number> {
  const log = getLogger("poller");
  const config = pollerConfigFromEnv(process.env);
  const { settings } = config;
  for (const warning of config.warnings) log.warn(warning);
  if (config.redisUrl) {
    log.error("this build has no Redis semaphore yet: unset SFN_REDIS_URL to run with a per-process limit");
    return 2;
  }
  // Without Redis this pod can only bound itself: the cluster-wide limit needs the Redis semaphore.
  const limit = Math.min(settings.maxConcurrency, settings.concurrencyPerPoller);
  log.warn("no SFN_REDIS_URL: concurrency is limited per pod only", { limit });
  return runPollers({
    sources: [{ settings, loops: settings.concurrencyPerPoller, semaphore: new InProcessSemaphore(limit) }],
    workerName: config.workerName,
    metricsPort: options.metricsPort,
  });
}
