/**
 * `npm run demo`: the whole product on one machine, no cluster and no AWS account.
 *
 * 1. starts the Step Functions emulator and a sample HTTP service (src/sample/sample-service.ts),
 * 2. runs `sfn-operator local -f <sources.yaml>` as a real child process, pointed at the emulator
 *    through AWS_ENDPOINT_URL_SFN exactly as it would be pointed at AWS,
 * 3. enqueues a few hundred activity tasks, some of which fail on purpose,
 * 4. prints progress, then a summary: outcomes, errors, peak concurrency against the limit, rate.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  EmulatorClient,
  type RunningEmulator,
  startEmulator,
  type TaskRecord,
} from "../src/emulator/index.ts";
import { configureLogging } from "../src/observability/logger.ts";
import { SampleService } from "../src/sample/sample-service.ts";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/sfn-operator.js");

interface DemoActivity {
  name: string;
  path: string;
  maxConcurrency: number;
  concurrencyPerPoller: number;
  inputs: unknown[];
}

function sumInputs(): unknown[] {
  const inputs: unknown[] = [];
  for (let i = 0; i < 270; i++)
    inputs.push({ numbers: Array.from({ length: 5 }, () => Math.round(Math.random() * 100)) });
  for (let i = 0; i < 15; i++) inputs.push({ numbers: [1, 2, "three"] }); // 422 with step-func-* headers
  for (let i = 0; i < 10; i++) inputs.push({ numbers: [1], flaky: true }); // 503, no headers
  for (let i = 0; i < 5; i++) inputs.push({ numbers: [1], slowMs: 3000 }); // past requestTimeout
  return shuffle(inputs);
}

const ACTIVITIES: DemoActivity[] = [
  { name: "demo-sum", path: "/step/sum", maxConcurrency: 10, concurrencyPerPoller: 5, inputs: sumInputs() },
  {
    name: "demo-split",
    path: "/step/split",
    maxConcurrency: 1,
    concurrencyPerPoller: 1,
    inputs: Array.from({ length: 40 }, (_, i) => ({ text: `task ${i} splits into words` })),
  },
];

async function main(): Promise<number> {
  configureLogging({ level: "warn", format: "text" });
  const emulator = await startEmulator({ port: 0, longPollSeconds: 2 });
  const service = await new SampleService().start();
  const client = new EmulatorClient(emulator.url);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "sfn-operator-demo-"));
  const sourcesFile = path.join(workDir, "sources.yaml");
  const logFile = path.join(workDir, "local-mode.log");
  fs.writeFileSync(sourcesFile, sourcesYaml(service.url));

  say("sfn-operator demo");
  say(`  Step Functions emulator  ${emulator.url}`);
  say(`  sample HTTP service      ${service.url}  (POST /step/sum, POST /step/split)`);
  say(`  sources file             ${sourcesFile}`);
  say(`  local mode's log         ${logFile}`);
  say("");
  say(fs.readFileSync(sourcesFile, "utf8").replace(/^/gm, "    "));

  const local = startLocalMode(sourcesFile, logFile, emulator.url);
  const started = performance.now();
  const arns = new Map<string, string>();
  for (const activity of ACTIVITIES) {
    const result = await client.enqueue({ activityName: activity.name, input: activity.inputs[0] });
    arns.set(activity.name, result.activityArn);
    for (const input of activity.inputs.slice(1))
      await client.enqueue({ activityArn: result.activityArn, input });
  }
  const total = ACTIVITIES.reduce((sum, a) => sum + a.inputs.length, 0);
  say(`Enqueued ${total} tasks; local mode is working through them:`);

  let records: TaskRecord[] = [];
  for (;;) {
    records = await client.listTasks();
    const closed = records.filter((r) => r.closedAt !== undefined).length;
    const parts = ACTIVITIES.map((a) => {
      const mine = records.filter((r) => r.activityArn === arns.get(a.name));
      const done = mine.filter((r) => r.closedAt !== undefined).length;
      const stats = service.statsFor(a.path);
      return `${a.name} ${done}/${mine.length} (in flight ${stats.inFlight}/${a.maxConcurrency})`;
    });
    say(`  ${seconds(performance.now() - started)}  ${parts.join("   ")}`);
    if (closed === total) break;
    if (local.exitCode !== null)
      throw new Error(`local mode exited early (${local.exitCode}); see ${logFile}`);
    if (performance.now() - started > 120_000) throw new Error(`not done after 120 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const elapsedMs = performance.now() - started;

  say("");
  say("All tasks reported. Stopping local mode with SIGTERM (it finishes outstanding polls first)...");
  local.kill("SIGTERM");
  const [exitCode] = (await once(local, "exit")) as [number | null];
  say(`local mode exited with code ${exitCode}.`);
  printSummary(records, arns, service, elapsedMs);
  await cleanUp(emulator, service);
  return exitCode === 0 ? 0 : 1;
}

function printSummary(
  records: TaskRecord[],
  arns: Map<string, string>,
  service: SampleService,
  elapsedMs: number,
): void {
  say("");
  say("Summary");
  for (const activity of ACTIVITIES) {
    const mine = records.filter((r) => r.activityArn === arns.get(activity.name));
    const succeeded = mine.filter((r) => r.status === "SUCCEEDED").length;
    const failed = mine.filter((r) => r.status === "FAILED");
    const peak = service.statsFor(activity.path).peak;
    say(`  ${activity.name}: ${mine.length} tasks, ${succeeded} succeeded, ${failed.length} failed`);
    say(
      `    peak concurrency at the service: ${peak} (maxConcurrency ${activity.maxConcurrency}: ${peak <= activity.maxConcurrency ? "never exceeded" : "EXCEEDED"})`,
    );
    const byError = new Map<string, TaskRecord[]>();
    for (const record of failed)
      byError.set(record.error ?? "?", [...(byError.get(record.error ?? "?") ?? []), record]);
    for (const [error, group] of byError) {
      say(`    failed x${String(group.length).padEnd(3)} error=${error}`);
      say(`                cause=${(group[0]?.cause ?? "").slice(0, 110)}`);
    }
  }
  const total = records.length;
  say(`  ${total} tasks in ${seconds(elapsedMs)}: ${(total / (elapsedMs / 1000)).toFixed(1)} tasks/s`);
  say("");
  say(
    "What happened: each task was taken with GetActivityTask, POSTed to the service, and its outcome reported",
  );
  say("with SendTaskSuccess (a 200 with JSON) or SendTaskFailure (anything else, with the service's");
  say(
    "step-func-error/step-func-cause headers or an error the poller names, such as HTTP.503 or Target.Timeout).",
  );
  say("Against AWS, drop the emulator: `npx sfn-operator local -f sources.yaml` with your AWS credentials.");
}

function startLocalMode(sourcesFile: string, logFile: string, endpoint: string): ChildProcess {
  const log = fs.openSync(logFile, "w");
  return spawn(process.execPath, [BIN, "local", "-f", sourcesFile, "--log-format", "json"], {
    env: {
      ...process.env,
      AWS_ENDPOINT_URL_SFN: endpoint,
      AWS_REGION: "us-east-1",
      // The emulator does not check signatures, but the SDK wants some credentials to sign with.
      AWS_ACCESS_KEY_ID: "demo",
      AWS_SECRET_ACCESS_KEY: "demo",
      AWS_EC2_METADATA_DISABLED: "true",
    },
    stdio: ["ignore", log, log],
  });
}

function sourcesYaml(serviceUrl: string): string {
  const lines = ["# Written by the demo: two activities served by one HTTP service.", "sources:"];
  for (const a of ACTIVITIES) {
    lines.push(`  - activityName: ${a.name}`, `    target: ${serviceUrl}`, `    path: ${a.path}`);
    lines.push(
      `    maxConcurrency: ${a.maxConcurrency}`,
      `    concurrencyPerPoller: ${a.concurrencyPerPoller}`,
    );
    lines.push("    requestTimeout: 1s");
  }
  return `${lines.join("\n")}\n`;
}

async function cleanUp(emulator: RunningEmulator, service: SampleService): Promise<void> {
  await Promise.all([emulator.close(), service.close()]);
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
