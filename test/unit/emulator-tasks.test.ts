import { expect } from "chai";
import { taskIdOf } from "../../src/api/task-id.ts";
import { AwsError } from "../../src/emulator/errors.ts";
import { TaskBoard, type TaskBoardOptions } from "../../src/emulator/tasks.ts";
import { newTaskToken } from "../../src/emulator/tokens.ts";

const ARN = "arn:aws:states:us-east-1:123456789012:activity:unit";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function board(options: Partial<TaskBoardOptions> = {}): TaskBoard {
  return new TaskBoard({
    longPollMs: 200,
    maxPollersPerActivity: 1000,
    handToDisconnectedPollers: true,
    retainClosedTasks: 1000,
    ...options,
  });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof AwsError ? error.code : "not an AwsError";
  }
  return undefined;
}

describe("emulator task board", () => {
  let tasks: TaskBoard;
  afterEach(() => tasks.clear());

  it("serves queued tasks in order and waiting polls first come first served", async () => {
    tasks = board();
    tasks.enqueue({ activityArn: ARN, input: "1" });
    tasks.enqueue({ activityArn: ARN, input: "2" });
    expect((await tasks.poll(ARN, "w"))?.input).to.equal("1");
    expect((await tasks.poll(ARN, "w"))?.input).to.equal("2");
    const first = tasks.poll(ARN, "first");
    const second = tasks.poll(ARN, "second");
    const record = tasks.enqueue({ activityArn: ARN, input: "3" });
    expect((await first)?.input).to.equal("3");
    expect(tasks.get(record.taskId)?.workerName).to.equal("first");
    expect(await second).to.equal(undefined);
  });

  it("records the poller's id of each task (the step-func-task-id header), never the token", async () => {
    tasks = board();
    const { taskId, stepFuncTaskId } = tasks.enqueue({ activityArn: ARN, input: "{}" });
    const handOut = await tasks.poll(ARN, "w");
    expect(stepFuncTaskId).to.equal(taskIdOf(handOut?.taskToken as string));
    const record = tasks.get(taskId);
    expect(record?.stepFuncTaskId).to.equal(stepFuncTaskId);
    expect(JSON.stringify(record)).not.to.contain(handOut?.taskToken);
  });

  it("walks a task through its statuses and answers like AWS afterwards", async () => {
    tasks = board();
    const { taskId } = tasks.enqueue({ activityArn: ARN, input: "{}" });
    const handOut = await tasks.poll(ARN, undefined);
    const token = handOut?.taskToken as string;
    tasks.heartbeat(token);
    expect(tasks.get(taskId)).to.include({ status: "STARTED", heartbeats: 1 });
    expect(codeOf(() => tasks.succeed(token, "{"))).to.equal("InvalidOutput");
    tasks.succeed(token, "[]");
    expect(tasks.get(taskId)).to.include({ status: "SUCCEEDED", output: "[]" });
    expect(codeOf(() => tasks.fail(token, "E", undefined))).to.equal("TaskTimedOut");
    expect(codeOf(() => tasks.heartbeat(newTaskToken()))).to.equal("TaskDoesNotExist");
    expect(codeOf(() => tasks.heartbeat("x"))).to.equal("InvalidToken");
    expect(tasks.countByStatus()).to.deep.equal({
      SCHEDULED: 0,
      STARTED: 0,
      SUCCEEDED: 1,
      FAILED: 0,
      TIMED_OUT: 0,
    });
  });

  it("gives tasks to polls whose client left, unless told not to", async () => {
    tasks = board();
    const gone = new AbortController();
    const poll = tasks.poll(ARN, "gone", gone.signal);
    gone.abort();
    tasks.enqueue({ activityArn: ARN, input: "{}" });
    expect(await poll).to.not.equal(undefined);
    expect(tasks.lostToDisconnectedPollers).to.equal(1);

    const careful = board({ handToDisconnectedPollers: false });
    try {
      const leaving = new AbortController();
      const ended = careful.poll(ARN, "gone", leaving.signal);
      leaving.abort();
      expect(await ended).to.equal(undefined);
      careful.enqueue({ activityArn: ARN, input: "{}" });
      expect(careful.countByStatus().SCHEDULED).to.equal(1);
    } finally {
      careful.clear();
    }
  });

  it("limits waiting polls per activity", async () => {
    tasks = board({ maxPollersPerActivity: 1, longPollMs: 50 });
    const waiting = tasks.poll(ARN, undefined);
    let code: string | undefined;
    await tasks.poll(ARN, undefined).catch((error: AwsError) => {
      code = error.code;
    });
    expect(code).to.equal("ActivityWorkerLimitExceeded");
    expect(await waiting).to.equal(undefined);
  });

  it("forgets the oldest closed tasks beyond the retention limit", async () => {
    tasks = board({ retainClosedTasks: 2 });
    const tokens: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      tasks.enqueue({ activityArn: ARN, input: "{}" });
      const handOut = await tasks.poll(ARN, undefined);
      tokens.push(handOut?.taskToken as string);
      tasks.fail(tokens[i] as string, undefined, undefined);
    }
    expect(tasks.list()).to.have.length(2);
    expect(codeOf(() => tasks.heartbeat(tokens[0] as string))).to.equal("TaskDoesNotExist");
    expect(codeOf(() => tasks.heartbeat(tokens[2] as string))).to.equal("TaskTimedOut");
  });

  it("counts each activity's queue, and its closed tasks including forgotten ones", async () => {
    tasks = board({ retainClosedTasks: 2 });
    const other = `${ARN}-other`;
    for (let i = 0; i < 3; i += 1) {
      tasks.enqueue({ activityArn: ARN, input: "{}" });
      const handOut = await tasks.poll(ARN, undefined);
      tasks.succeed(handOut?.taskToken as string, "{}");
    }
    tasks.enqueue({ activityArn: ARN, input: "{}" });
    tasks.enqueue({ activityArn: other, input: "{}" });
    tasks.enqueue({ activityArn: other, input: "{}" });
    expect(tasks.list({ status: "SUCCEEDED" })).to.have.length(2);
    expect(tasks.activityCounts()).to.deep.equal({
      [ARN]: { scheduled: 1, closed: 3 },
      [other]: { scheduled: 2, closed: 0 },
    });
    tasks.clear();
    expect(tasks.activityCounts()).to.deep.equal({});
  });

  it("stops its clocks when stopped, keeping the records", async () => {
    tasks = board();
    const { taskId } = tasks.enqueue({ activityArn: ARN, input: "{}", timeoutSeconds: 0.05 });
    tasks.stop();
    await sleep(100);
    expect(tasks.get(taskId)?.status).to.equal("SCHEDULED");
  });
});
