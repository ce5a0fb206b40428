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
import { leaseTtlFromText } from "./redis/limits.ts";
import { RedisSemaphore } from "./redis/redis-semaphore.ts";
import type { Semaphore } from "./semaphore.ts";

export interface SemaphoreFactory {
  /** A semaphore for the source with the given activity ARN, limited to `limit`. */
  semaphoreFor(settings: PollerSettings, activityArn: string, limit: number): Semaphore;
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
  // Advanced: how long a crashed process's permits stay taken (refreshed every third of it).
  const leaseTtlMs = env.SFN_REDIS_LEASE_TTL ? leaseTtlFrom(env.SFN_REDIS_LEASE_TTL) : undefined;
  const connection = new RedisConnection({
    ...redisOptionsFromEnv(options.redisUrl, env),
    connectionName: `sfn-operator:${options.holderName}`,
    onError: (operation) => metrics.redisErrors.inc({ operation }),
  });
  log.info("using the Redis semaphore: limits hold across every process sharing this Redis", {
    redis: redactRedisUrl(options.redisUrl),
  });
  return {
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

/** The lease TTL from `SFN_REDIS_LEASE_TTL` (already checked by the poller with its other variables). */
function leaseTtlFrom(text: string): number {
  const ttl = leaseTtlFromText(text);
  if ("problem" in ttl) throw new ConfigError([`SFN_REDIS_LEASE_TTL: ${ttl.problem}`]);
  return ttl.ms;
}
