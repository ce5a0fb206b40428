/**
 * The Redis settings beyond the URL, read from the environment by both `poller` and `local`
 * (`SFN_REDIS_PASSWORD`, `SFN_REDIS_CLUSTER`, `SFN_REDIS_SENTINELS`, `SFN_REDIS_SENTINEL_MASTER`,
 * `SFN_REDIS_LEASE_TTL`), and the checks between them and the URL. They are read only when a Redis
 * URL is configured: without one there is no Redis connection for them to change.
 *
 * The checks return every problem, one line each, so that the callers list them with the other
 * configuration problems (exit 2) instead of failing on the first one when the semaphore starts.
 */
import { describeValue, isRedisClusterUrl } from "../../api/fields.ts";
import { leaseTtlFromText } from "./limits.ts";

/** A problem with one Redis setting, named as the user wrote it (a variable, or a file field). */
export interface RedisSettingProblem {
  /** `SFN_REDIS_SENTINELS`, or whatever the caller calls the URL (`SFN_REDIS_URL`, `sources.yaml: redis`). */
  setting: string;
  message: string;
}

export interface RedisSettings {
  /** Redis Cluster mode: the URL's `+cluster` scheme, or `SFN_REDIS_CLUSTER=true`. */
  cluster: boolean;
  sentinels?: Array<{ host: string; port: number }>;
  sentinelMaster?: string;
  leaseTtlMs?: number;
  password?: string;
}

/** An empty variable counts as unset, as for every other variable (src/poller/env.ts). */
function read(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === "" ? undefined : value;
}

/**
 * The Redis settings for `url` from `env`, with every problem found. `urlSetting` names the URL in
 * messages (`SFN_REDIS_URL` for the poller, `<file>: redis` for local mode). The URL itself is assumed
 * to have passed `redisUrlSchema`.
 */
export function redisSettingsFromEnv(
  url: string,
  env: NodeJS.ProcessEnv,
  urlSetting: string,
): { settings: RedisSettings; problems: RedisSettingProblem[] } {
  const problems: RedisSettingProblem[] = [];
  const problem = (setting: string, message: string): void => {
    problems.push({ setting, message });
  };
  const settings: RedisSettings = { cluster: false };

  const clusterUrl = isRedisClusterUrl(url);
  const clusterText = read(env, "SFN_REDIS_CLUSTER");
  let clusterVariable: boolean | undefined;
  if (clusterText !== undefined) {
    if (/^true$/i.test(clusterText)) clusterVariable = true;
    else if (/^false$/i.test(clusterText)) clusterVariable = false;
    else problem("SFN_REDIS_CLUSTER", `must be true or false, got ${describeValue(clusterText)}`);
  }
  if (clusterVariable === false && clusterUrl) {
    problem(
      "SFN_REDIS_CLUSTER",
      `is false but ${urlSetting} is a cluster URL (${new URL(url).protocol}//); unset one of them`,
    );
  }
  settings.cluster = clusterUrl || clusterVariable === true;
  const clusterChosenBy = clusterUrl
    ? `the ${new URL(url).protocol}// URL in ${urlSetting}`
    : "SFN_REDIS_CLUSTER=true";

  if (settings.cluster) {
    // ioredis's Cluster has no SELECT: every node serves database 0 only.
    const path = new URL(url).pathname;
    if (path !== "" && path !== "/" && path !== "/0") {
      problem(
        urlSetting,
        `must not select a database with Redis Cluster (a cluster has only database 0), got ${describeValue(path.slice(1))}`,
      );
    }
  }

  const sentinelsText = read(env, "SFN_REDIS_SENTINELS");
  if (sentinelsText !== undefined) {
    const sentinels: Array<{ host: string; port: number }> = [];
    for (const entry of sentinelsText.split(",")) {
      const [host, port, ...rest] = entry.trim().split(":");
      const portNumber = Number(port);
      if (
        !host ||
        !port ||
        rest.length > 0 ||
        !Number.isInteger(portNumber) ||
        portNumber < 1 ||
        portNumber > 65535
      ) {
        problem("SFN_REDIS_SENTINELS", `"${entry.trim()}" is not host:port`);
      } else {
        sentinels.push({ host, port: portNumber });
      }
    }
    if (settings.cluster) {
      // Sentinel fails over a single primary; a cluster elects its own primaries per shard. A client
      // cannot follow both, and guessing which one was meant could put the semaphore on the wrong Redis.
      problem(
        "SFN_REDIS_SENTINELS",
        `cannot be used with Redis Cluster (chosen by ${clusterChosenBy}): Sentinel serves a non-clustered Redis; unset one of them`,
      );
    }
    if (new URL(url).protocol === "rediss:") {
      // ioredis would connect to the Sentinels and the master in plain text despite the URL's scheme
      // (TLS through Sentinel needs options of its own that nothing here sets or tests): refuse it
      // rather than send the password and the semaphore in clear.
      problem(
        "SFN_REDIS_SENTINELS",
        `cannot be used with a rediss:// URL in ${urlSetting}: TLS through Sentinel is not supported; use a redis:// URL with Sentinel, or rediss:// without it`,
      );
    }
    settings.sentinels = sentinels;
    settings.sentinelMaster = read(env, "SFN_REDIS_SENTINEL_MASTER") ?? "mymaster";
  }

  const ttlText = read(env, "SFN_REDIS_LEASE_TTL");
  if (ttlText !== undefined) {
    const ttl = leaseTtlFromText(ttlText);
    if ("problem" in ttl) problem("SFN_REDIS_LEASE_TTL", ttl.problem);
    else settings.leaseTtlMs = ttl.ms;
  }

  const password = env.SFN_REDIS_PASSWORD;
  if (password) settings.password = password;
  return { settings, problems };
}

/** `SETTING: message`, the one-line form of a problem. */
export function formatRedisProblem(problem: RedisSettingProblem): string {
  return `${problem.setting}: ${problem.message}`;
}
