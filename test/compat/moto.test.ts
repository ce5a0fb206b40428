/**
 * Compatibility with an independent Step Functions implementation: moto's server (test/support/moto.ts,
 * installed by test/compat/install-moto.sh), with its state machine interpreter switched on. The CLI
 * runs as a child process that finds moto only through AWS_ENDPOINT_URL_SFN, as users run it.
 *
 * What moto 5.2.5 cannot do (found by reading its source and by the probes below):
 * - GetActivityTask: not implemented (its server answers HTTP 500, NotImplementedError).
 * - Activity Task states: every execution gives its interpreter an empty activity store
 *   (parser/models.py, `activity_store={}`), so the state fails at once with States.Runtime.
 * - SendTaskFailure drops `cause` (responses.py passes only `error` on), so executions fail
 *   without one.
 * - CreateActivity is not idempotent: a second call for a name answers ActivityAlreadyExists, where
 *   AWS returns the existing ARN. Here the CLI creates each activity; the test only looks it up.
 * - A heartbeat for a task that timed out answers InvalidToken, where AWS answers TaskTimedOut (we
 *   treat both as "the task is gone", so this one does not matter).
 *
 * So the end-to-end test below runs only when moto can run activity tasks, and says why it was
 * skipped otherwise. The reporting half is still proven against moto: callback tasks
 * (`sqs:sendMessage.waitForTaskToken`) hand out task tokens that moto's SendTask* calls accept,
 * and our task runner reports to them.
 */
