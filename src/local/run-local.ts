/**
 * `sfn-operator local -f sources.yaml`: the pollers of every source in one process, outside
 * Kubernetes. Each source gets the loops its pollers would have in a cluster
 * (ceil(maxConcurrency / concurrencyPerPoller) pollers x concurrencyPerPoller loops), all bounded by
 * one semaphore with the source's maxConcurrency.
 */
import os from "node:os";
import { getLogger } from "../observability/logger.ts";
import { runPollers, type SourceRuntime } from "../poller/runtime.ts";
import { InProcessSemaphore } from "../semaphore/in-process.ts";
import { loadLocalConfig } from "./config.ts";

export interface LocalOptions {
  file: string;
  metricsPort?: number;
}

export async function runLocal(options: LocalOptions): Promise<number> {
  const log = getLogger("local");
  const config = await loadLocalConfig(options.file);
  if (config.redisUrl) {
    // The Redis semaphore arrives with the distributed-semaphore work; refusing is honest, silently
    // running with a per-process limit is not.
    log.error(
      "this build has no Redis semaphore yet: remove `redis:` from the file to run with a per-process limit",
    );
    return 2;
  }
  log.info(
    "no `redis:` in the sources file: concurrency is limited per process, so run a single local process per activity",
  );
  const sources: SourceRuntime[] = config.sources.map((settings) => ({
    settings,
    loops: Math.ceil(settings.maxConcurrency / settings.concurrencyPerPoller) * settings.concurrencyPerPoller,
    semaphore: new InProcessSemaphore(settings.maxConcurrency),
  }));
  return runPollers({
    sources,
    ...(config.region ? { region: config.region } : {}),
    workerName: `${os.hostname()}-${process.pid}`,
    ...(options.metricsPort !== undefined
      ? { metricsPort: options.metricsPort, metricsHost: "127.0.0.1" }
      : {}),
  });
}
