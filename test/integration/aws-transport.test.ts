/**
 * The transport of our Step Functions calls (the SDK's NodeHttpHandler as src/aws/step-functions.ts
 * and src/aws/transport.ts configure it), with the real SDK, the emulator and real local proxies:
 *
 * - the regression of issue 10 item 3: long polls on sockets reused behind `Keep-Alive: timeout=5`
 *   must not be given up after 4 s (a task handed to the abandoned poll was lost);
 * - HTTPS_PROXY / HTTP_PROXY / NO_PROXY, through a real forward proxy (CONNECT and absolute URIs);
 * - our timeouts, pools and retries, as configured (not the library's internals).
 *
 * Imports only what existed before the fix as well (StepFunctions, Poller), so that the regression
 * test can be run against the old transport.
 */
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { expect } from "chai";
import type { PollerSettings } from "../../src/api/types.ts";
import { StepFunctions } from "../../src/aws/step-functions.ts";
import { EmulatorClient, type RunningEmulator, startEmulator } from "../../src/emulator/index.ts";
import { PollerMetrics } from "../../src/observability/metrics.ts";
import { Poller } from "../../src/poller/poller.ts";
import { InProcessSemaphore } from "../../src/semaphore/in-process.ts";
import { HttpTarget } from "../../src/target/http-target.ts";
import { awsEnvFor } from "../support/cli.ts";
import { createPki } from "../support/cluster-pki.ts";
import { ForwardProxy, type ProxiedRequest, ReverseProxy } from "../support/proxies.ts";
import { TestTarget } from "../support/target-server.ts";