import {
  CreateActivityCommand,
  CreateStateMachineCommand,
  DescribeActivityCommand,
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetActivityTaskCommand,
  ListActivitiesCommand,
  type SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import { expect } from "chai";
import type { PollerSettings } from "../../src/api/types.ts";
import { type ActivityTask, type ReportResult, StepFunctions } from "../../src/aws/step-functions.ts";
import { getLogger } from "../../src/observability/logger.ts";
import { PollerMetrics } from "../../src/observability/metrics.ts";
import { runTask } from "../../src/poller/task-runner.ts";
import { HttpTarget } from "../../src/target/http-target.ts";
import { CliProcess, writeTempFile } from "../support/cli.ts";
import { MOTO_ACCOUNT, MOTO_REGION, MotoServer } from "../support/moto.ts";
import { type TargetInstruction, TestTarget } from "../support/target-server.ts";
import { until } from "../support/waiting.ts";

/** moto checks that a role ARN is well-formed, nothing more. */
const ROLE_ARN = `arn:aws:iam::${MOTO_ACCOUNT}:role/sfn-operator-compat`;

describe("compatibility: moto's Step Functions server", function () {
  this.timeout(120_000);
  let moto: MotoServer;
  let sfn: SFNClient;
  let target: TestTarget;
  let cli: CliProcess | undefined;

  before(async () => {
    moto = await MotoServer.start();
    sfn = moto.sfn();
  });

  after(async () => {
    await moto?.stop();
  });

  beforeEach(async () => {
    target = await new TestTarget().start();
  });

  afterEach(async function () {
    if (cli) {
      await cli.stop();
      if (this.currentTest?.state === "failed") console.log(`--- local mode output ---\n${cli.tail(60)}`);
      cli = undefined;
    }
    await target.close();
    if (this.currentTest?.state === "failed")
      console.log(`--- moto output ---\n${moto.output().slice(-6000)}`);
  });

  async function createStateMachine(name: string, definition: object): Promise<string> {
    const result = await sfn.send(
      new CreateStateMachineCommand({ name, definition: JSON.stringify(definition), roleArn: ROLE_ARN }),
    );
    return result.stateMachineArn as string;
  }

  async function startExecution(stateMachineArn: string, name: string, input: unknown): Promise<string> {
    const result = await sfn.send(
      new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
    );
    return result.executionArn as string;
  }

  async function finished(executionArn: string, timeoutMs = 30_000): Promise<DescribeExecutionCommandOutput> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      if (execution.status !== "RUNNING") return execution;
      if (Date.now() > deadline) throw new Error(`${executionArn} still RUNNING after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Local mode as users run it: a sources file, the endpoint and fake credentials in the environment. */
  async function startLocal(source: {
    activityName: string;
    maxConcurrency: number;
    concurrencyPerPoller: number;
  }): Promise<{ cli: CliProcess; activityArn: string; metricsUrl: string }> {
    const yaml = [
      "sources:",
      `  - activityName: ${source.activityName}`,
      `    target: ${target.url}`,
      "    path: /work",
      `    maxConcurrency: ${source.maxConcurrency}`,
      `    concurrencyPerPoller: ${source.concurrencyPerPoller}`,
      // Well inside the e2e state's HeartbeatSeconds (10).
      "    heartbeatInterval: 2s",
      "",
    ].join("\n");
    const file = await writeTempFile("sources.yaml", yaml);
    cli = new CliProcess(["local", "-f", file, "--metrics-port", "0"], moto.env());
    await cli.waitForLog((r) => r.message === "polling");
    const polling = cli.logs().find((r) => r.message === "polling");
    const serving = cli.logs().find((r) => r.message === "serving /metrics, /healthz and /readyz");
    return {
      cli,
      activityArn: String(polling?.activityArn),
      metricsUrl: `http://127.0.0.1:${String(serving?.port)}`,
    };
  }

  it("runs state machines (the harness switched moto's interpreter on)", async () => {
    const arn = await createStateMachine("compat-pass", {
      StartAt: "P",
      States: { P: { Type: "Pass", Parameters: { "doubled.$": "States.MathAdd($.n, $.n)" }, End: true } },
    });
    const execution = await finished(await startExecution(arn, "pass-1", { n: 21 }));
    expect(execution.status).to.equal("SUCCEEDED");
    expect(JSON.parse(execution.output as string)).to.deep.equal({ doubled: 42 });
  });

  it("local mode (CLI child process) uses AWS_ENDPOINT_URL_SFN, outlives moto's missing GetActivityTask, exits 0 on SIGTERM", async () => {
    const local = await startLocal({
      activityName: "compat-cli",
      maxConcurrency: 3,
      concurrencyPerPoller: 2,
    });
    // The activity the CLI created is moto's: same ARN, in moto's account and region.
    expect(local.activityArn).to.equal(`arn:aws:states:${MOTO_REGION}:${MOTO_ACCOUNT}:activity:compat-cli`);
    const listed = await sfn.send(new ListActivitiesCommand({}));
    expect(listed.activities?.map((a) => a.activityArn)).to.include(local.activityArn);
    const described = await sfn.send(new DescribeActivityCommand({ activityArn: local.activityArn }));
    expect(described.name).to.equal("compat-cli");
    expect((await fetch(`${local.metricsUrl}/readyz`)).status).to.equal(200);

    // Its polls reach moto too. moto 5.2.5 has no GetActivityTask (HTTP 500, NotImplementedError):
    // the CLI counts the failures, backs off and keeps running instead of crashing. (When a moto bump
    // brings GetActivityTask, this part fails on purpose: the end-to-end test then takes over.)
    const deadline = Date.now() + 15_000;
    let metrics = "";
    while (Date.now() < deadline) {
      metrics = await (await fetch(`${local.metricsUrl}/metrics`)).text();
      if (/sfn_operator_aws_errors_total\{api="GetActivityTask",[^}]*\} [1-9]/.test(metrics)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(metrics).to.match(/sfn_operator_aws_errors_total\{api="GetActivityTask",[^}]*\} [1-9]/);
    // moto writes its traceback after the answer (and through a pipe): wait for it to arrive.
    await until(
      () => moto.output().includes("The get_activity_task action has not been implemented"),
      10_000,
      "moto's NotImplementedError for get_activity_task in its output",
    );
    expect(local.cli.child.exitCode).to.equal(null);

    const { code } = await local.cli.stop();
    expect(code).to.equal(0);
    expect(local.cli.logs().some((r) => r.message === "every taken task is reported; exiting")).to.equal(
      true,
    );
  });

  it("local mode finds an activity that already exists (moto answers CreateActivity with ActivityAlreadyExists)", async () => {
    const created = await sfn.send(new CreateActivityCommand({ name: "compat-existing" }));
    const local = await startLocal({
      activityName: "compat-existing",
      maxConcurrency: 1,
      concurrencyPerPoller: 1,
    });
    expect(local.activityArn).to.equal(created.activityArn);
    expect((await local.cli.stop()).code).to.equal(0);
  });

  it("end to end: local mode serves an Activity task state's executions, within maxConcurrency", async function () {
    const gaps = await activityGaps();
    if (gaps.length > 0) {
      console.log(
        `      skipped: moto cannot run activity tasks:\n${gaps.map((g) => `        - ${g}`).join("\n")}`,
      );
      this.skip();
    }
    const maxConcurrency = 3;
    // 4 loops for 3 permits, so the limit is the semaphore's doing and not the loop count's.
    const local = await startLocal({ activityName: "compat-e2e", maxConcurrency, concurrencyPerPoller: 2 });
    const stateMachineArn = await createStateMachine("compat-e2e", {
      StartAt: "Work",
      States: {
        Work: {
          Type: "Task",
          Resource: local.activityArn,
          TimeoutSeconds: 60,
          HeartbeatSeconds: 10,
          End: true,
        },
      },
    });
    const failing: TargetInstruction = {
      reply: "status",
      status: 500,
      headers: { "step-func-error": "Custom.Error", "step-func-cause": "ünïcödé cause" },
    };
    const inputs: TargetInstruction[] = Array.from({ length: 9 }, (_, i) => ({
      reply: "json",
      delayMs: 400,
      i,
    }));
    inputs.splice(4, 0, failing);
    const executions = [];
    for (const [index, input] of inputs.entries())
      executions.push(await startExecution(stateMachineArn, `e2e-${index}`, input));

    const results = [];
    for (const arn of executions) results.push(await finished(arn, 45_000));
    for (const [index, result] of results.entries()) {
      const input = inputs[index] as TargetInstruction;
      if (input === failing) {
        expect(result.status, "the 500 answer").to.equal("FAILED");
        expect(result.error).to.equal("Custom.Error");
        expect(result.cause).to.equal("ünïcödé cause");
      } else {
        expect(result.status, JSON.stringify(input)).to.equal("SUCCEEDED");
        // The target's answer ({ok, got}), not the task's input: the output came from the target.
        expect(JSON.parse(result.output as string)).to.deep.equal({ ok: true, got: input });
      }
    }
    expect(target.requests).to.have.length(10);
    expect(target.peak).to.be.at.most(maxConcurrency);
    // Tasks must really overlap, or the limit check above proves nothing.
    expect(target.peak).to.be.at.least(2);

    // Shutdown waits for the outstanding long polls (never aborted, by design): up to 60 s here.
    const { code } = await local.cli.stop(90_000);
    expect(code).to.equal(0);
  });

  it("reporting: the task runner's outcomes and heartbeats are accepted by moto (callback task tokens)", async () => {
    const queueUrl = await sqs("CreateQueue", { QueueName: "compat-tokens" }).then((r) => String(r.QueueUrl));
    const stateMachineArn = await createStateMachine("compat-report", {
      StartAt: "Work",
      States: {
        Work: {
          Type: "Task",
          Resource: "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
          HeartbeatSeconds: 3,
          Parameters: { QueueUrl: queueUrl, MessageBody: { "token.$": "$$.Task.Token", "input.$": "$" } },
          End: true,
        },
      },
    });
    const cases: Record<string, TargetInstruction> = {
      ok: { reply: "echo", value: "grüße" },
      fail: {
        reply: "status",
        status: 500,
        headers: { "step-func-error": "Custom.Error", "step-func-cause": "ünïcödé cause" },
      },
      // Outlives HeartbeatSeconds (3 s): only our 1 s heartbeats keep it alive.
      slow: { reply: "json", delayMs: 6000 },
      // Heartbeats every 5 s come too late: moto times the task out, and the next heartbeat learns it.
      abandoned: { reply: "json", delayMs: 30_000 },
    };
    const executions: Record<string, string> = {};
    for (const [name, input] of Object.entries(cases))
      executions[name] = await startExecution(stateMachineArn, `report-${name}`, { case: name, ...input });
    const tasks = await receiveTasks(queueUrl, Object.keys(cases).length);

    // Our client layer finds the endpoint the way the CLI does: from the environment, read on every
    // call (the region too), so it stays set for the whole test.
    const saved = { ...process.env };
    Object.assign(process.env, moto.env());
    const stepFunctions = new RecordingStepFunctions({ workerName: "compat", maxConcurrentPolls: 4 });
    try {
      const started = Date.now();
      const labels = await Promise.all(
        Object.keys(cases).map(async (name) => {
          const settings = runnerSettings(name, target.url, name === "abandoned" ? 5000 : 1000);
          const ctx = {
            settings,
            activityArn: `arn:aws:states:${MOTO_REGION}:${MOTO_ACCOUNT}:activity:${name}`,
            stepFunctions,
            target: new HttpTarget(settings.targetUrl, 1),
            metrics: new PollerMetrics({ defaultMetrics: false }),
            log: getLogger("compat", { case: name }),
          };
          const label = await runTask(tasks[name] as ActivityTask, ctx);
          return [name, label, Date.now() - started] as const;
        }),
      );
      const byName = Object.fromEntries(labels.map(([name, label, ms]) => [name, { label, ms }]));
      expect(byName.ok?.label).to.equal("succeeded");
      expect(byName.fail?.label).to.equal("failed");
      expect(byName.slow?.label).to.equal("succeeded");
      expect(byName.abandoned?.label).to.equal("gone");
      expect(byName.abandoned?.ms, "the abandoned call is not waited for").to.be.below(15_000);

      const ok = await finished(executions.ok as string);
      expect(ok.status).to.equal("SUCCEEDED");
      expect(JSON.parse(ok.output as string)).to.deep.equal({ case: "ok", ...cases.ok });
      const fail = await finished(executions.fail as string);
      expect(fail.status).to.equal("FAILED");
      expect(fail.error).to.equal("Custom.Error");
      // moto 5.2.5 drops SendTaskFailure's cause (see the top of this file), so the execution cannot
      // show it; what we sent is checked instead.
      expect(stepFunctions.failures).to.deep.include({
        token: tasks.fail?.taskToken,
        error: "Custom.Error",
        cause: "ünïcödé cause",
      });
      const slow = await finished(executions.slow as string);
      expect(slow.status).to.equal("SUCCEEDED");
      expect(stepFunctions.heartbeats.get(tasks.slow?.taskToken as string)).to.be.at.least(4);
      const abandoned = await finished(executions.abandoned as string);
      expect(abandoned).to.include({ status: "FAILED", error: "States.Timeout" });
    } finally {
      stepFunctions.destroy();
      process.env = saved;
    }
  });

  /**
   * What keeps moto from running activity tasks, found by trying (empty when it can): an execution
   * of an Activity task state, and a GetActivityTask call.
   */
  async function activityGaps(): Promise<string[]> {
    const gaps: string[] = [];
    const probe = moto.sfn({ maxAttempts: 1 });
    // A probe-only activity (the CLI never uses it): moto's CreateActivity is not idempotent.
    const { activityArn } = await probe.send(new CreateActivityCommand({ name: "compat-probe" }));
    const stateMachineArn = await createStateMachine("compat-probe", {
      StartAt: "Work",
      States: { Work: { Type: "Task", Resource: activityArn, TimeoutSeconds: 30, End: true } },
    });
    const executionArn = await startExecution(stateMachineArn, "probe-1", {});
    await new Promise((r) => setTimeout(r, 1500));
    const execution = await probe.send(new DescribeExecutionCommand({ executionArn }));
    if (execution.status !== "RUNNING") {
      gaps.push(
        `an Activity task state does not wait for a worker: the execution is ${execution.status}` +
          ` (${execution.error}: ${execution.cause})`,
      );
    }
    try {
      const task = await probe.send(new GetActivityTaskCommand({ activityArn }), {
        abortSignal: AbortSignal.timeout(3000),
      });
      if (execution.status === "RUNNING" && !task.taskToken)
        gaps.push("GetActivityTask returned no task for a RUNNING execution");
    } catch (error) {
      const e = error as Error & { $metadata?: { httpStatusCode?: number } };
      // Aborted: a real long poll (no task to hand out), which is support.
      if (e.name !== "AbortError") {
        const reason = /NotImplementedError: .*/.exec(moto.output())?.[0] ?? e.message.slice(0, 200);
        gaps.push(`GetActivityTask fails: HTTP ${e.$metadata?.httpStatusCode} (${reason})`);
      }
    }
    if (execution.status === "RUNNING") await probe.send(new StopExecutionCommand({ executionArn }));
    return gaps;
  }

  /** moto's SQS over the AWS JSON protocol (no SQS SDK in this project); moto only reads the region. */
  async function sqs(action: string, body: object): Promise<Record<string, unknown>> {
    const response = await fetch(moto.url, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": `AmazonSQS.${action}`,
        // moto routes by the service in the credential scope; the signature is not checked.
        authorization: `AWS4-HMAC-SHA256 Credential=test/20250101/${MOTO_REGION}/sqs/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`SQS ${action}: HTTP ${response.status}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  /** The tasks the callback states sent to the queue (token and input), by case name. */
  async function receiveTasks(queueUrl: string, count: number): Promise<Record<string, ActivityTask>> {
    const found: Record<string, ActivityTask> = {};
    const deadline = Date.now() + 15_000;
    while (Object.keys(found).length < count && Date.now() < deadline) {
      const { Messages } = (await sqs("ReceiveMessage", {
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      })) as { Messages?: Array<{ Body: string }> };
      for (const message of Messages ?? []) {
        const body = JSON.parse(message.Body) as { token: string; input: { case: string } };
        found[body.input.case] = { taskToken: body.token, input: JSON.stringify(body.input) };
      }
    }
    if (Object.keys(found).length < count) throw new Error(`only got tasks for ${Object.keys(found)}`);
    return found;
  }
});

function runnerSettings(name: string, targetUrl: string, heartbeatIntervalMs: number): PollerSettings {
  return {
    sourceName: name,
    activityName: name,
    targetUrl: `${targetUrl}/work`,
    maxConcurrency: 1,
    concurrencyPerPoller: 1,
    requestTimeoutMs: 60_000,
    heartbeatIntervalMs,
  };
}

/** Our client layer, unchanged, plus a record of what the task runner asked it to send. */
class RecordingStepFunctions extends StepFunctions {
  readonly failures: Array<{ token: string; error: string; cause: string }> = [];
  readonly heartbeats = new Map<string, number>();

  override sendTaskFailure(taskToken: string, error: string, cause: string): Promise<ReportResult> {
    this.failures.push({ token: taskToken, error, cause });
    return super.sendTaskFailure(taskToken, error, cause);
  }

  override async sendTaskHeartbeat(taskToken: string): Promise<ReportResult> {
    const result = await super.sendTaskHeartbeat(taskToken);
    if (result.kind === "accepted") this.heartbeats.set(taskToken, (this.heartbeats.get(taskToken) ?? 0) + 1);
    return result;
  }
}
