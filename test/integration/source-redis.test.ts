/**
 * The operator's Redis connections (src/operator/source-redis.ts) against a real redis-server.
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import { expect } from "chai";
import { SourceRedis } from "../../src/operator/source-redis.ts";
import { sourceStateKeys } from "../../src/semaphore/redis/keys.ts";
import { RedisServer } from "../support/redis.ts";

const arnOf = (name: string): string => `arn:aws:states:us-east-1:123456789012:activity:${name}`;

describe("SourceRedis against a real Redis", () => {
  let redis: RedisServer;

  before(async () => {
    redis = await RedisServer.start();
  });

  after(async () => {
    await redis?.stop();
  });

  it("serves uses that arrive while its first connection is still opening", async () => {
    // An operator that starts reconciles several sources at once, and each first writes its limit:
    // before the fix, every use but the first got the connection before it was ready and failed
    // ("Stream isn't writeable"), which flapped SemaphoreHealthy and wrote status on every start.
    const sources = new SourceRedis({
      env: {},
      defaultUrl: redis.url,
      core: {} as CoreV1Api, // only read for a source's own password Secret
      apiTimeoutMs: 1_000,
      identity: "test",
    });
    const client = redis.client();
    try {
      const target = { url: redis.url };
      const names = ["a", "b", "c", "d", "e"];
      await Promise.all(names.map((name, index) => sources.ensureLimit(target, arnOf(name), index + 1)));
      for (const [index, name] of names.entries()) {
        expect(await client.get(sourceStateKeys(arnOf(name)).limit)).to.equal(String(index + 1));
      }
      expect(sources.problem(target)).to.equal(undefined);
    } finally {
      client.disconnect();
      await sources.close();
    }
  });
});
