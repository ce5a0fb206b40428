/**
 * The yardstick of the dispatch benchmark: the least a poller can be. `loops` concurrent loops of
 * GetActivityTask -> POST the input to the target -> SendTaskSuccess with its answer, written with
 * `@aws-sdk/client-sfn` and `node:http` alone: no semaphore, no metrics, no heartbeats, no outcome
 * rules, no logging, one SDK client.
 *
 * `node dist/bench/bare-loop.js <activityName> <targetUrl> <loops> [axios]` with the AWS_* variables
 * pointing at the emulator (`axios`: the target through axios, as sfn-operator calls it); prints
 * `ready <arn>` once the activity is resolved, and on SIGTERM finishes the tasks it holds, prints
 * `done {"tasks":n,"errors":n}` and exits.
 */
import http from "node:http";
import {
  CreateActivityCommand,
  GetActivityTaskCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from "@aws-sdk/client-sfn";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { axiosTargetPoster, targetPoster } from "./target-client.ts";

const [activityName, targetUrl, loopsText, targetClient] = process.argv.slice(2);
const loops = Number(loopsText);
if (!activityName || !targetUrl || !Number.isInteger(loops) || loops < 1) {
  process.stderr.write("usage: bare-loop <activityName> <targetUrl> <loops>\n");
  process.exit(2);
}

// Sockets for every loop's poll plus its report: the SDK's default pool (50) would otherwise cap the
// loops, and the yardstick must not be slowed by something a one-line option fixes.
const client = new SFNClient({
  maxAttempts: 3,
  requestHandler: new NodeHttpHandler({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 2 * loops }),
  }),
});
const post =
  targetClient === "axios" ? await axiosTargetPoster(targetUrl, loops) : targetPoster(targetUrl, loops);

let stopping = false;
let tasks = 0;
let errors = 0;

async function loop(activityArn: string): Promise<void> {
  while (!stopping) {
    try {
      const task = await client.send(new GetActivityTaskCommand({ activityArn, workerName: "bare-loop" }));
      if (!task.taskToken) continue;
      const output = await post(task.input ?? "{}");
      await client.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output }));
      tasks += 1;
    } catch (error) {
      errors += 1;
      process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const created = await client.send(new CreateActivityCommand({ name: activityName }));
const arn = created.activityArn;
if (!arn) throw new Error("CreateActivity returned no ARN");
process.once("SIGTERM", () => {
  stopping = true;
});
process.stdout.write(`ready ${arn}\n`);
await Promise.all(Array.from({ length: loops }, () => loop(arn)));
process.stdout.write(`done ${JSON.stringify({ tasks, errors })}\n`);
client.destroy();
process.exit(errors > 0 ? 1 : 0);
