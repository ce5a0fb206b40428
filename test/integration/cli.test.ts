/** The CLI as users meet it: the `poller` command's environment, configuration errors, help. */
import { expect } from "chai";
import { EmulatorClient, type RunningEmulator, startEmulator } from "../../src/emulator/index.ts";
import { awsEnvFor, CliProcess, runCli, writeTempFile } from "../support/cli.ts";
import { TestTarget } from "../support/target-server.ts";

describe("sfn-operator CLI", function () {
  this.timeout(30_000);

  describe("poller (configured by SFN_* variables)", () => {
    let emulator: RunningEmulator;
    let target: TestTarget;
    let cli: CliProcess | undefined;

    beforeEach(async () => {
      emulator = await startEmulator({ port: 0, longPollSeconds: 1 });
      target = await new TestTarget().start();
    });

    afterEach(async function () {
      if (cli) {
        await cli.stop();
        if (this.currentTest?.state === "failed") console.log(cli.tail());
        cli = undefined;
      }
      await target.close();
      await emulator.close();
    });

    it("serves tasks, reports readiness and metrics, and exits 0 on SIGTERM", async () => {
      cli = new CliProcess(["poller", "--metrics-port", "0"], {
        ...awsEnvFor(emulator.url),
        SFN_ACTIVITY_NAME: "from-env",
        SFN_SOURCE_NAME: "team-a/from-env",
        SFN_TARGET_URL: target.url,
        SFN_TARGET_PATH: "/step",
        SFN_CONCURRENCY_PER_POLLER: "2",
        SFN_MAX_CONCURRENCY: "4",
        SFN_WORKER_NAME: "pod-abc",
      });
      await cli.waitForLog((r) => r.message === "polling");
      const port = cli.logs().find((r) => r.message === "serving /metrics, /healthz and /readyz")?.port;
      const client = new EmulatorClient(emulator.url);
      const { tasks } = await client.enqueue({
        activityName: "from-env",
        input: { reply: "json" },
        count: 5,
      });
      await client.waitForTasks({ closedCount: 5 }, 10_000);
      for (const { taskId } of tasks) {
        expect(await client.getTask(taskId)).to.include({ status: "SUCCEEDED", workerName: "pod-abc" });
      }
      expect(target.peak).to.be.at.most(2);
      const ready = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
      expect(ready.status).to.equal(200);
      const metrics = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text();
      expect(metrics).to.contain('sfn_operator_tasks_total{source="team-a/from-env",outcome="succeeded"} 5');
      expect(metrics).to.contain("sfn_operator_permit_wait_seconds_bucket");
      expect((await cli.stop()).code).to.equal(0);
    });

    it("sends the headers SFN_TARGET_HEADERS names, values from their variables, never logged", async () => {
      cli = new CliProcess(["poller", "--log-level", "debug"], {
        ...awsEnvFor(emulator.url),
        SFN_ACTIVITY_NAME: "with-headers",
        SFN_TARGET_URL: target.url,
        SFN_TARGET_PATH: "/step",
        SFN_TARGET_HEADERS: "Authorization=SUM_API_TOKEN, X-Team=TEAM_NAME",
        SUM_API_TOKEN: "Bearer s3cr3t-t0ken",
        TEAM_NAME: "payments",
      });
      await cli.waitForLog((r) => r.message === "polling");
      const client = new EmulatorClient(emulator.url);
      await client.enqueue({ activityName: "with-headers", input: { reply: "json" } });
      await client.waitForTasks({ closedCount: 1 }, 10_000);
      expect(target.requests[0]?.headers).to.include({
        authorization: "Bearer s3cr3t-t0ken",
        "x-team": "payments",
      });
      expect(
        cli.logs().find((r) => r.message === "target requests carry configured headers")?.headers,
      ).to.deep.equal(["Authorization", "X-Team"]);
      expect((await cli.stop()).code).to.equal(0);
      expect(cli.output).not.to.contain("s3cr3t");
    });

    it("exits 2 naming every bad variable", async () => {
      const { code, output } = await runCli(["poller"], {
        SFN_TARGET_URL: "not a url",
        SFN_MAX_CONCURRENCY: "many",
        SFN_TARGET_HEADERS: "Authorization=SUM_API_TOKEN",
      });
      expect(code).to.equal(2);
      expect(output).to.contain(
        "SFN_TARGET_HEADERS: Authorization: environment variable SUM_API_TOKEN is not set",
      );
      expect(output).to.contain("SFN_ACTIVITY_NAME");
      expect(output).to.contain("SFN_TARGET_URL");
      expect(output).to.contain("SFN_TARGET_PATH");
      expect(output).to.contain("SFN_MAX_CONCURRENCY");
    });
    it("reports bad SFN_LOG_LEVEL, SFN_LOG_FORMAT and SFN_METRICS_PORT with the other problems, exit 2", async () => {
      const { code, output } = await runCli(["poller"], {
        SFN_LOG_LEVEL: "verbose",
        SFN_LOG_FORMAT: "xml",
        SFN_METRICS_PORT: "99999",
        SFN_TARGET_URL: "not a url",
      });
      expect(code).to.equal(2);
      expect(output).to.contain('SFN_LOG_LEVEL: must be one of error, warn, info, debug, got "verbose"');
      expect(output).to.contain('SFN_LOG_FORMAT: must be one of auto, json, text, got "xml"');
      expect(output).to.contain('SFN_METRICS_PORT: must be a port number from 0 to 65535, got "99999"');
      expect(output).to.contain("SFN_TARGET_URL: must be an http:// or https:// URL");
      expect(output).to.contain("SFN_TARGET_PATH: is required");
      expect(output, "no help text: the problems are the message").not.to.contain("Usage:");
    });
  });

  describe("logging", () => {
    async function emulatorOutput(env: NodeJS.ProcessEnv): Promise<string> {
      const emulator = new CliProcess(["--log-format", "text", "emulator", "--port", "0"], env);
      for (let i = 0; i < 200 && !emulator.output.includes("listening on"); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      await emulator.stop();
      return emulator.output;
    }

    it("--log-format text has no colour codes when stderr is a pipe (unless FORCE_COLOR)", async () => {
      const piped = await emulatorOutput({});
      expect(piped).to.match(/ info \[emulator\] Step Functions emulator listening/);
      expect(piped).not.to.contain("\u001b[");
      expect(await emulatorOutput({ FORCE_COLOR: "1" })).to.contain("\u001b[");
    });

    it("says that --log-payloads does nothing without --log-level debug", async () => {
      const file = await writeTempFile("bad.yaml", "sources: []\n");
      const { output } = await runCli(["--log-payloads", "local", "-f", file]);
      expect(output).to.contain("--log-payloads has no effect without --log-level debug");
    });
  });

  describe("sample-service", () => {
    it("serves sum and split, answers probes, refuses other routes, and exits 0 on SIGTERM", async () => {
      const service = new CliProcess(["sample-service", "--port", "0", "--host", "127.0.0.1"]);
      try {
        for (let i = 0; i < 400 && !/listening on 127\.0\.0\.1:\d+/.test(service.output); i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
        const port = /listening on 127\.0\.0\.1:(\d+)/.exec(service.output)?.[1];
        expect(port, service.tail()).to.not.equal(undefined);
        const base = `http://127.0.0.1:${port}`;
        const post = (path: string, body: string): Promise<Response> =>
          fetch(`${base}${path}`, { method: "POST", body, headers: { "content-type": "application/json" } });
        const sum = await post("/step/sum", JSON.stringify({ numbers: [1, 2, 3.5] }));
        expect(sum.status).to.equal(200);
        expect(await sum.json()).to.deep.equal({ sum: 6.5 });
        const split = await post("/step/split", JSON.stringify({ text: "über alles ok" }));
        expect(await split.json()).to.deep.equal({ words: ["über", "alles", "ok"] });
        const bad = await post("/step/sum", JSON.stringify({ numbers: [1, "x"] }));
        expect(bad.status).to.equal(422);
        expect(bad.headers.get("step-func-error")).to.equal("Sum.NotANumber");
        expect((await fetch(`${base}/healthz`)).status).to.equal(200);
        expect((await post("/elsewhere", "{}")).status).to.equal(404);
        expect((await fetch(`${base}/step/sum`)).status, "GET of a task route").to.equal(404);
        const huge = await post("/step/split", JSON.stringify({ text: "a".repeat(600 * 1024) })).catch(
          (error: unknown) => error,
        );
        if (huge instanceof Response) expect(huge.status).to.equal(413);
      } finally {
        expect(await service.stop()).to.deep.equal({ code: 0, signal: null });
      }
    });
  });

  describe("local", () => {
    it("--check prints one line per source and exits 0 without starting anything", async () => {
      const file = await writeTempFile(
        "sources.yaml",
        [
          "redis: redis://:secret@127.0.0.1:1",
          "sources:",
          "  - activityName: sum",
          "    target: http://127.0.0.1:8080",
          "    path: /step/sum",
          "    maxConcurrency: 10",
          "    concurrencyPerPoller: 4",
          "  - activityName: split",
          "    target: http://127.0.0.1:8081/",
          "    path: /split",
          "    requestTimeout: 30s",
        ].join("\n"),
      );
      // No AWS settings and an unreachable Redis: --check contacts neither.
      const { code, output } = await runCli(["local", "--check", "-f", file]);
      expect(code).to.equal(0);
      expect(output.trim().split("\n")).to.deep.equal([
        `${file}: OK, 2 sources; limits shared through Redis at redis://:***@127.0.0.1:1; region from the AWS SDK's default chain`,
        "  sum: POST http://127.0.0.1:8080/step/sum; maxConcurrency 10 (3 pollers x 4 loops); requestTimeout 5m; heartbeatInterval 10s",
        "  split: POST http://127.0.0.1:8081/split; maxConcurrency 1 (1 poller x 1 loop); requestTimeout 30s; heartbeatInterval 10s",
      ]);
    });

    it("--check exits 2 listing every problem of the file and of the options", async () => {
      const file = await writeTempFile(
        "bad.yaml",
        [
          "sources:",
          "  - activityName: sum",
          "    target: ftp://x",
          "    path: /sum",
          "    requestTimeout: 30",
        ].join("\n"),
      );
      const { code, output } = await runCli(["local", "--check", "-f", file], { SFN_LOG_LEVEL: "loud" });
      expect(code).to.equal(2);
      expect(output).to.contain('SFN_LOG_LEVEL: must be one of error, warn, info, debug, got "loud"');
      expect(output).to.contain(`${file}: sources[0] (sum): target: must be an http:// or https:// URL`);
      expect(output).to.contain(`${file}: sources[0] (sum): requestTimeout:`);
      expect(output).not.to.contain("OK");
    });

    it("exits 2 with every problem of a bad sources file, naming file, source and field", async () => {
      const file = await writeTempFile(
        "bad.yaml",
        [
          "sources:",
          "  - activityName: sum",
          "    target: http://127.0.0.1:8080",
          "    path: /sum",
          "    maxconcurrency: 3",
        ].join("\n"),
      );
      const { code, output } = await runCli(["local", "-f", file]);
      expect(code).to.equal(2);
      expect(output).to.contain(
        `${file}: sources[0] (sum): maxconcurrency: unknown key (did you mean "maxConcurrency"?)`,
      );
    });

    it("exits 2 when the file does not exist", async () => {
      const { code, output } = await runCli(["local", "-f", "/nonexistent/sources.yaml"]);
      expect(code).to.equal(2);
      expect(output).to.contain("/nonexistent/sources.yaml: cannot read the file: no such file or directory");
    });
  });

  it("emulator: serves the AWS protocol and the side API, and exits 0 on SIGTERM", async () => {
    const emulator = new CliProcess(["emulator", "--port", "0", "--long-poll-seconds", "1"]);
    let url = "";
    for (let i = 0; i < 200 && !url; i++) {
      url = /listening on (http:\/\/\S+)/.exec(emulator.output)?.[1] ?? "";
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(url, emulator.output).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new EmulatorClient(url);
    const { activityArn } = await client.enqueue({ activityName: "cli-emulator", input: { a: 1 } });
    expect(activityArn).to.equal("arn:aws:states:us-east-1:123456789012:activity:cli-emulator");
    expect((await client.stats()).tasks.SCHEDULED).to.equal(1);
    expect((await emulator.stop()).code).to.equal(0);
  });

  describe("operator", () => {
    it("exits 2 listing every problem of its flags and variables, each named as the user gave it", async () => {
      const { code, output } = await runCli(["operator", "--lease-duration", "5s", "--workers", "0"], {
        SFN_REDIS_URL: "http://not-redis",
        SFN_RENEW_DEADLINE: "10s",
        SFN_POLLER_RESOURCES: "{not json",
        SFN_WATCH_NAMESPACES: "team-a,Team_B",
        SFN_LOG_LEVEL: "loud",
      });
      expect(code).to.equal(2);
      expect(output).to.contain("SFN_POLLER_IMAGE (--poller-image): is required");
      expect(output).to.contain("SFN_REDIS_URL: must be a redis:// or rediss:// URL");
      expect(output).to.contain("--lease-duration: must be longer than SFN_RENEW_DEADLINE (a standby");
      expect(output).to.contain("--workers: must be a whole number from 1 to 64");
      expect(output).to.contain("SFN_POLLER_RESOURCES: must be JSON");
      expect(output).to.contain('SFN_WATCH_NAMESPACES: "Team_B" is not a namespace name');
      expect(output).to.contain('SFN_LOG_LEVEL: must be one of error, warn, info, debug, got "loud"');
      expect(output, "no help text: the problems are the message").not.to.contain("Usage:");
    });

    it("documents every setting in its help", async () => {
      const { code, output } = await runCli(["operator", "--help"]);
      expect(code).to.equal(0);
      for (const flag of ["--poller-image", "--redis-url", "--watch-namespaces", "--lease-duration"]) {
        expect(output).to.contain(flag);
      }
    });
  });

  it("prints help with every command", async () => {
    const { code, output } = await runCli(["--help"]);
    expect(code).to.equal(0);
    for (const command of ["operator", "local", "poller", "emulator"]) expect(output).to.contain(command);
  });
});
