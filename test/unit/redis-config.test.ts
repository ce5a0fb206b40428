import { expect } from "chai";
import { ConfigError } from "../../src/api/fields.ts";
import { PollerMetrics } from "../../src/observability/metrics.ts";
import { createSemaphoreFactory } from "../../src/semaphore/factory.ts";
import {
  redactRedisUrl,
  redisOptionsFromEnv,
  sentinelOptions,
} from "../../src/semaphore/redis/connection.ts";
import { semaphoreKeys } from "../../src/semaphore/redis/keys.ts";
import { COMMAND_TIMEOUT_MS, MIN_LEASE_TTL_MS } from "../../src/semaphore/redis/limits.ts";
import { RedisSemaphore } from "../../src/semaphore/redis/redis-semaphore.ts";

describe("Redis connection settings", () => {
  it("takes the password and Sentinels from the environment", () => {
    const options = redisOptionsFromEnv("redis://redis:6379", {
      SFN_REDIS_PASSWORD: "s3cret",
      SFN_REDIS_SENTINELS: "10.0.0.1:26379, sentinel-2:26380",
      SFN_REDIS_SENTINEL_MASTER: "primary",
    });
    expect(options).to.deep.equal({
      url: "redis://redis:6379",
      password: "s3cret",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "sentinel-2", port: 26380 },
      ],
      sentinelMaster: "primary",
    });
  });

  it("refuses a Sentinel address without a port", () => {
    expect(() => redisOptionsFromEnv("redis://x", { SFN_REDIS_SENTINELS: "sentinel-1" })).to.throw(
      /host:port/,
    );
  });

  it("refuses a rediss:// URL with Sentinels rather than connect in plain text", () => {
    expect(() =>
      redisOptionsFromEnv("rediss://x:6380", { SFN_REDIS_SENTINELS: "sentinel-1:26379" }),
    ).to.throw(
      /SFN_REDIS_SENTINELS: cannot be used with a rediss:\/\/ URL .*TLS through Sentinel is not supported/,
    );
  });

  it("keeps the URL's database and ACL user with Sentinels (ioredis gets no URL then)", () => {
    const options = redisOptionsFromEnv("redis://semaphores@ignored:6379/3", {
      SFN_REDIS_PASSWORD: "s3cret",
      SFN_REDIS_SENTINELS: "sentinel-1:26379",
    });
    expect(sentinelOptions(options)).to.deep.equal({
      sentinels: [{ host: "sentinel-1", port: 26379 }],
      name: "mymaster",
      db: 3,
      username: "semaphores",
      password: "s3cret",
    });
    expect(
      sentinelOptions(redisOptionsFromEnv("redis://ignored:6379", { SFN_REDIS_SENTINELS: "s:1" })),
    ).to.deep.equal({
      sentinels: [{ host: "s", port: 1 }],
      name: "mymaster",
    });
  });

  it("never logs a password", () => {
    expect(redactRedisUrl("redis://user:pa55@host:6379/2")).to.equal("redis://user:***@host:6379/2");
    expect(redactRedisUrl("rediss://host:6380")).to.equal("rediss://host:6380");
    // ioredis takes a password from the query too.
    expect(redactRedisUrl("redis://host:6379/2?password=pa55&family=6")).to.equal(
      "redis://host:6379/2?password=***&family=6",
    );
  });
});

describe("semaphore keys", () => {
  it("share one Redis Cluster hash tag derived from the activity ARN", () => {
    const keys = semaphoreKeys("arn:aws:states:eu-west-1:123456789012:activity:resize");
    const tag = "{sfn-operator:arn:aws:states:eu-west-1:123456789012:activity:resize}";
    expect(keys).to.deep.equal({
      holders: `${tag}:holders`,
      released: `${tag}:released`,
      waiting: `${tag}:waiting`,
      queue: `${tag}:queue`,
      epoch: `${tag}:epoch`,
    });
  });
});

describe("Redis lease TTL bounds", () => {
  it("needs a lease to outlive a refresh that times out entirely and the next one", () => {
    expect(MIN_LEASE_TTL_MS).to.equal(3 * COMMAND_TIMEOUT_MS);
  });

  it("refuses SFN_REDIS_LEASE_TTL below the minimum, saying what it is", () => {
    const factory = () =>
      createSemaphoreFactory({
        redisUrl: "redis://127.0.0.1:1",
        env: { SFN_REDIS_LEASE_TTL: "500ms" },
        holderName: "test",
        metrics: new PollerMetrics(),
      });
    expect(factory)
      .to.throw(ConfigError)
      .with.property("message", 'SFN_REDIS_LEASE_TTL: must be from 6s to 10m, got "500ms"');
  });

  it("refuses it in the RedisSemaphore constructor too, for programmatic use", () => {
    // Checked before the connection is used: a stand-in that fails on any use shows it.
    const connection = new Proxy(
      {},
      {
        get() {
          throw new Error("the connection was used");
        },
      },
    ) as ConstructorParameters<typeof RedisSemaphore>[0]["connection"];
    expect(() => new RedisSemaphore({ connection, activityArn: "arn", limit: 1, leaseTtlMs: 500 }))
      .to.throw(RangeError)
      .with.property("message", "RedisSemaphore leaseTtlMs: must be from 6s to 10m, got 500ms");
  });
});
