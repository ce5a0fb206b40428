/**
 * `sfn-operator local -f sources.yaml`: the pollers of every source in one process, outside
 * Kubernetes. Each source gets the loops its pollers would have in a cluster
 * (ceil(maxConcurrency / concurrencyPerPoller) pollers x concurrencyPerPoller loops), all bounded by
 * the source's semaphore of maxConcurrency permits: Redis-backed when the file names `redis:` (then
 * several local processes share the limit), in-process otherwise.
 *
 * The file is watched: a changed maxConcurrency applies without a restart (the semaphore takes the
 * limit at each acquisition); other changes need a restart, which the log says.
 */
import { unwatchFile, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import { formatDuration } from "../api/duration.ts";
import type { PollerSettings } from "../api/types.ts";
import { describeError, getLogger } from "../observability/logger.ts";
import { PollerMetrics } from "../observability/metrics.ts";
import type { Poller } from "../poller/poller.ts";
import { runPollers, type SourceRuntime } from "../poller/runtime.ts";
import { createSemaphoreFactory } from "../semaphore/factory.ts";
import { redactRedisUrl } from "../semaphore/redis/connection.ts";
import { type LocalConfig, loadLocalConfig, parseLocalConfig } from "./config.ts";

export interface LocalOptions {
  file: string;
  /** The file's configuration, when the caller already read it; else the file is read here. */
  config?: LocalConfig;
  metricsPort?: number;
  /** How often the file is checked for changes, in ms. */
  watchIntervalMs?: number;
}

const log = getLogger("local");

/** Loops that serve a source's whole limit, shaped like the pollers a cluster would run. */
export function loopsFor(settings: PollerSettings): number {
  return Math.ceil(settings.maxConcurrency / settings.concurrencyPerPoller) * settings.concurrencyPerPoller;
}

export async function runLocal(options: LocalOptions): Promise<number> {
  const config = options.config ?? (await loadLocalConfig(options.file, process.env));
  const workerName = `${os.hostname()}-${process.pid}`;
  const metrics = new PollerMetrics();
  const semaphores = createSemaphoreFactory({
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    env: process.env,
    holderName: workerName,
    metrics,
  });
  if (!config.redisUrl) {
    log.info(
      "no `redis:` in the sources file: each maxConcurrency holds within this process only (a second process serving the same activities would double it)",
    );
  }
  const sources: SourceRuntime[] = config.sources.map((settings) => ({
    settings,
    loops: loopsFor(settings),
    semaphoreFor: (activityArn, current) =>
      semaphores.semaphoreFor(current, activityArn, current.maxConcurrency),
  }));
  return runPollers({
    sources,
    metrics,
    ...(config.region ? { region: config.region } : {}),
    workerName,
    ...(options.metricsPort !== undefined
      ? { metricsPort: options.metricsPort, metricsHost: "127.0.0.1" }
      : {}),
    afterStart: (pollers) => watchSourcesFile(options.file, pollers, options.watchIntervalMs ?? 500),
    close: () => semaphores.close(),
    // Someone at a terminal can fix a missing region or credentials; retrying would only hide it.
    onNonHealingAwsError: "exit",
  });
}

/**
 * `local --check`: what the file would run, one line per source after a line about the file, for a
 * person to read. Nothing is contacted: neither AWS nor Redis nor the targets.
 */
export function checkLocal(file: string, config: LocalConfig): string[] {
  const count = config.sources.length;
  const semaphore = config.redisUrl
    ? `limits shared through Redis at ${redactRedisUrl(config.redisUrl)}`
    : "limits held within one process (no `redis:`)";
  const region = config.region ? `region ${config.region}` : "region from the AWS SDK's default chain";
  return [
    `${file}: OK, ${count} source${count === 1 ? "" : "s"}; ${semaphore}; ${region}`,
    ...config.sources.map((s) => {
      const pollers = Math.ceil(s.maxConcurrency / s.concurrencyPerPoller);
      return (
        `  ${s.sourceName}: POST ${s.targetUrl}; maxConcurrency ${s.maxConcurrency} ` +
        `(${pollers} poller${pollers === 1 ? "" : "s"} x ${s.concurrencyPerPoller} loop${s.concurrencyPerPoller === 1 ? "" : "s"}); ` +
        `requestTimeout ${formatDuration(s.requestTimeoutMs)}; heartbeatInterval ${formatDuration(s.heartbeatIntervalMs)}`
      );
    }),
  ];
}

/** Applies maxConcurrency changes of the file to the running pollers; returns the disposer. */
function watchSourcesFile(file: string, pollers: readonly Poller[], intervalMs: number): () => void {
  const onChange = (): void => {
    readFile(file, "utf8")
      .then((text) => applyChanges(parseLocalConfig(text, file, process.env).sources, pollers))
      .catch((error: unknown) =>
        log.warn("the sources file changed but cannot be used; keeping the running settings", {
          error: describeError(error),
        }),
      );
  };
  watchFile(file, { interval: intervalMs }, onChange);
  return () => unwatchFile(file, onChange);
}

function applyChanges(updated: PollerSettings[], pollers: readonly Poller[]): void {
  for (const poller of pollers) {
    const current = poller.settings;
    const next = updated.find((s) => s.activityName === current.activityName);
    if (!next) {
      log.warn("a source was removed from the file; restart local mode to stop it", {
        source: current.sourceName,
      });
      continue;
    }
    if (next.maxConcurrency !== current.maxConcurrency) {
      poller.setMaxConcurrency(next.maxConcurrency);
    }
    const { maxConcurrency: _a, ...restNext } = next;
    const { maxConcurrency: _b, ...restCurrent } = current;
    if (JSON.stringify(restNext) !== JSON.stringify(restCurrent)) {
      log.warn("settings other than maxConcurrency changed; restart local mode to apply them", {
        source: current.sourceName,
      });
    }
  }
  for (const next of updated) {
    if (!pollers.some((p) => p.settings.activityName === next.activityName)) {
      log.warn("a source was added to the file; restart local mode to start it", { source: next.sourceName });
    }
  }
}
