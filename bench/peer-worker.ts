/**
 * The peer of the comparison: npm `step-function-worker` 2.1.0 (aws-sdk v2), the library teams pick
 * today for this job, written as its README shows, doing what a poller does: each task's input is
 * POSTed to the target and the answer becomes the task's output.
 *
 * `node dist/bench/peer-worker.js <activityName> <targetUrl> <concurrency>` with the AWS_* variables
 * pointing at the emulator (AWS_ENDPOINT_URL_SFN: aws-sdk v2 does not read it, so it is passed as the
 * client's `endpoint`). Prints `ready <arn>` once the activity exists; on SIGTERM calls the library's
 * `close()`, prints `done {"tasks":n,"errors":n}` and exits 0.
 *
 * The target call uses node:http with a keep-alive agent, as bench/bare-loop.ts does, so that the
 * comparison is about the pollers and not about the HTTP client of the task function.
 */
import { createRequire } from "node:module";
import { targetPoster } from "./target-client.ts";

/** The part of step-function-worker's API used here (the package ships no types). */
interface WorkerOptions {
  activityArn: string;
  workerName: string;
  concurrency: number;
  awsConfig: Record<string, unknown>;
  fn: (input: unknown, done: (error: Error | null, output?: unknown) => void, heartbeat: () => void) => void;
  logger: Record<"debug" | "info" | "warn" | "error", (...args: unknown[]) => void>;
}
interface Worker {
  on(event: "success" | "error", listener: (value: unknown) => void): void;
  close(callback: () => void): void;
}
type WorkerConstructor = new (options: WorkerOptions) => Worker;
interface StepFunctionsV2 {
  createActivity(params: { name: string }): { promise(): Promise<{ activityArn?: string }> };
}
type StepFunctionsV2Constructor = new (config: Record<string, unknown>) => StepFunctionsV2;

const require = createRequire(import.meta.url);
const StepFunctionWorker = require("step-function-worker") as WorkerConstructor;
const { StepFunctions } = require("aws-sdk") as { StepFunctions: StepFunctionsV2Constructor };

const [activityName, targetUrl, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
if (!activityName || !targetUrl || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write("usage: peer-worker <activityName> <targetUrl> <concurrency>\n");
  process.exit(2);
}
const awsConfig: Record<string, unknown> = {
  region: process.env.AWS_REGION,
  ...(process.env.AWS_ENDPOINT_URL_SFN ? { endpoint: process.env.AWS_ENDPOINT_URL_SFN } : {}),
};

const post = targetPoster(targetUrl, concurrency);

let tasks = 0;
let errors = 0;
const created = await new StepFunctions(awsConfig).createActivity({ name: activityName }).promise();
const activityArn = created.activityArn;
if (!activityArn) throw new Error("CreateActivity returned no ARN");

const quiet = (): void => {};
const worker = new StepFunctionWorker({
  activityArn,
  workerName: "peer",
  concurrency,
  awsConfig,
  // The library hands over the parsed input and JSON.stringifies the output itself.
  fn: (input, done) => {
    post(JSON.stringify(input)).then(
      (answer) => done(null, JSON.parse(answer)),
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
    );
  },
  logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
});
worker.on("success", () => {
  tasks += 1;
});
worker.on("error", (error) => {
  // A failed poll ends that loop for good (the library emits the error and does not poll again).
  errors += 1;
  const detail = (error as { err?: unknown }).err ?? error;
  process.stderr.write(`error: ${detail instanceof Error ? detail.message : String(detail)}\n`);
});
process.once("SIGTERM", () => {
  worker.close(() => {
    process.stdout.write(`done ${JSON.stringify({ tasks, errors })}\n`);
    process.exit(0);
  });
});
process.stdout.write(`ready ${activityArn}\n`);
