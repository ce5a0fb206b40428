/**
 * The Step Functions emulator driven by the real `@aws-sdk/client-sfn`: if the SDK reads our answers
 * as it reads AWS's (typed exceptions, retries, long polls), code tested against the emulator behaves
 * the same against AWS.
 */
import {
  CreateActivityCommand,
  DeleteActivityCommand,
  DescribeActivityCommand,
  GetActivityTaskCommand,
  type GetActivityTaskCommandOutput,
  ListActivitiesCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
} from "@aws-sdk/client-sfn";
import { expect } from "chai";
import { startTestEmulator, type TestEmulator } from "../support/emulator.ts";

const LONG_POLL_SECONDS = 0.5;

/** The rejection of `promise`, which must be an error named `name`. */
async function expectAwsError(
  promise: Promise<unknown>,
  name: string,
): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).name, (error as Error).message).to.equal(name);
    return error as Error & Record<string, unknown>;
  }
  expect.fail(`expected ${name}, the call succeeded`);
}

function statusOf(error: Record<string, unknown>): number | undefined {
  return (error.$metadata as { httpStatusCode?: number } | undefined)?.httpStatusCode;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until the emulator counts `count` waiting polls on the activity. */
async function waitForPollers(t: TestEmulator, activityArn: string, count: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while ((t.emulator.state.stats().waitingPollers[activityArn] ?? 0) < count) {
    if (Date.now() > deadline) expect.fail(`${count} waiting pollers expected`);
    await sleep(10);
  }
}

describe("Step Functions emulator (real AWS SDK)", function () {
  this.timeout(10_000);
  let t: TestEmulator;
  let sfn: SFNClient;

  before(async () => {
    t = await startTestEmulator({ longPollSeconds: LONG_POLL_SECONDS });
    sfn = t.sfn({ maxAttempts: 1 });
  });
  afterEach(() => t.side.reset());
  after(() => t.close());

  async function createActivity(name = "work"): Promise<string> {
    const { activityArn } = await sfn.send(new CreateActivityCommand({ name }));
    return activityArn as string;
  }

  /** Enqueue one task and take it with GetActivityTask; returns its id and token. */
  async function startTask(options: { heartbeatSeconds?: number; timeoutSeconds?: number } = {}) {
    const activityArn = await createActivity();
    const { tasks } = await t.side.enqueue({ activityArn, input: { n: 1 }, ...options });
    const got = await sfn.send(new GetActivityTaskCommand({ activityArn, workerName: "worker-1" }));
    expect(got.taskToken).to.be.a("string");
    return { activityArn, taskId: tasks[0]?.taskId as string, token: got.taskToken as string };
  }

  describe("activities", () => {
    it("creates, describes, lists and deletes", async () => {
      const first = await createActivity("first");
      const second = await createActivity("second");
      expect(first).to.equal("arn:aws:states:us-east-1:123456789012:activity:first");

      const described = await sfn.send(new DescribeActivityCommand({ activityArn: first }));
      expect(described.name).to.equal("first");
      expect(described.creationDate).to.be.instanceOf(Date);

      const page1 = await sfn.send(new ListActivitiesCommand({ maxResults: 1 }));
      expect(page1.activities?.map((a) => a.name)).to.deep.equal(["first"]);
      expect(page1.nextToken).to.be.a("string");
      const page2 = await sfn.send(new ListActivitiesCommand({ maxResults: 1, nextToken: page1.nextToken }));
      expect(page2.activities?.map((a) => a.activityArn)).to.deep.equal([second]);
      expect(page2.nextToken).to.equal(undefined);

      await sfn.send(new DeleteActivityCommand({ activityArn: first }));
      await expectAwsError(
        sfn.send(new DescribeActivityCommand({ activityArn: first })),
        "ActivityDoesNotExist",
      );
      // Deleting again (a well-formed, unknown ARN) succeeds, as at AWS.
      await sfn.send(new DeleteActivityCommand({ activityArn: first }));
      const all = await sfn.send(new ListActivitiesCommand({}));
      expect(all.activities?.map((a) => a.name)).to.deep.equal(["second"]);
    });

    it("is idempotent by name", async () => {
      const a = await sfn.send(new CreateActivityCommand({ name: "same" }));
      const b = await sfn.send(new CreateActivityCommand({ name: "same" }));
      expect(b.activityArn).to.equal(a.activityArn);
      expect(b.creationDate?.getTime()).to.equal(a.creationDate?.getTime());
      expect((await t.side.stats()).activities).to.equal(1);
    });

    it("refuses bad names, ARNs and page tokens", async () => {
      await expectAwsError(sfn.send(new CreateActivityCommand({ name: "has space" })), "InvalidName");
      await expectAwsError(
        sfn.send(new CreateActivityCommand({ name: "x".repeat(81) })),
        "ValidationException",
      );
      await expectAwsError(
        sfn.send(new DescribeActivityCommand({ activityArn: "not-an-arn" })),
        "InvalidArn",
      );
      await expectAwsError(
        sfn.send(new GetActivityTaskCommand({ activityArn: "arn:aws:s3:::bucket" })),
        "InvalidArn",
      );
      await expectAwsError(sfn.send(new ListActivitiesCommand({ nextToken: "bogus" })), "InvalidToken");
    });
  });

  describe("GetActivityTask", () => {
    it("answers empty after the long-poll window", async () => {
      const activityArn = await createActivity();
      const started = Date.now();
      const result = await sfn.send(new GetActivityTaskCommand({ activityArn }));
      const elapsed = Date.now() - started;
      expect(result.taskToken).to.equal(undefined);
      expect(elapsed).to.be.within(LONG_POLL_SECONDS * 1000 - 50, LONG_POLL_SECONDS * 1000 + 700);
    });

    it("answers at once when a task is enqueued while it waits", async () => {
      const activityArn = await createActivity();
      const poll = sfn.send(new GetActivityTaskCommand({ activityArn, workerName: "w" }));
      await waitForPollers(t, activityArn, 1);
      const enqueuedAt = Date.now();
      await t.side.enqueue({ activityArn, input: { hello: "world" } });
      const result = await poll;
      expect(Date.now() - enqueuedAt).to.be.below(300);
      expect(result.input).to.equal('{"hello":"world"}');
      expect(result.taskToken).to.have.length.above(300);
    });

    it("hands a queued task out immediately and serves waiters first come first served", async () => {
      const activityArn = await createActivity();
      await t.side.enqueue({ activityArn, input: "[1]" });
      const queued = await sfn.send(new GetActivityTaskCommand({ activityArn }));
      expect(queued.input).to.equal("[1]");

      const first = sfn.send(new GetActivityTaskCommand({ activityArn, workerName: "first" }));
      await waitForPollers(t, activityArn, 1);
      const second = sfn.send(new GetActivityTaskCommand({ activityArn, workerName: "second" }));
      await waitForPollers(t, activityArn, 2);
      const { tasks } = await t.side.enqueue({ activityArn, input: "[2]" });
      expect((await first).input).to.equal("[2]");
      expect((await second).taskToken).to.equal(undefined);
      expect((await t.side.getTask(tasks[0]?.taskId as string)).workerName).to.equal("first");
    });

    it("refuses unknown activities and long worker names", async () => {
      await expectAwsError(
        sfn.send(
          new GetActivityTaskCommand({ activityArn: "arn:aws:states:us-east-1:123456789012:activity:nope" }),
        ),
        "ActivityDoesNotExist",
      );
      const activityArn = await createActivity();
      await expectAwsError(
        sfn.send(new GetActivityTaskCommand({ activityArn, workerName: "w".repeat(81) })),
        "ValidationException",
      );
    });

    it("hands tasks to a poll whose client aborted (the task is lost until its timeout)", async () => {
      const activityArn = await createActivity();
      const abort = new AbortController();
      const poll = sfn.send(new GetActivityTaskCommand({ activityArn }), { abortSignal: abort.signal });
      await waitForPollers(t, activityArn, 1);
      abort.abort();
      await expectAwsError(poll, "AbortError");
      const { tasks } = await t.side.enqueue({ activityArn, timeoutSeconds: 0.6 });
      const taskId = tasks[0]?.taskId as string;
      expect((await t.side.getTask(taskId)).status).to.equal("STARTED");
      expect((await t.side.stats()).tasksLostToDisconnectedPollers).to.equal(1);
      // Nobody else can get it; it comes back only as a timeout.
      const other = await sfn.send(new GetActivityTaskCommand({ activityArn }));
      expect(other.taskToken).to.equal(undefined);
      await t.side.waitForTasks((all) => all.every((task) => task.status === "TIMED_OUT"), 2000);
    });
  });

  describe("task round trips (visible through the side API)", () => {
    it("SendTaskSuccess", async () => {
      const { taskId, token } = await startTask();
      const started = await t.side.getTask(taskId);
      expect(started).to.include({ status: "STARTED", workerName: "worker-1", input: '{"n":1}' });
      expect(started.startedAt).to.be.a("string");
      await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"sum":3}' }));
      const task = await t.side.getTask(taskId);
      expect(task).to.include({ status: "SUCCEEDED", output: '{"sum":3}' });
      expect(task.closedAt).to.be.a("string");
    });

    it("SendTaskFailure", async () => {
      const { taskId, token } = await startTask();
      await sfn.send(new SendTaskFailureCommand({ taskToken: token, error: "Http.500", cause: "boom" }));
      expect(await t.side.getTask(taskId)).to.include({ status: "FAILED", error: "Http.500", cause: "boom" });
    });

    it("SendTaskHeartbeat", async () => {
      const { taskId, token } = await startTask();
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
      const task = await t.side.getTask(taskId);
      expect(task).to.include({ status: "STARTED", heartbeats: 2 });
      expect(task.lastHeartbeatAt).to.be.a("string");
    });

    it("never shows task tokens in the side API", async () => {
      const { token } = await startTask();
      const answers = [await t.side.listTasks(), await t.side.stats()];
      expect(JSON.stringify(answers)).not.to.include(token);
    });
  });

  describe("SendTask* errors", () => {
    it("InvalidToken for tokens we could not have issued", async () => {
      await startTask();
      await expectAwsError(sfn.send(new SendTaskHeartbeatCommand({ taskToken: "garbage" })), "InvalidToken");
      await expectAwsError(
        sfn.send(new SendTaskSuccessCommand({ taskToken: "A".repeat(2049), output: "{}" })),
        "InvalidToken",
      );
    });

    it("TaskDoesNotExist for well-formed unknown tokens", async () => {
      const { token } = await startTask();
      await t.side.reset({ keepActivities: true });
      await expectAwsError(
        sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: "{}" })),
        "TaskDoesNotExist",
      );
    });

    it("TaskTimedOut once a task is closed", async () => {
      const { token } = await startTask();
      await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: "{}" }));
      for (const command of [
        new SendTaskSuccessCommand({ taskToken: token, output: "{}" }),
        new SendTaskFailureCommand({ taskToken: token }),
        new SendTaskHeartbeatCommand({ taskToken: token }),
      ]) {
        const error = await expectAwsError(sfn.send(command as SendTaskSuccessCommand), "TaskTimedOut");
        expect(error.message).to.equal("Provided task does not exist anymore");
      }
    });

    it("InvalidOutput and the output size limit (UTF-8 bytes)", async () => {
      const { taskId, token } = await startTask();
      await expectAwsError(
        sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: "not json" })),
        "InvalidOutput",
      );
      // 131,072 two-byte characters: half the limit in characters, over it in bytes.
      const tooBig = `"${"é".repeat(131_072)}"`;
      await expectAwsError(
        sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: tooBig })),
        "ValidationException",
      );
      const justFits = `"${"a".repeat(262_142)}"`;
      await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: justFits }));
      expect((await t.side.getTask(taskId)).output).to.have.length(262_144);
    });

    it("limits error and cause lengths", async () => {
      const { taskId, token } = await startTask();
      await expectAwsError(
        sfn.send(new SendTaskFailureCommand({ taskToken: token, error: "e".repeat(257) })),
        "ValidationException",
      );
      await expectAwsError(
        sfn.send(new SendTaskFailureCommand({ taskToken: token, cause: "c".repeat(32_769) })),
        "ValidationException",
      );
      await sfn.send(
        new SendTaskFailureCommand({ taskToken: token, error: "e".repeat(256), cause: "c".repeat(32_768) }),
      );
      expect((await t.side.getTask(taskId)).status).to.equal("FAILED");
    });
  });

  describe("protocol errors (raw HTTP)", () => {
    async function post(target: string | undefined, body: string) {
      const response = await fetch(t.emulator.url, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.0",
          ...(target ? { "X-Amz-Target": target } : {}),
        },
        body,
      });
      return { response, body: (await response.json()) as { __type: string; message: string } };
    }

    it("UnknownOperationException, SerializationException and ValidationException", async () => {
      const unknown = await post("AWSStepFunctions.StartExecution", "{}");
      expect(unknown.response.status).to.equal(400);
      expect(unknown.body.__type).to.match(/#UnknownOperationException$/);
      expect(unknown.response.headers.get("content-type")).to.equal("application/x-amz-json-1.0");
      expect(unknown.response.headers.get("x-amzn-requestid")).to.match(/^[0-9a-f-]{36}$/);
      expect((await post(undefined, "{}")).body.__type).to.match(/#UnknownOperationException$/);
      expect((await post("AWSStepFunctions.CreateActivity", "{not json")).body.__type).to.match(
        /#SerializationException$/,
      );
      expect((await post("AWSStepFunctions.CreateActivity", '{"name": 5}')).body.__type).to.match(
        /#SerializationException$/,
      );
      expect((await post("AWSStepFunctions.GetActivityTask", "{}")).body.__type).to.match(
        /#ValidationException$/,
      );
      const sfnError = await post("AWSStepFunctions.DescribeActivity", '{"activityArn":"x"}');
      expect(sfnError.body.__type).to.equal("com.amazonaws.swf.service.v2.model#InvalidArn");
    });
  });

  describe("clocks", () => {
    it("times a task out when heartbeats stop", async () => {
      const { taskId, token } = await startTask({ heartbeatSeconds: 0.3 });
      await sleep(150);
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
      await sleep(200);
      // 350 ms after the hand-out, but only 200 ms after the heartbeat: still running.
      expect((await t.side.getTask(taskId)).status).to.equal("STARTED");
      await sleep(250);
      const task = await t.side.getTask(taskId);
      expect(task).to.include({ status: "TIMED_OUT", error: "States.Timeout" });
      await expectAwsError(
        sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: "{}" })),
        "TaskTimedOut",
      );
    });

    it("times a task out from the moment it is enqueued, even in the queue", async () => {
      const activityArn = await createActivity();
      const { tasks } = await t.side.enqueue({ activityArn, timeoutSeconds: 0.2, count: 2 });
      await sleep(350);
      const records = await t.side.listTasks({ activityArn });
      expect(records.map((r) => r.status)).to.deep.equal(["TIMED_OUT", "TIMED_OUT"]);
      expect(records[0]?.taskId).to.equal(tasks[0]?.taskId);
      // The queue is empty now.
      await t.side.enqueue({ activityArn, input: '"fresh"' });
      expect((await sfn.send(new GetActivityTaskCommand({ activityArn }))).input).to.equal('"fresh"');
    });

    it("times a started task out despite heartbeats", async () => {
      const { taskId, token } = await startTask({ timeoutSeconds: 0.4, heartbeatSeconds: 5 });
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
      await sleep(500);
      expect((await t.side.getTask(taskId)).status).to.equal("TIMED_OUT");
      await expectAwsError(sfn.send(new SendTaskHeartbeatCommand({ taskToken: token })), "TaskTimedOut");
    });
  });

  describe("fault injection", () => {
    it("throttles", async () => {
      await t.side.setFaults([{ actions: ["CreateActivity"], throttleRate: 1 }]);
      const error = await expectAwsError(
        sfn.send(new CreateActivityCommand({ name: "x" })),
        "ThrottlingException",
      );
      expect(statusOf(error)).to.equal(400);
      // Other actions are untouched.
      await sfn.send(new ListActivitiesCommand({}));
      expect((await t.side.stats()).faults.throttle).to.equal(1);
    });

    it("answers 500 InternalFailure and 503 ServiceUnavailable", async () => {
      await t.side.setFaults([
        { errorRate: 1, remaining: 1 },
        { errorRate: 1, errorStatus: 503, remaining: 1 },
      ]);
      const internal = await expectAwsError(sfn.send(new ListActivitiesCommand({})), "InternalFailure");
      expect(statusOf(internal)).to.equal(500);
      expect(internal.$fault).to.equal("server");
      const unavailable = await expectAwsError(sfn.send(new ListActivitiesCommand({})), "ServiceUnavailable");
      expect(statusOf(unavailable)).to.equal(503);
      await sfn.send(new ListActivitiesCommand({}));
      expect(await t.side.faults()).to.deep.equal([]);
    });

    it("delays answers", async () => {
      await t.side.setFaults([{ actions: ["ListActivities"], delayMs: 300 }]);
      const started = Date.now();
      await sfn.send(new ListActivitiesCommand({}));
      expect(Date.now() - started).to.be.at.least(290);
      expect((await t.side.stats()).faults.delay).to.equal(1);
    });

    it("lets the SDK's default retries through a rule with remaining: 2", async () => {
      const retrying = t.sfn();
      await t.side.setFaults([{ actions: ["CreateActivity"], errorRate: 1, remaining: 2 }]);
      const result = await retrying.send(new CreateActivityCommand({ name: "retried" }));
      expect(result.$metadata.attempts).to.equal(3);
      await t.side.setFaults([{ actions: ["DescribeActivity"], throttleRate: 1, remaining: 1 }]);
      const described = await retrying.send(new DescribeActivityCommand({ activityArn: result.activityArn }));
      expect(described.$metadata.attempts).to.equal(2);
      const stats = await t.side.stats();
      expect(stats.errors).to.include({ InternalFailure: 2, ThrottlingException: 1 });
    });

    it("refuses malformed rules", async () => {
      for (const rule of [{ throttleRate: 2 }, { errorStatus: 502 }, { typo: 1 }]) {
        const response = await fetch(`${t.emulator.url}/_emulator/faults`, {
          method: "PUT",
          body: JSON.stringify([rule]),
        });
        expect(response.status, JSON.stringify(rule)).to.equal(400);
      }
    });
  });

  describe("side API", () => {
    it("enqueues by name or ARN, filters and counts", async () => {
      const byName = await t.side.enqueue({ activityName: "made-on-demand", input: { a: 1 }, count: 3 });
      expect(byName.tasks).to.have.length(3);
      expect(byName.activityArn).to.match(/:activity:made-on-demand$/);
      await t.side.enqueue({ activityArn: byName.activityArn, input: "true" });
      await sfn.send(new GetActivityTaskCommand({ activityArn: byName.activityArn }));
      expect(await t.side.listTasks({ activityArn: byName.activityArn, status: "SCHEDULED" })).to.have.length(
        3,
      );
      expect(await t.side.listTasks({ status: "STARTED" })).to.have.length(1);
      const stats = await t.side.stats();
      expect(stats.tasks).to.deep.equal({ SCHEDULED: 3, STARTED: 1, SUCCEEDED: 0, FAILED: 0, TIMED_OUT: 0 });
      expect(stats.requests.GetActivityTask).to.equal(1);
    });

    it("waits for tasks and says how far they got", async () => {
      await t.side.enqueue({ activityName: "waited", count: 2, timeoutSeconds: 0.1 });
      expect(await t.side.waitForTasks({ closedCount: 2 }, 2000)).to.have.length(2);
      try {
        await t.side.waitForTasks({ closedCount: 3 }, 150);
        expect.fail("waitForTasks did not time out");
      } catch (error) {
        expect((error as Error).message).to.match(
          /no 3 closed tasks after 150 ms; tasks by status: TIMED_OUT=2/,
        );
      }
    });

    it("refuses bad requests", async () => {
      const unknownArn = "arn:aws:states:us-east-1:123456789012:activity:none";
      for (const [request, status] of [
        [{ activityArn: unknownArn }, 404],
        [{ activityName: "a", input: "not json" }, 400],
        [{}, 400],
        [{ activityName: "a", count: 0 }, 400],
        [{ activityName: "bad name" }, 400],
      ] as const) {
        try {
          await t.side.enqueue(request);
          expect.fail(`${JSON.stringify(request)} was accepted`);
        } catch (error) {
          expect((error as { status?: number }).status, JSON.stringify(request)).to.equal(status);
        }
      }
      try {
        await t.side.getTask("missing");
        expect.fail("missing task found");
      } catch (error) {
        expect((error as { status?: number }).status).to.equal(404);
      }
    });
  });
});

