/**
 * Redis Cluster mode in the configuration: the `redis+cluster://` / `rediss+cluster://` spelling,
 * `SFN_REDIS_CLUSTER`, the combinations refused (with Sentinels, a database other than 0, a
 * contradicting `SFN_REDIS_CLUSTER=false`), every problem listed with the others, and the options the
 * connection hands to ioredis's Cluster.
 */
import { expect } from "chai";
import { ConfigError, parseLocalConfig } from "../../src/local/config.ts";
import { pollerConfigFromEnv } from "../../src/poller/env.ts";
import {
  clusterArguments,
  isClusterMode,
  redactRedisUrl,
  redisOptionsFromEnv,
} from "../../src/semaphore/redis/connection.ts";

const base = { SFN_ACTIVITY_NAME: "sum", SFN_TARGET_URL: "http://svc.ns:8080", SFN_TARGET_PATH: "/step/sum" };

function pollerIssues(env: NodeJS.ProcessEnv): string[] {
  try {
    pollerConfigFromEnv(env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error("expected the environment to be refused");
}

const source = "sources:\n  - activityName: sum\n    target: http://127.0.0.1:8080\n    path: /step/sum\n";

function fileIssues(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseLocalConfig(text, "sources.yaml", env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error("expected the file to be refused");
}

describe("Redis Cluster configuration", () => {
  describe("poller environment", () => {
    it("accepts redis+cluster:// and rediss+cluster:// URLs", () => {
      for (const url of ["redis+cluster://cfg.example:6379", "rediss+cluster://user@cfg.example:6380/0"]) {
        expect(pollerConfigFromEnv({ ...base, SFN_REDIS_URL: url }).redisUrl).to.equal(url);
      }
    });

    it("accepts SFN_REDIS_CLUSTER=true or false with a plain URL, and knows the variable", () => {
      for (const value of ["true", "TRUE", "false"]) {
        const config = pollerConfigFromEnv({
          ...base,
          SFN_REDIS_URL: "redis://cfg.example:6379",
          SFN_REDIS_CLUSTER: value,
        });
        expect(config.warnings).to.deep.equal([]);
      }
    });

    it("refuses cluster mode with Sentinels, a database, a contradicting or malformed SFN_REDIS_CLUSTER", () => {
      expect(
        pollerIssues({
          ...base,
          SFN_REDIS_URL: "redis+cluster://cfg.example:6379/2",
          SFN_REDIS_CLUSTER: "false",
          SFN_REDIS_SENTINELS: "s1:26379,s2",
        }),
      ).to.deep.equal([
        'SFN_REDIS_URL: must not select a database with Redis Cluster (a cluster has only database 0), got "2"',
        "SFN_REDIS_CLUSTER: is false but SFN_REDIS_URL is a cluster URL (redis+cluster://); unset one of them",
        'SFN_REDIS_SENTINELS: "s2" is not host:port',
        "SFN_REDIS_SENTINELS: cannot be used with Redis Cluster (chosen by the redis+cluster:// URL in SFN_REDIS_URL): Sentinel serves a non-clustered Redis; unset one of them",
      ]);
      expect(
        pollerIssues({
          ...base,
          SFN_MAX_CONCURRENCY: "0",
          SFN_REDIS_URL: "redis://r:6379",
          SFN_REDIS_CLUSTER: "yes",
          SFN_REDIS_LEASE_TTL: "1h",
        }),
      ).to.deep.equal([
        "SFN_MAX_CONCURRENCY: must be at least 1, got 0",
        'SFN_REDIS_CLUSTER: must be true or false, got "yes"',
        'SFN_REDIS_LEASE_TTL: must be from 6s to 10m, got "1h"',
      ]);
      expect(
        pollerIssues({
          ...base,
          SFN_REDIS_URL: "redis://r:6379",
          SFN_REDIS_CLUSTER: "true",
          SFN_REDIS_SENTINELS: "s1:26379",
        }),
      ).to.deep.equal([
        "SFN_REDIS_SENTINELS: cannot be used with Redis Cluster (chosen by SFN_REDIS_CLUSTER=true): Sentinel serves a non-clustered Redis; unset one of them",
      ]);
    });

    it("names the cluster schemes when a URL tries another spelling of cluster", () => {
      expect(pollerIssues({ ...base, SFN_REDIS_URL: "redis-cluster://r:6379" })).to.deep.equal([
        'SFN_REDIS_URL: must be a redis+cluster:// or rediss+cluster:// URL for Redis Cluster, such as "redis+cluster://127.0.0.1:7000", got "redis-cluster://r:6379"',
      ]);
    });

    it("reads the Redis variables only with a Redis URL", () => {
      expect(
        pollerConfigFromEnv({ ...base, SFN_REDIS_CLUSTER: "maybe", SFN_REDIS_SENTINELS: "x" }).warnings,
      ).to.deep.equal([]);
    });
  });

  describe("local-mode sources file", () => {
    it("accepts a cluster URL", () => {
      const config = parseLocalConfig(`redis: rediss+cluster://cfg.example:6379\n${source}`, "sources.yaml");
      expect(config.redisUrl).to.equal("rediss+cluster://cfg.example:6379");
    });

    it("lists the file's problems, then the variables' that do not go with its URL", () => {
      expect(
        fileIssues(`redis: redis+cluster://cfg.example:6379/1\n${source}  - activityName: sum\n`, {
          SFN_REDIS_SENTINELS: "s1:26379",
        }),
      ).to.deep.equal([
        'sources.yaml: redis: must not select a database with Redis Cluster (a cluster has only database 0), got "1"',
        "sources.yaml: sources[1] (sum): target: is required",
        "sources.yaml: sources[1] (sum): path: is required",
        "sources.yaml: sources[1] (sum): activityName: duplicate of sources[0]",
        "SFN_REDIS_SENTINELS: cannot be used with Redis Cluster (chosen by the redis+cluster:// URL in sources.yaml (redis)): Sentinel serves a non-clustered Redis; unset one of them",
      ]);
    });

    it("takes SFN_REDIS_CLUSTER=true as cluster mode for a redis:// URL too", () => {
      expect(
        fileIssues(`redis: redis://cfg.example:6379\n${source}`, {
          SFN_REDIS_CLUSTER: "true",
          SFN_REDIS_SENTINELS: "s1:26379",
        }),
      ).to.deep.equal([
        "SFN_REDIS_SENTINELS: cannot be used with Redis Cluster (chosen by SFN_REDIS_CLUSTER=true): Sentinel serves a non-clustered Redis; unset one of them",
      ]);
    });
  });

  describe("connection options", () => {
    it("chooses cluster mode by the scheme or by SFN_REDIS_CLUSTER", () => {
      expect(redisOptionsFromEnv("redis+cluster://cfg:6379", {})).to.deep.equal({
        url: "redis+cluster://cfg:6379",
        cluster: true,
      });
      expect(redisOptionsFromEnv("redis://cfg:6379", { SFN_REDIS_CLUSTER: "true" })).to.deep.equal({
        url: "redis://cfg:6379",
        cluster: true,
      });
      expect(redisOptionsFromEnv("redis://cfg:6379", {})).to.deep.equal({ url: "redis://cfg:6379" });
      expect(isClusterMode({ url: "rediss+cluster://cfg:6379" })).to.equal(true);
      expect(isClusterMode({ url: "rediss://cfg:6379" })).to.equal(false);
      expect(() => redisOptionsFromEnv("redis+cluster://cfg", { SFN_REDIS_SENTINELS: "s:1" })).to.throw(
        ConfigError,
        /cannot be used with Redis Cluster/,
      );
    });

    it("seeds the cluster with the URL's node; TLS, credentials and fail-fast commands for every node", () => {
      const [nodes, options] = clusterArguments(
        {
          url: "rediss+cluster://app:url%40pw@cfg.example.cache.amazonaws.com:6380",
          password: "from-env",
          cluster: true,
          connectionName: "sfn-operator:pod-1",
        },
        false,
      );
      expect(nodes).to.deep.equal([{ host: "cfg.example.cache.amazonaws.com", port: 6380 }]);
      expect(options.enableOfflineQueue).to.equal(false);
      expect(options.clusterNodeRetryStrategy).to.be.a("function");
      expect(options.redisOptions).to.deep.include({
        username: "app",
        password: "from-env",
        tls: {},
        maxRetriesPerRequest: 1,
        commandTimeout: 2000,
        connectionName: "sfn-operator:pod-1",
      });
      // ElastiCache with TLS: host names are kept (the certificates name them), not resolved.
      let resolved: string | undefined;
      options.dnsLookup?.("node-1.example", (_error, address) => {
        resolved = address;
      });
      expect(resolved).to.equal("node-1.example");

      const [, subscriber] = clusterArguments({ url: "redis+cluster://u:p%40ss@[::1]:7000" }, true);
      expect(subscriber.enableOfflineQueue).to.equal(true);
      expect(subscriber.dnsLookup).to.equal(undefined);
      expect(subscriber.redisOptions).to.deep.include({
        username: "u",
        password: "p@ss",
        maxRetriesPerRequest: null,
      });
      expect(subscriber.redisOptions).not.to.have.property("tls");
      expect(clusterArguments({ url: "redis+cluster://[::1]:7000" }, false)[0]).to.deep.equal([
        { host: "::1", port: 7000 },
      ]);
    });

    it("never logs a cluster URL's password", () => {
      expect(redactRedisUrl("rediss+cluster://app:s3cret@cfg:6379")).to.equal(
        "rediss+cluster://app:***@cfg:6379",
      );
    });
  });
});
