import { expect } from "chai";
import { redactRedisUrl, redisOptionsFromEnv } from "../../src/semaphore/redis/connection.ts";
import { semaphoreKeys } from "../../src/semaphore/redis/keys.ts";

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

  it("never logs a password", () => {
    expect(redactRedisUrl("redis://user:pa55@host:6379/2")).to.equal("redis://user:***@host:6379/2");
    expect(redactRedisUrl("rediss://host:6380")).to.equal("rediss://host:6380");
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
    });
  });
});
