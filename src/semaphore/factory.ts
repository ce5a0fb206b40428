/**
 * Chooses each source's semaphore: Redis-backed when a Redis URL is configured (the limit holds
 * across every process that shares that Redis), in-process otherwise (the limit holds within this
 * process only, which the log says).
 */

import { ConfigError } from "../api/fields.ts";
import type { PollerSettings } from "../api/types.ts";
import { getLogger } from "../observability/logger.ts";
import type { PollerMetrics } from "../observability/metrics.ts";
import { InProcessSemaphore } from "./in-process.ts";
import { RedisConnection, redactRedisUrl, redisOptionsFromEnv } from "./redis/connection.ts";
import { RedisSemaphore } from "./redis/redis-semaphore.ts";
import { formatRedisProblem, redisSettingsFromEnv } from "./redis/settings.ts";
import type { Semaphore } from "./semaphore.ts";

export interface SemaphoreFactory {
  /** A semaphore for the source with the given activity ARN, limited to `limit`. */
  semaphoreFor(settings: PollerSettings, activityArn: string, limit: number): Semaphore;
  /** The Redis connection the semaphores share, when Redis is configured (for source-state.ts). */
  readonly connection?: RedisConnection;
  close(): Promise<void>;
}

export interface SemaphoreFactoryOptions {
  redisUrl?: string;
  env: NodeJS.ProcessEnv;
  /** Names this process's leases (worker name). */
  holderName: string;
  metrics: PollerMetrics;
}

export function createSemaphoreFactory(options: SemaphoreFactoryOptions): SemaphoreFactory {
  const log = getLogger("semaphore");
  if (!options.redisUrl) {
    return {
      semaphoreFor: (_settings, _arn, limit) => new InProcessSemaphore(limit),
      close: async () => {},
    };
  }
  const { metrics, env } = options;
  // The commands checked these settings with the rest of their configuration; this is the backstop.
  const { settings: redis, problems } = redisSettingsFromEnv(options.redisUrl, env, "Redis URL");
  if (problems.length > 0) throw new ConfigError(problems.map(formatRedisProblem));
  // Advanced: how long a crashed process's permits stay taken (refreshed every third of it).
  const leaseTtlMs = redis.leaseTtlMs;
  const connection = new RedisConnection({
    ...redisOptionsFromEnv(options.redisUrl, env),
    connectionName: `sfn-operator:${options.holderName}`,
    onError: (operation) => metrics.redisErrors.inc({ operation }),
  });
  log.info("using the Redis semaphore: limits hold across every process sharing this Redis", {
    redis: redactRedisUrl(options.redisUrl),
    mode: redis.cluster ? "cluster" : redis.sentinels ? "sentinel" : "single",
  });
  return {
    connection,
    semaphoreFor: (settings, activityArn, limit) =>
      new RedisSemaphore({
        connection,
        activityArn,
        limit,
        name: settings.sourceName,
        holderName: options.holderName,
        ...(leaseTtlMs ? { leaseTtlMs } : {}),
        onLeasesLost: (count) => metrics.leasesLost.inc({ source: settings.sourceName }, count),
      }),
    close: () => connection.close(),
  };
}
