/**
 * An operator behind an egress proxy: it is started with HTTP_PROXY pointing at a real forward proxy
 * (the emulator is an http:// endpoint, as AWS's https:// one would use HTTPS_PROXY), creates the
 * activity through it, and writes the proxy into the poller Deployment with `.svc` added to NO_PROXY.
 * A poller started from that Deployment's pod environment then takes and reports a task through the
 * same proxy. The target's stand-in (a local server instead of the Service's `.svc` name) is
 * exempted as the Service would be; test/unit/poller-deployment.test.ts checks that `.svc` target
 * URLs skip the proxy under these variables.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { expect } from "chai";
import type { Redis } from "ioredis";
import type { Context } from "mocha";
import { semaphoreKeys } from "../../src/semaphore/redis/keys.ts";
import { awsEnvFor, CliProcess } from "../support/cli.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import {
  OperatorFixture,
  type OperatorProcess,
  service,
  source,
  waitForCondition,
} from "../support/operator.ts";
import { podEnvironment } from "../support/pod-env.ts";
import { ForwardProxy } from "../support/proxies.ts";
import { freePort, serverRunId } from "../support/redis.ts";
import { TestTarget } from "../support/target-server.ts";
import { until } from "../support/waiting.ts";
import { apply, eventually, getJson } from "./helpers.ts";

const NAME = "proxied";
const ARN = `arn:aws:states:us-east-1:123456789012:activity:${NAME}`;

describe("operator: behind an egress proxy, for itself and its pollers", function () {
  this.timeout(180_000);
  let fixture: OperatorFixture;
  let operator: OperatorProcess;
  let proxy: ForwardProxy;
  let target: TestTarget;
  let admin: Redis;
  let namespace: string;
  let poller: CliProcess | undefined;

  before(async function () {
    this.timeout(120_000);
    fixture = await OperatorFixture.start(testCluster());
    proxy = await new ForwardProxy().start();
    target = await new TestTarget().start();
    admin = fixture.redis.client();
    // The semaphore exists already (redis-semaphore.test.ts covers a new one's wait of a lease TTL).
    await admin.hset(semaphoreKeys(ARN).epoch, { since: 0, until: 0, run: await serverRunId(admin) });
    operator = await fixture.startOperator({
      env: { HTTP_PROXY: proxy.url, NO_PROXY: "kubernetes.default.svc" },
    });
    namespace = await fixture.sourceNamespace("proxy");
    await apply(testCluster(), [
      service(namespace, "proxied-svc"),
      source(namespace, NAME, { activityName: NAME, target: { service: "proxied-svc", path: "/work" } }),
    ]);
    await waitForCondition(testCluster(), namespace, NAME, "ActivityResolved", "True", undefined, 60_000);
  });

  afterEach(function (this: Context) {
    if (this.currentTest?.state !== "failed") return;
    console.error(fixture.outputs());
    if (poller) console.error(`--- poller\n${poller.tail(40)}`);
  });

  after(async () => {
    await poller?.stop();
    await target?.close();
    await proxy?.close();
    admin?.disconnect();
    await fixture?.close();
  });

  it("creates the activity through the proxy", () => {
    expect(proxy.forwarded.some((url) => url.startsWith(fixture.emulator.emulator.url))).to.equal(true);
    expect(operator.cli.output).to.not.contain("ECONNREFUSED");
  });

  it("writes the proxy into the poller Deployment, with the Services exempted", async () => {
    const deployment = await eventually("the poller Deployment", () =>
      getJson<V1Deployment>(testCluster(), ["deployment", "-n", namespace, `${NAME}-poller`]),
    );
    const env = deployment.spec?.template.spec?.containers[0]?.env ?? [];
    const proxyEnv = Object.fromEntries(
      env.filter((v) => /_proxy$/i.test(v.name)).map((v) => [v.name, v.value]),
    );
    expect(proxyEnv).to.deep.equal({ HTTP_PROXY: proxy.url, NO_PROXY: "kubernetes.default.svc,.svc" });
  });

  it("runs a poller from that Deployment whose AWS calls go through the proxy", async () => {
    const deployment = await getJson<V1Deployment>(testCluster(), [
      "deployment",
      "-n",
      namespace,
      `${NAME}-poller`,
    ]);
    if (deployment === undefined) throw new Error("no poller Deployment");
    const env = await podEnvironment(testCluster(), deployment, `${NAME}-poller-0`);
    expect(env.SFN_TARGET_URL).to.equal(`http://proxied-svc.${namespace}.svc:8080`);
    // The Service's name resolves only in a cluster: a local stand-in, exempted as `.svc` is.
    env.SFN_TARGET_URL = target.url;
    // By host and port: the emulator is on the same loopback address and must stay behind the proxy.
    env.NO_PROXY = `${env.NO_PROXY},${new URL(target.url).host}`;
    env.SFN_METRICS_PORT = String(await freePort());
    for (const [name, value] of Object.entries(awsEnvFor(fixture.emulator.emulator.url))) env[name] ??= value;
    const forwardedBefore = proxy.forwarded.length;
    poller = new CliProcess(["poller"], env);
    await poller.waitForLog((r) => r.message === "polling", 30_000);

    const { tasks } = await fixture.emulator.side.enqueue({ activityArn: ARN, input: { reply: "echo" } });
    const taskId = tasks[0]?.taskId;
    await until(
      async () =>
        (await fixture.emulator.side.listTasks({ activityArn: ARN })).find((t) => t.taskId === taskId)
          ?.status === "SUCCEEDED",
      60_000,
      "the task succeeded",
    );
    const viaProxy = proxy.forwarded.slice(forwardedBefore);
    expect(viaProxy.length, "the poller's AWS calls went through the proxy").to.be.greaterThan(1);
    expect(viaProxy.every((url) => url.startsWith(fixture.emulator.emulator.url))).to.equal(true);
    expect(target.requests.map((r) => r.path)).to.include("/work");
  });
});