const PROXY_VARIABLES = [
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
  "ALL_PROXY",
  "all_proxy",
];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The error `promise` rejects with; fails the test if it resolves. */
async function failure(promise: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  const result = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in result)) throw new Error(`expected a failure, got ${JSON.stringify(result.value)}`);
  expect(result.error).to.be.instanceOf(Error);
  return result.error as NodeJS.ErrnoException;
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("AWS transport (the SDK's NodeHttpHandler as we configure it)", function () {
  this.timeout(90_000);
  const savedEnv = { ...process.env };
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeEach(() => {
    for (const name of PROXY_VARIABLES) delete process.env[name];
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    process.env = { ...savedEnv };
  });

  async function emulatorWith(
    longPollSeconds: number,
  ): Promise<{ emulator: RunningEmulator; side: EmulatorClient }> {
    const emulator = await startEmulator({ port: 0, longPollSeconds });
    cleanups.push(() => emulator.close());
    return { emulator, side: new EmulatorClient(emulator.url) };
  }

  function stepFunctionsVia(endpoint: string, errors: string[] = [], maxAttempts = 5): StepFunctions {
    Object.assign(process.env, awsEnvFor(endpoint));
    const sfn = new StepFunctions({
      workerName: "transport-test",
      maxConcurrentPolls: 1,
      maxAttempts,
      onAwsError: (api, code) => errors.push(`${api}:${code}`),
    });
    cleanups.push(() => sfn.destroy());
    return sfn;
  }

  describe("long polls behind a proxy that answers Keep-Alive: timeout=5 (issue 10, item 3)", () => {
    it("keeps polls on reused sockets open past 4 s, and every task enqueued meanwhile is completed by the worker", async () => {
      const { emulator, side } = await emulatorWith(9);
      const proxy = await new ReverseProxy({ upstream: emulator.url }).start();
      cleanups.push(() => proxy.close());
      const target = await new TestTarget().start();
      cleanups.push(() => target.close());
      const errors: string[] = [];
      const stepFunctions = stepFunctionsVia(proxy.url(), errors);
      const settings: PollerSettings = {
        sourceName: "keepalive",
        activityName: "keepalive",
        targetUrl: `${target.url}/work`,
        maxConcurrency: 1,
        concurrencyPerPoller: 1,
        requestTimeoutMs: 5000,
        heartbeatIntervalMs: 10_000,
      };
      const poller = new Poller(settings, {
        stepFunctions,
        semaphoreFor: () => new InProcessSemaphore(1),
        target: new HttpTarget(settings.targetUrl, 1),
        metrics: new PollerMetrics({ defaultMetrics: false }),
      });
      const running = poller.start(1);
      cleanups.push(async () => {
        poller.stop();
        await running;
      });

      // A first task, taken by the first poll; the loop's next polls go on the now reused socket.
      const taskIds: string[] = [];
      const enqueue = async (): Promise<void> => {
        const { tasks } = await side.enqueue({
          activityName: "keepalive",
          input: { reply: "json" },
          timeoutSeconds: 60,
        });
        taskIds.push(tasks[0]?.taskId as string);
      };
      await enqueue();
      await side.waitForTasks({ closedCount: 1 }, 10_000);

      // Three rounds: wait for a poll on a reused connection, let it pass the 4 s mark (6 s), then
      // enqueue a task, which that very poll must receive. Between rounds 2 and 3, one poll runs its
      // whole 9 s empty on a reused connection.
      const pollInFlightOnReusedConnection = async (): Promise<ProxiedRequest> => {
        let found: ProxiedRequest | undefined;
        await until(
          "a poll in flight on a reused connection",
          () => {
            const last = proxy.polls().at(-1);
            found = last && last.endedAt === undefined && last.onConnection > 1 ? last : undefined;
            return found !== undefined;
          },
          15_000,
        );
        return found as ProxiedRequest;
      };
      for (let round = 0; round < 3; round++) {
        let poll = await pollInFlightOnReusedConnection();
        if (round === 2) {
          const empty = poll;
          await until("an empty 9 s poll to end", () => empty.endedAt !== undefined, 15_000);
          poll = await pollInFlightOnReusedConnection();
        }
        await sleep(Math.max(0, 6_000 - (performance.now() - poll.startedAt)));
        await enqueue();
        await side.waitForTasks({ closedCount: taskIds.length }, 10_000).catch(async (error: unknown) => {
          const stuck = await side.listTasks({ status: "STARTED" });
          throw new Error(
            `round ${round}: the task enqueued 6 s into a poll was not completed (${stuck.length} STARTED with no worker); SDK errors: ${errors.join(", ") || "none"}`,
            { cause: error },
          );
        });
      }

      for (const taskId of taskIds) expect((await side.getTask(taskId)).status).to.equal("SUCCEEDED");
      expect(await side.listTasks({ status: "STARTED" }), "tasks left STARTED").to.have.length(0);
      expect(errors, "no call failed (a TimeoutError here is a poll given up)").to.deep.equal([]);
      const reusedPolls = proxy.polls().filter((p) => p.onConnection > 1);
      expect(reusedPolls.length, "polls on reused connections").to.be.at.least(4);
      expect(
        proxy.polls().filter((p) => p.clientGone),
        "polls the client gave up",
      ).to.have.length(0);
      // The emptied poll really lasted its 9 s on a reused socket.
      expect(
        reusedPolls.some((p) => p.endedAt !== undefined && p.endedAt - p.startedAt > 8_500),
        "a reused poll that lasted the whole long poll",
      ).to.equal(true);
    });
  });

  describe("HTTPS_PROXY / HTTP_PROXY / NO_PROXY", () => {
    async function serveTasks(
      sfn: StepFunctions,
      side: EmulatorClient,
      name: string,
      count: number,
    ): Promise<void> {
      const arn = await sfn.resolveActivityArn(name);
      await side.enqueue({ activityArn: arn, input: { n: 1 }, count });
      for (let i = 0; i < count; i++) {
        const task = await sfn.getActivityTask(arn);
        expect(task, "a task").to.not.equal(undefined);
        expect(await sfn.sendTaskSuccess(task?.taskToken as string, '{"ok":true}')).to.deep.equal({
          kind: "accepted",
        });
      }
      await side.waitForTasks({ closedCount: count }, 5_000);
    }

    it("sends http endpoint calls to HTTP_PROXY as absolute-URI requests, over kept-alive connections", async () => {
      const { emulator, side } = await emulatorWith(1);
      const proxy = await new ForwardProxy().start();
      cleanups.push(() => proxy.close());
      process.env.HTTP_PROXY = proxy.url;
      const sfn = stepFunctionsVia(emulator.url);
      await serveTasks(sfn, side, "via-http-proxy", 3);
      // CreateActivity, then 3 x (GetActivityTask + SendTaskSuccess).
      expect(proxy.forwarded).to.have.length(7);
      expect(proxy.forwarded.every((url) => url.startsWith(`${emulator.url}/`))).to.equal(true);
      expect(proxy.connections, "one connection per pool, reused").to.equal(2);
      expect((await side.stats()).requests.GetActivityTask).to.equal(3);
    });

    it("honours the lowercase http_proxy too, and NO_PROXY / no_proxy covering the endpoint bypasses the proxy", async () => {
      const { emulator, side } = await emulatorWith(1);
      const proxy = await new ForwardProxy().start();
      cleanups.push(() => proxy.close());
      process.env.http_proxy = proxy.url;
      const proxied = stepFunctionsVia(emulator.url);
      await serveTasks(proxied, side, "lowercase", 1);
      expect(proxy.forwarded).to.have.length(3);

      const port = new URL(emulator.url).port;
      for (const [variable, value] of [
        ["NO_PROXY", "127.0.0.1"],
        ["no_proxy", `example.com, 127.0.0.1:${port}`],
      ] as const) {
        delete process.env.NO_PROXY;
        delete process.env.no_proxy;
        process.env[variable] = value;
        const before = proxy.forwarded.length;
        const direct = stepFunctionsVia(emulator.url);
        await serveTasks(direct, side, `bypass-${variable}`, 1);
        expect(proxy.forwarded.length, `${variable}=${value}`).to.equal(before);
      }
      // A NO_PROXY entry for another port does not match.
      delete process.env.no_proxy;
      process.env.NO_PROXY = "127.0.0.1:1";
      const before = proxy.forwarded.length;
      await serveTasks(stepFunctionsVia(emulator.url), side, "other-port", 1);
      expect(proxy.forwarded.length).to.equal(before + 3);
    });

    it("tunnels https endpoint calls through HTTPS_PROXY with CONNECT, verifying the endpoint's certificate end to end", async function () {
      this.timeout(60_000);
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-proxy-tls-"));
      const defaults = tls.getCACertificates("default");
      cleanups.push(async () => {
        tls.setDefaultCACertificates(defaults);
        await fs.rm(dir, { recursive: true, force: true });
      });
      const pki = await createPki(dir);
      const { emulator, side } = await emulatorWith(1);
      // TLS in front of the emulator: the https endpoint.
      const endpoint = await new ReverseProxy({
        upstream: emulator.url,
        tls: { key: await fs.readFile(pki.serving.key), cert: await fs.readFile(pki.serving.cert) },
      }).start();
      cleanups.push(() => endpoint.close());
      const proxy = await new ForwardProxy({
        credentials: { user: "proxy-user", password: "s3cret/pass" },
      }).start();
      cleanups.push(() => proxy.close());
      const proxyUrl = new URL(proxy.url);
      proxyUrl.username = "proxy-user";
      proxyUrl.password = encodeURIComponent("s3cret/pass");
      process.env.HTTPS_PROXY = proxyUrl.href;

      // Not trusted yet: the TLS handshake inside the tunnel must fail.
      const untrusted = stepFunctionsVia(endpoint.url("localhost"));
      const refused = await failure(untrusted.resolveActivityArn("tls"));
      expect(String(refused.code ?? refused.message)).to.match(/CERT|SIGNATURE|SIGNED|certificate/i);
      expect(proxy.tunnels.length, "the failed calls went through the tunnel too").to.be.greaterThan(0);
      expect(endpoint.requests, "no request reached the endpoint").to.have.length(0);

      tls.setDefaultCACertificates([...defaults, await fs.readFile(pki.ca.cert, "utf8")]);
      const tunnels = proxy.tunnels.length;
      const trusting = stepFunctionsVia(endpoint.url("localhost"));
      await serveTasks(trusting, side, "tls", 2);
      expect(proxy.tunnels.slice(tunnels).every((t) => t === `localhost:${endpoint.port}`)).to.equal(true);
      expect(proxy.tunnels.length - tunnels, "one tunnel per pool, kept alive").to.equal(2);
      expect(endpoint.requests).to.have.length(5);
      expect(proxy.forwarded, "nothing in clear through the proxy").to.have.length(0);
      expect(proxy.refused, "the credentials from HTTPS_PROXY were sent").to.equal(0);
    });

    it("the credential chain's STS call (IRSA web identity) takes the same proxy route as the Step Functions calls", async () => {
      const { emulator, side } = await emulatorWith(1);
      const proxy = await new ForwardProxy().start();
      cleanups.push(() => proxy.close());
      const assumed: string[] = [];
      const sts = http.createServer((req, res) => {
        let body = "";
        req.on("data", (chunk: Buffer) => {
          body += chunk.toString();
        });
        req.on("end", () => {
          assumed.push(new URLSearchParams(body).get("Action") ?? "");
          res.writeHead(200, { "content-type": "text/xml" }).end(
            `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
              <AssumeRoleWithWebIdentityResult>
                <Credentials><AccessKeyId>ASIAFAKESTS</AccessKeyId><SecretAccessKey>sts-secret</SecretAccessKey>
                  <SessionToken>sts-session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
                <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/poller/s</Arn><AssumedRoleId>AROAFAKE:s</AssumedRoleId></AssumedRoleUser>
              </AssumeRoleWithWebIdentityResult>
              <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
            </AssumeRoleWithWebIdentityResponse>`,
          );
        });
      });
      sts.listen(0, "127.0.0.1");
      await new Promise((resolve) => sts.once("listening", resolve));
      cleanups.push(async () => {
        sts.closeAllConnections();
        await new Promise((resolve) => sts.close(resolve));
      });
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-irsa-"));
      cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
      await fs.writeFile(path.join(dir, "token"), "eyJ.fake.jwt");
      const sfn = stepFunctionsVia(emulator.url);
      // No static credentials: the chain reaches the web identity provider, as in a pod with IRSA.
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      Object.assign(process.env, {
        AWS_CONFIG_FILE: path.join(dir, "no-config"),
        AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "no-credentials"),
        AWS_WEB_IDENTITY_TOKEN_FILE: path.join(dir, "token"),
        AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/poller",
        AWS_ENDPOINT_URL_STS: `http://127.0.0.1:${(sts.address() as AddressInfo).port}`,
        HTTP_PROXY: proxy.url,
      });
      await serveTasks(sfn, side, "irsa", 1);
      expect(assumed).to.include("AssumeRoleWithWebIdentity");
      const stsPort = (sts.address() as AddressInfo).port;
      expect(proxy.forwarded.some((url) => url.startsWith(`http://127.0.0.1:${stsPort}/`))).to.equal(true);
      expect(proxy.forwarded.filter((url) => url.startsWith(`${emulator.url}/`))).to.have.length(3);
    });

    it("a proxy that wants credentials (407) is a configuration problem, named with its fix", async () => {
      const { emulator } = await emulatorWith(1);
      const proxy = await new ForwardProxy({ credentials: { user: "u", password: "p" } }).start();
      cleanups.push(() => proxy.close());
      process.env.HTTP_PROXY = proxy.url;
      const sfn = stepFunctionsVia(emulator.url);
      await failure(sfn.resolveActivityArn("needs-auth"));
      expect(proxy.refused).to.be.greaterThan(0);
      expect(sfn.problem).to.include({ kind: "configuration", exitCode: 2 });
      expect(sfn.problem?.hint).to.contain("HTTPS_PROXY");
    });

    it("a stalled CONNECT counts against the connection timeout (TimeoutError, retried by the SDK)", async () => {
      const { emulator } = await emulatorWith(1);
      const proxy = await new ForwardProxy({ stallConnect: true }).start();
      cleanups.push(() => proxy.close());
      process.env.HTTPS_PROXY = proxy.url;
      const errors: string[] = [];
      // https endpoint (nothing listens for TLS there: the CONNECT never gets that far).
      const sfn = stepFunctionsVia(`https://localhost:${new URL(emulator.url).port}`, errors, 2);
      const started = performance.now();
      const error = await failure(sfn.resolveActivityArn("stalled"));
      const elapsed = performance.now() - started;
      expect(error.name).to.equal("TimeoutError");
      expect(error.message).to.match(/establish a connection/);
      // Two attempts (the SDK retried the TimeoutError), each given up after the 5 s connection timeout.
      expect(errors).to.deep.equal(["CreateActivity:TimeoutError", "CreateActivity:TimeoutError"]);
      expect(elapsed).to.be.within(9_800, 14_000);
      expect(proxy.connections, "the retry opened a new connection").to.equal(2);
    });
  });

  describe("timeouts, pools and retries as configured", () => {
    it("reuses connections, and a report is not queued behind a long poll (separate pools)", async () => {
      const { emulator, side } = await emulatorWith(3);
      const proxy = await new ReverseProxy({ upstream: emulator.url }).start();
      cleanups.push(() => proxy.close());
      const sfn = stepFunctionsVia(proxy.url());
      const arn = await sfn.resolveActivityArn("pools");
      // One poll outstanding (maxConcurrentPolls 1): a heartbeat must still go at once.
      const poll = sfn.getActivityTask(arn);
      await until("the poll to wait at the emulator", () => proxy.polls().length === 1, 5_000);
      const started = performance.now();
      const heartbeat = await sfn.sendTaskHeartbeat("not-a-token");
      expect(heartbeat).to.include({ kind: "gone", code: "InvalidToken" });
      expect(performance.now() - started).to.be.below(1_000);
      expect(await poll).to.equal(undefined);
      await side.enqueue({ activityArn: arn, count: 3 });
      for (let i = 0; i < 3; i++) {
        const task = await sfn.getActivityTask(arn);
        await sfn.sendTaskSuccess(task?.taskToken as string, "{}");
      }
      expect(proxy.connections, "one connection per pool").to.equal(2);
    });

    it("a reset connection is retried by the SDK and the call succeeds", async () => {
      const { emulator } = await emulatorWith(1);
      const proxy = await new ReverseProxy({ upstream: emulator.url, resetConnections: 2 }).start();
      cleanups.push(() => proxy.close());
      const errors: string[] = [];
      const sfn = stepFunctionsVia(proxy.url(), errors);
      expect(await sfn.resolveActivityArn("after-resets")).to.match(/:activity:after-resets$/);
      // ECONNRESET is named TimeoutError by NodeHttpHandler: what the SDK's retry strategy retries.
      expect(errors).to.deep.equal(["CreateActivity:ECONNRESET", "CreateActivity:ECONNRESET"]);
    });

    it("a report whose answer does not come within 20 s is given up as a TimeoutError", async function () {
      this.timeout(120_000);
      // An endpoint that reads the request and never answers.
      const silent = http.createServer(() => {});
      silent.listen(0, "127.0.0.1");
      await new Promise((resolve) => silent.once("listening", resolve));
      cleanups.push(async () => {
        silent.closeAllConnections();
        await new Promise((resolve) => silent.close(resolve));
      });
      const errors: string[] = [];
      Object.assign(process.env, awsEnvFor(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`));
      const sfn = new StepFunctions({
        workerName: "t",
        maxConcurrentPolls: 1,
        maxAttempts: 1,
        onAwsError: (api, code) => errors.push(`${api}:${code}`),
      });
      cleanups.push(() => sfn.destroy());
      const started = performance.now();
      const error = await failure(sfn.sendTaskHeartbeat("token"));
      const elapsed = performance.now() - started;
      expect(error.name).to.equal("TimeoutError");
      expect(elapsed).to.be.within(19_500, 23_000);
    });
  });
});