describe("Step Functions emulator options", function () {
  this.timeout(10_000);

  it("answers ActivityWorkerLimitExceeded beyond maxPollersPerActivity", async () => {
    const t = await startTestEmulator({ longPollSeconds: LONG_POLL_SECONDS, maxPollersPerActivity: 2 });
    try {
      const sfn = t.sfn({ maxAttempts: 1 });
      const { activityArn } = await sfn.send(new CreateActivityCommand({ name: "busy" }));
      const arn = activityArn as string;
      const polls = [sfn.send(new GetActivityTaskCommand({ activityArn: arn }))];
      await waitForPollers(t, arn, 1);
      polls.push(sfn.send(new GetActivityTaskCommand({ activityArn: arn })));
      await waitForPollers(t, arn, 2);
      await expectAwsError(
        sfn.send(new GetActivityTaskCommand({ activityArn: arn })),
        "ActivityWorkerLimitExceeded",
      );
      await Promise.all(polls);
      // The limit counts waiting polls only: with them gone, polling works again.
      await t.side.enqueue({ activityArn: arn });
      expect((await sfn.send(new GetActivityTaskCommand({ activityArn: arn }))).taskToken).to.be.a("string");
    } finally {
      await t.close();
    }
  });

  it("keeps tasks from polls whose client left when handToDisconnectedPollers is false", async () => {
    const t = await startTestEmulator({ longPollSeconds: 5, handToDisconnectedPollers: false });
    try {
      const sfn = t.sfn({ maxAttempts: 1 });
      const { activityArn } = await sfn.send(new CreateActivityCommand({ name: "careful" }));
      const arn = activityArn as string;
      const abort = new AbortController();
      const poll = sfn.send(new GetActivityTaskCommand({ activityArn: arn }), { abortSignal: abort.signal });
      await waitForPollers(t, arn, 1);
      abort.abort();
      await expectAwsError(poll, "AbortError");
      const deadline = Date.now() + 2000;
      while ((t.emulator.state.stats().waitingPollers[arn] ?? 0) > 0 && Date.now() < deadline)
        await sleep(10);
      await t.side.enqueue({ activityArn: arn, input: "1" });
      expect((await t.side.listTasks())[0]?.status).to.equal("SCHEDULED");
      expect((await sfn.send(new GetActivityTaskCommand({ activityArn: arn }))).input).to.equal("1");
    } finally {
      await t.close();
    }
  });

  it("ends open long polls promptly on close", async () => {
    const t = await startTestEmulator({ longPollSeconds: 30 });
    const sfn = t.sfn({ maxAttempts: 1 });
    const { activityArn } = await sfn.send(new CreateActivityCommand({ name: "closing" }));
    const poll: Promise<GetActivityTaskCommandOutput | Error> = sfn
      .send(new GetActivityTaskCommand({ activityArn }))
      .catch((error: Error) => error);
    await waitForPollers(t, activityArn as string, 1);
    const started = Date.now();
    await t.emulator.close();
    const result = await poll;
    expect(Date.now() - started).to.be.below(1000);
    // Only now: destroying the SDK client earlier could cut the answer while the SDK reads it.
    await t.close();
    expect(result).not.to.be.instanceOf(Error);
    expect((result as GetActivityTaskCommandOutput).taskToken).to.equal(undefined);
  });
});
