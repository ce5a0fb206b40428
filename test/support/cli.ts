/**
 * Runs the real `sfn-operator` CLI (bin/sfn-operator.js, built by `npm run build`) as a child
 * process, as users run it, and keeps its output for assertions and for failing tests to print.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { repoRoot } from "./repo-root.ts";

export const REPO_ROOT = repoRoot(path.dirname(fileURLToPath(import.meta.url)));
export const BIN = path.join(REPO_ROOT, "bin/sfn-operator.js");

/** Environment for the AWS SDK against the emulator: fake credentials, no profile or IMDS lookups. */
export function awsEnvFor(endpoint: string): NodeJS.ProcessEnv {
  return {
    AWS_ENDPOINT_URL_SFN: endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

export class CliProcess {
  readonly child: ChildProcess;
  output = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, SFN_LOG_FORMAT: "json", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    this.exited = once(this.child, "exit").then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
  }

  /** Parsed JSON log records printed so far. */
  logs(): Array<Record<string, unknown>> {
    return this.output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async waitForLog(
    predicate: (record: Record<string, unknown>) => boolean,
    timeoutMs = 15_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.logs().some(predicate)) return;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`expected log line did not appear; output so far:\n${this.tail()}`);
  }

  /** Stops the process (SIGKILL after `timeoutMs`) and returns how it exited. */
  async stop(timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  tail(lines = 40): string {
    return this.output.split("\n").slice(-lines).join("\n");
  }
}

/** Runs the CLI to completion and returns exit code and output. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string }> {
  const cli = new CliProcess(args, env);
  const { code } = await cli.exited;
  return { code, output: cli.output };
}

/** Writes a temporary file and returns its path. */
export async function writeTempFile(name: string, content: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-test-"));
  const file = path.join(dir, name);
  await fs.writeFile(file, content);
  return file;
}
