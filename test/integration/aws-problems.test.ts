/**
 * AWS errors that retrying cannot heal (no region, no credentials, AWS refusing the credentials), as
 * users meet them through the CLI: `local` exits at the first one with the fix in the message;
 * `poller` keeps retrying, warns with the fix once (then only now and then), and says it in /readyz.
 *
 * The children get no AWS settings from this machine: HOME is an empty folder, the AWS config and
 * credentials files do not exist, and IMDS is off (the chain would otherwise wait on it).
 */
import { once } from "node:events";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { EmulatorClient, type RunningEmulator, startEmulator } from "../../src/emulator/index.ts";
import { CliProcess, runCli, writeTempFile } from "../support/cli.ts";

describe("AWS errors that retrying cannot heal (CLI)", function () {
  this.timeout(60_000);
  let home: string;
  let emulator: RunningEmulator;
  let side: EmulatorClient;

  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-home-"));
  });
  after(async () => {
    await fs.rm(home, { recursive: true, force: true });
  });
  beforeEach(async () => {
    emulator = await startEmulator({ port: 0, longPollSeconds: 1 });
    side = new EmulatorClient(emulator.url);
  });
  afterEach(async () => {
    await emulator.close();
  });

  /** An environment with no AWS region or credentials from anywhere, pointed at `endpoint`. */
  function bareEnv(endpoint: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      HOME: home,
      AWS_CONFIG_FILE: path.join(home, "no-such-config"),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, "no-such-credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_ENDPOINT_URL_SFN: endpoint,
      ...extra,
    };
  }

  async function sourcesFile(region?: string): Promise<string> {
    return writeTempFile(
      "sources.yaml",
      [
        ...(region ? [`region: ${region}`] : []),
        "sources:",
        "  - activityName: unhealed",
        "    target: http://127.0.0.1:9",
        "    path: /work",
      ].join("\n"),
    );
  }

  function messages(output: string): string[] {
    return output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => String((JSON.parse(line) as { message?: unknown }).message));
  }

  describe("local", () => {
    it("exits 2 at once without a region, naming AWS_REGION and region: in the sources file", async () => {
      const started = Date.now();
      const { code, output } = await runCli(
        ["local", "-f", await sourcesFile()],
        bareEnv(emulator.url, { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" }),
      );
      expect(code, output).to.equal(2);
      const fatal = messages(output).filter((m) => m.includes("no AWS region configured"));
      expect(fatal, output).to.have.length(1);
      expect(fatal[0]).to.contain("AWS_REGION").and.contain("region: in the sources file");
      expect(Date.now() - started, "no retries before exiting").to.be.below(10_000);
      expect((await side.stats()).requests, "nothing reached the endpoint").to.deep.equal({});
    });

    it("exits 2 at once without credentials, naming where credentials come from", async () => {
      const started = Date.now();
      const { code, output } = await runCli(
        ["local", "-f", await sourcesFile("us-east-1")],
        bareEnv(emulator.url),
      );
      expect(code, output).to.equal(2);
      const fatal = messages(output).filter((m) => m.includes("no AWS credentials found"));
      expect(fatal, output).to.have.length(1);
      for (const fix of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "IRSA", "Pod Identity"])
        expect(fatal[0]).to.contain(fix);
      expect(Date.now() - started).to.be.below(10_000);
      expect((await side.stats()).requests).to.deep.equal({});
    });

    it("exits 1 when AWS refuses the credentials, after the first refusal", async () => {
      let calls = 0;
      const refusing = http.createServer((req, res) => {
        calls++;
        req.resume();
        res.writeHead(400, { "content-type": "application/x-amz-json-1.0" }).end(
          JSON.stringify({
            __type: "com.amazon.coral.service#UnrecognizedClientException",
            message: "The security token included in the request is invalid.",
          }),
        );
      });
      refusing.listen(0, "127.0.0.1");
      await once(refusing, "listening");
      try {
        const endpoint = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
        const { code, output } = await runCli(
          ["local", "-f", await sourcesFile("us-east-1")],
          bareEnv(endpoint, { AWS_ACCESS_KEY_ID: "AKIAWRONG", AWS_SECRET_ACCESS_KEY: "wrong" }),
        );
        expect(code, output).to.equal(1);
        const fatal = messages(output).filter((m) => m.includes("UnrecognizedClientException"));
        expect(fatal, output).to.have.length(1);
        expect(fatal[0]).to.contain("access key ID is wrong");
        expect(output, "no secret in the output").to.not.contain('wrong"');
        expect(calls, "not retried").to.equal(1);
      } finally {
        refusing.closeAllConnections();
        refusing.close();
      }
    });
  });

  describe("poller", () => {
    it("keeps retrying without credentials, warns with the fix once rather than on every retry, and reports it in /readyz", async () => {
      const cli = new CliProcess(
        ["poller", "--metrics-port", "0"],
        bareEnv(emulator.url, {
          AWS_REGION: "us-east-1",
          SFN_ACTIVITY_NAME: "unhealed",
          SFN_TARGET_URL: "http://127.0.0.1:9",
          SFN_TARGET_PATH: "/work",
          SFN_WORKER_NAME: "pod-x",
        }),
      );
      try {
        await cli.waitForLog((r) => r.message === "serving /metrics, /healthz and /readyz");
        const port = cli.logs().find((r) => r.message === "serving /metrics, /healthz and /readyz")?.port;
        // Backoff from 1 s: at least three attempts within 6 s.
        await cli.waitForLog(
          () => cli.logs().filter((r) => String(r.message).startsWith("CreateActivity failed")).length >= 3,
          20_000,
        );
        const warnings = cli
          .logs()
          .filter((r) => r.level === "warn" && String(r.message).includes("no AWS credentials found"));
        expect(warnings, cli.tail()).to.have.length(1);
        expect(String(warnings[0]?.message)).to.contain("AWS_ACCESS_KEY_ID").and.contain("IRSA");
        const ready = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
        expect(ready.status).to.equal(503);
        const body = await ready.text();
        expect(body).to.contain("AWS: no AWS credentials found").and.contain("AWS_PROFILE");
        expect(cli.child.exitCode, "still running").to.equal(null);
        expect((await side.stats()).requests).to.deep.equal({});
      } finally {
        const { code } = await cli.stop();
        expect(code, cli.tail()).to.equal(0);
      }
    });
  });
});
