/**
 * Local mode end to end: the real CLI as a child process, the emulator over the AWS JSON protocol
 * (so the real AWS SDK is exercised), and a real HTTP target.
 */
import { expect } from "chai";
import {
  EmulatorClient,
  type RunningEmulator,
  startEmulator,
  type TaskRecord,
} from "../../src/emulator/index.ts";
import { awsEnvFor, CliProcess, runCli, writeTempFile } from "../support/cli.ts";
import { freePort, RedisServer } from "../support/redis.ts";
import { type TargetInstruction, TestTarget } from "../support/target-server.ts";

interface SourceOptions {
  activityName: string;
  target?: string;
  path?: string;
  maxConcurrency?: number;
  concurrencyPerPoller?: number;
  requestTimeout?: string;
  heartbeatInterval?: string;
  /** Lines of the source's `headers:` mapping, e.g. "X-Team: { value: payments }". */
  headers?: string[];
}

describe("local mode (CLI child process + emulator + HTTP target)", function () {
  this.timeout(60_000);
  let emulator: RunningEmulator;
  let client: EmulatorClient;
  let target: TestTarget;
  let cli: CliProcess | undefined;

  beforeEach(async () => {
    emulator = await startEmulator({ port: 0, longPollSeconds: 1 });
    client = new EmulatorClient(emulator.url);
    target = await new TestTarget().start();
  });

  afterEach(async function () {
    if (cli) {
      const result = await cli.stop();
      if (this.currentTest?.state === "failed") console.log(`--- local mode output ---\n${cli.tail(60)}`);
      cli = undefined;
      void result;
    }
    await target.close();
    await emulator.close();
  });

  async function startLocal(
    sources: SourceOptions[],
    extraArgs: string[] = [],
    { header = "", env = {} }: { header?: string; env?: NodeJS.ProcessEnv } = {},
  ): Promise<CliProcess> {
    const yaml = `${header}sources:\n${sources
      .map((s) =>
        [
          `  - activityName: ${s.activityName}`,
          `    target: ${s.target ?? target.url}`,
          `    path: ${s.path ?? "/work"}`,
          s.maxConcurrency ? `    maxConcurrency: ${s.maxConcurrency}` : "",
          s.concurrencyPerPoller ? `    concurrencyPerPoller: ${s.concurrencyPerPoller}` : "",
          s.requestTimeout ? `    requestTimeout: ${s.requestTimeout}` : "",
          s.heartbeatInterval ? `    heartbeatInterval: ${s.heartbeatInterval}` : "",
          s.headers ? `    headers:\n${s.headers.map((line) => `      ${line}`).join("\n")}` : "",
        ]
          .filter(Boolean)
          .join("\n"),
      )
      .join("\n")}\n`;
    const file = await writeTempFile("sources.yaml", yaml);
    cli = new CliProcess(["local", "-f", file, ...extraArgs], { ...awsEnvFor(emulator.url), ...env });
    await cli.waitForLog((r) => r.message === "polling");
    return cli;
  }

  async function enqueue(
    activityName: string,
    input: TargetInstruction,
    extra: { heartbeatSeconds?: number; count?: number } = {},
  ) {
    const result = await client.enqueue({ activityName, input, ...extra });
    return result.tasks.map((t) => t.taskId);
  }

  async function closedTask(taskId: string, timeoutMs = 20_000): Promise<TaskRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const task = await client.getTask(taskId);
      if (task.closedAt) return task;
      if (Date.now() > deadline) throw new Error(`task ${taskId} still ${task.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it("reports a 200 JSON answer as success, byte for byte, with the task headers sent to the target", async () => {
    await startLocal([{ activityName: "ok" }]);
    const [id] = await enqueue("ok", { reply: "echo", value: "grüße" });
    const task = await closedTask(id as string);
    expect(task.status).to.equal("SUCCEEDED");
    expect(JSON.parse(task.output as string)).to.deep.equal({ reply: "echo", value: "grüße" });
    const request = target.requests[0];
    expect(request?.path).to.equal("/work");
    expect(request?.headers["content-type"]).to.equal("application/json");
    expect(request?.headers["step-func-activity-arn"]).to.equal(task.activityArn);
    expect(request?.headers["step-func-task-id"]).to.match(/^[0-9a-f]{32}$/);
    expect(Date.parse(String(request?.headers["step-func-deadline"]))).to.be.greaterThan(Date.now());
    expect(JSON.stringify(request?.headers)).not.to.match(/token/i);
  });

  it("reports every failure row of the outcome rules with the right error and cause", async () => {
    await startLocal([
      { activityName: "rules", requestTimeout: "1s" },
      { activityName: "refused", target: "http://127.0.0.1:1" },
    ]);
    const cases: Array<[TargetInstruction, string, RegExp]> = [
      [{ reply: "text", body: "not json" }, "Target.InvalidOutput", /not JSON/],
      [{ reply: "huge" }, "Target.OutputTooLarge", /262144 bytes/],
      [
        {
          reply: "status",
          status: 500,
          headers: { "step-func-error": "Custom.Error", "step-func-cause": "ünïcödé cause" },
        },
        "Custom.Error",
        /^ünïcödé cause$/,
      ],
      [
        { reply: "status", status: 503, body: "down for maintenance" },
        "HTTP.503",
        /answered HTTP 503 Service Unavailable: down for maintenance/,
      ],
      [
        { reply: "status", status: 500, headers: { "step-func-error": "E".repeat(300) } },
        "E".repeat(256),
        /answered HTTP 500/,
      ],
      [
        {
          reply: "status",
          status: 500,
          headerEncoding: "latin1", // a Node.js target's setHeader: é is the one byte 0xE9
          headers: { "step-func-error": "Fehler.Größe", "step-func-cause": "the cause, with unicode: é" },
        },
        "Fehler.Größe",
        /^the cause, with unicode: é$/,
      ],
      [
        {
          reply: "status",
          status: 500,
          // UTF-8 bytes; each emoji straddles its limit (256 and 32,768 UTF-16 units) and is dropped whole.
          headers: {
            "step-func-error": `${"a".repeat(255)}😀`,
            "step-func-cause": `${"日".repeat(32_767)}😀 tail`,
          },
        },
        "a".repeat(255),
        /^日{32767}$/,
      ],
      [{ delayMs: 3000 }, "Target.Timeout", /did not answer within 1s/],
      [{ reply: "reset" }, "Target.ConnectionReset", /ECONNRESET|socket hang up/],
    ];
    const ids = [];
    for (const [instruction] of cases) ids.push((await enqueue("rules", instruction))[0] as string);
    const [refusedId] = await enqueue("refused", {});
    for (const [index, [, error, cause]] of cases.entries()) {
      const task = await closedTask(ids[index] as string);
      expect(task.status, JSON.stringify(cases[index]?.[0])).to.equal("FAILED");
      expect(task.error).to.equal(error);
      expect(task.cause).to.match(cause);
    }
    const refused = await closedTask(refusedId as string);
    expect(refused).to.include({ status: "FAILED", error: "Target.ConnectionRefused" });
    expect(refused.cause).to.contain("ECONNREFUSED");
  });

  it("sends the source's configured headers, values from the environment, and never logs the values", async () => {
    const secret = "Bearer s3cr3t-t0ken-ü";
    await startLocal(
      [
        {
          activityName: "auth",
          headers: ["Authorization: { valueFromEnv: SUM_API_TOKEN }", "X-Team: { value: payments }"],
        },
      ],
      ["--log-level", "debug"],
      { env: { SUM_API_TOKEN: secret } },
    );
    const [id] = await enqueue("auth", { reply: "json" });
    expect((await closedTask(id as string)).status).to.equal("SUCCEEDED");
    const headers = target.requests[0]?.headers;
    // Non-ASCII is sent as UTF-8; Node's server hands the bytes over as latin1.
    expect(Buffer.from(String(headers?.authorization), "latin1").toString("utf8")).to.equal(secret);
    expect(headers?.["x-team"]).to.equal("payments");
    expect(headers?.["step-func-task-id"]).to.match(/^[0-9a-f]{32}$/);
    const logged = cli?.logs().find((r) => r.message === "target requests carry configured headers");
    expect(logged?.headers).to.deep.equal(["Authorization", "X-Team"]);
    expect(cli?.output).not.to.contain("s3cr3t");
  });

  it("exits 2 naming a header variable that is not set, with the file's other problems", async () => {
    const file = await writeTempFile(
      "sources.yaml",
      [
        "sources:",
        "  - activityName: sum",
        `    target: ${target.url}`,
        "    path: /work",
        "    maxConcurrency: 0",
        "    headers:",
        "      Authorization: { valueFromEnv: SUM_API_TOKEN }",
        "      Step-Func-Task-Id: { value: forged }",
        "",
      ].join("\n"),
    );
    const { code, output } = await runCli(["local", "-f", file], awsEnvFor(emulator.url));
    expect(code).to.equal(2);
    expect(output).to.contain("sources[0] (sum): maxConcurrency: must be at least 1, got 0");
    expect(output).to.contain(
      "sources[0] (sum): headers.Authorization: environment variable SUM_API_TOKEN is not set",
    );
    expect(output).to.contain("sources[0] (sum): headers.Step-Func-Task-Id: cannot be set by configuration");
  });

  it("heartbeats keep a task alive past its heartbeat timeout", async () => {
    await startLocal([{ activityName: "long", heartbeatInterval: "1s" }]);
    const [id] = await enqueue("long", { delayMs: 5000 }, { heartbeatSeconds: 2 });
    const task = await closedTask(id as string);
    expect(task.status).to.equal("SUCCEEDED");
    expect(task.heartbeats).to.be.at.least(3);
  });

  it("a task that times out at AWS is abandoned and its permit freed for the next task", async () => {
    await startLocal([{ activityName: "abandon", heartbeatInterval: "3s", maxConcurrency: 1 }]);
    // The target would take 30 s; AWS times the task out after 1 s without heartbeat; the next
    // heartbeat (at 3 s) learns it and the loop moves on.
    const [slowId] = await enqueue("abandon", { delayMs: 30_000 }, { heartbeatSeconds: 1 });
    const [nextId] = await enqueue("abandon", { reply: "json" });
    const next = await closedTask(nextId as string, 15_000);
    expect(next.status).to.equal("SUCCEEDED");
    const slow = await client.getTask(slowId as string);
    expect(slow).to.include({ status: "TIMED_OUT", error: "States.Timeout" });
    await cli?.waitForLog((r) => String(r.message).includes("task is gone at AWS"));
  });

  it("never exceeds maxConcurrency at the target, and reaches it under load", async () => {
    await startLocal([{ activityName: "load", maxConcurrency: 8, concurrencyPerPoller: 3 }]);
    const ids = await enqueue("load", { delayMs: 60 }, { count: 200 });
    for (const id of ids) expect((await closedTask(id)).status).to.equal("SUCCEEDED");
    expect(target.requests).to.have.length(200);
    expect(target.peak).to.equal(8);
  });

  it("SIGTERM during a burst: stops taking tasks, reports every task taken, exits 0", async () => {
    const local = await startLocal([{ activityName: "burst", maxConcurrency: 10, concurrencyPerPoller: 5 }]);
    await enqueue("burst", { delayMs: 200 }, { count: 300 });
    while (target.requests.length < 40) await new Promise((r) => setTimeout(r, 20));
    const { code } = await local.stop();
    expect(code).to.equal(0);
    const tasks = await client.listTasks();
    const started = tasks.filter((t) => t.status === "STARTED");
    expect(started, "tasks taken but never reported").to.deep.equal([]);
    const succeeded = tasks.filter((t) => t.status === "SUCCEEDED").length;
    const untouched = tasks.filter((t) => t.status === "SCHEDULED").length;
    expect(succeeded).to.be.at.least(40);
    expect(untouched, "the process should stop before draining the queue").to.be.greaterThan(0);
    expect(succeeded + untouched).to.equal(300);
    expect(target.requests.length).to.equal(succeeded);
    expect((await client.stats()).tasksLostToDisconnectedPollers).to.equal(0);
  });

  it("throttling from Step Functions slows the poller down without failing tasks", async () => {
    await startLocal(
      [{ activityName: "throttled", maxConcurrency: 4, concurrencyPerPoller: 2 }],
      ["--metrics-port", "0"],
    );
    await client.setFaults([{ throttleRate: 0.3 }]);
    const ids = await enqueue("throttled", { reply: "json" }, { count: 60 });
    for (const id of ids) expect((await closedTask(id, 40_000)).status).to.equal("SUCCEEDED");
    const stats = await client.stats();
    expect(stats.faults.throttle).to.be.greaterThan(5);
    const metricsLine = cli?.logs().find((r) => r.message === "serving /metrics, /healthz and /readyz");
    const metrics = await (await fetch(`http://127.0.0.1:${String(metricsLine?.port)}/metrics`)).text();
    expect(metrics).to.match(
      /sfn_operator_aws_errors_total\{api="[A-Za-z]+",code="ThrottlingException"\} [1-9]/,
    );
    expect(metrics).to.match(/sfn_operator_tasks_total\{source="throttled",outcome="succeeded"\} 60/);
  });
  it("follows a task by one id: the poller's log, the target's header, the emulator's record; a failure's short cause at info", async () => {
    await startLocal([{ activityName: "follow", maxConcurrency: 2 }]);
    const [okId] = await enqueue("follow", { reply: "json" });
    const [failedId] = await enqueue("follow", { reply: "status", status: 503, body: "x".repeat(1000) });
    const ok = await closedTask(okId as string);
    const failed = await closedTask(failedId as string);
    expect(failed.status).to.equal("FAILED");
    expect(failed.stepFuncTaskId).to.match(/^[0-9a-f]{32}$/);
    const headerIds = target.requests.map((request) => request.headers["step-func-task-id"]);
    expect(headerIds).to.have.members([ok.stepFuncTaskId, failed.stepFuncTaskId]);
    expect(await client.listTasks({ stepFuncTaskId: failed.stepFuncTaskId })).to.deep.equal([failed]);
    await cli?.waitForLog((r) => r.message === "task failed");
    const failure = cli?.logs().find((r) => r.message === "task failed");
    expect(failure).to.include({
      level: "info",
      taskId: failed.stepFuncTaskId,
      error: "HTTP.503",
      status: 503,
    });
    expect(String(failure?.cause)).to.match(/^POST \/work answered HTTP 503 Service Unavailable: x+\.\.\.$/);
    expect(String(failure?.cause).length).to.be.at.most(203);
    // No line per successful task at info.
    expect(cli?.logs().filter((r) => r.taskId === ok.stepFuncTaskId)).to.deep.equal([]);
    expect((await cli?.stop())?.code).to.equal(0);
    const summary = cli?.logs().find((r) => r.message === "task summary");
    expect(summary).to.include({
      level: "info",
      source: "follow",
      window: "whole run",
      succeeded: 1,
      failed: 1,
      inFlight: 0,
    });
  });

  it("Ctrl-C says what it waits for and how long at most, still runs the task in flight, and exits 0", async () => {
    const local = await startLocal([{ activityName: "ctrl-c", maxConcurrency: 3, requestTimeout: "20s" }]);
    const [slowId] = await enqueue("ctrl-c", { delayMs: 2000 });
    while (target.requests.length < 1) await new Promise((r) => setTimeout(r, 20));
    local.child.kill("SIGINT");
    await local.waitForLog((r) => String(r.message).startsWith("stopping:"));
    const stopping = local.logs().find((r) => String(r.message).startsWith("stopping:"));
    expect(stopping?.message).to.match(
      /^stopping: waiting for (?:[1-2] outstanding polls? \(at most (?:1m|[0-9]+s): a poll is never abandoned, a task it receives would be lost; a task it brings is run, up to requestTimeout 20s\) and )?1 running task \(at most (1[0-9]|20)s, then its report\); press Ctrl-C again to exit now$/,
    );
    expect(stopping).to.include({ level: "info", signal: "SIGINT", runningTasks: 1 });
    expect((await local.exited).code).to.equal(0);
    expect((await client.getTask(slowId as string)).status).to.equal("SUCCEEDED");
    cli = undefined;
  });

  const NOT_READY = "not taking tasks: the concurrency semaphore is not ready";

  it("warns at once, with the reason, when Redis is unreachable at start-up", async () => {
    const closedPort = await freePort();
    const started = Date.now();
    const local = await startLocal([{ activityName: "no-redis" }], [], {
      header: `redis: redis://127.0.0.1:${closedPort}\n`,
    });
    await local.waitForLog((r) => r.message === NOT_READY, 5000);
    expect(Date.now() - started).to.be.below(8000);
    const warning = local.logs().find((r) => r.message === NOT_READY);
    expect(warning).to.include({ level: "warn", source: "no-redis" });
    expect(String(warning?.reason)).to.match(/^Redis unreachable: .*ECONNREFUSED/);
  });

  it("says when Redis is back, and then serves the task that waited", async function () {
    const redis = await RedisServer.start();
    if (!redis.restartable) {
      await redis.stop();
      this.skip();
    }
    try {
      await redis.stopProcess();
      const local = await startLocal([{ activityName: "redis-back" }], [], {
        header: `redis: ${redis.url}\n`,
      });
      await local.waitForLog((r) => r.message === NOT_READY, 5000);
      const [id] = await enqueue("redis-back", { reply: "json" });
      await redis.startProcess();
      await local.waitForLog(
        (r) => r.message === "taking tasks again: the concurrency semaphore is ready",
        10_000,
      );
      expect(
        local.logs().find((r) => r.message === "taking tasks again: the concurrency semaphore is ready"),
      ).to.include({
        level: "info",
        source: "redis-back",
      });
      expect((await closedTask(id as string)).status).to.equal("SUCCEEDED");
    } finally {
      await cli?.stop();
      await redis.stop();
    }
  });
});
