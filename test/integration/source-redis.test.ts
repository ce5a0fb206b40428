/**
 * The operator's Redis connections (src/operator/source-redis.ts) against a real redis-server.
 */
import { ApiException, type CoreV1Api } from "@kubernetes/client-node";
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

  it("says which chart value grants the Secret read when the API server forbids it", async () => {
    const forbidden = new ApiException(
      403,
      "Forbidden",
      JSON.stringify({
        kind: "Status",
        code: 403,
        reason: "Forbidden",
        message:
          'secrets "other-redis" is forbidden: User "system:serviceaccount:sfn-system:sfn-operator" cannot get resource "secrets"',
      }),
      {},
    );
    const sources = new SourceRedis({
      env: {},
      defaultUrl: redis.url,
      core: { readNamespacedSecret: () => Promise.reject(forbidden) } as unknown as CoreV1Api,
      apiTimeoutMs: 1_000,
      identity: "test",
    });
    const target = {
      url: redis.url.replace("127.0.0.1", "localhost"),
      passwordSecret: { namespace: "team-a", name: "other-redis", key: "password" },
    };
    try {
      const error = await sources.ensureLimit(target, arnOf("forbidden"), 1).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).to.equal(forbidden);
      expect(sources.problem(target)).to.match(
        /^cannot read Secret team-a\/other-redis for the Redis password: HTTP 403: secrets "other-redis" is forbidden: .* \(the operator may read Secrets only when installed with the chart value rbac\.sourceRedisSecrets=true\)$/,
      );
    } finally {
      await sources.close();
    }
  });
});
