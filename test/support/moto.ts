/**
 * moto's server (getmoto/moto, a Python AWS mock) as an independent Step Functions endpoint for the
 * compatibility tests: started from the virtualenv that test/compat/install-moto.sh builds outside
 * the repository, on a free loopback port, with state machine execution switched on.
 *
 * By default moto's Step Functions backend only records executions (they stay RUNNING with canned
 * data); `stepfunctions.execute_state_machine` switches it to its ASL interpreter, which really runs
 * state machines. moto's server takes that setting at run time on `POST /moto-api/config`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { SFNClient, type SFNClientConfig } from "@aws-sdk/client-sfn";
import { awsEnvFor } from "./cli.ts";

/** Where install-moto.sh puts the virtualenv (SFN_TEST_MOTO_VENV overrides, for both). */
export const MOTO_VENV =
  process.env.SFN_TEST_MOTO_VENV ?? path.join(os.homedir(), ".cache/sfn-operator/moto-venv");

/** Fake credentials: moto accepts any, and real ones must never reach a test endpoint. */
export const MOTO_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
export const MOTO_REGION = "us-east-1";
/** moto's default account: the one in every ARN it hands out. */
export const MOTO_ACCOUNT = "123456789012";

export interface MotoOptions {
  venv?: string;
  /** Switch on moto's state machine interpreter (default true). */
  executeStateMachines?: boolean;
  /** How long to wait for the server to listen and answer (default 30 s). */
  startTimeoutMs?: number;
}

export class MotoServer {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<unknown>;
  readonly #output: { text: string };
  readonly #clients: SFNClient[] = [];
  readonly #killOnExit: () => void;

  private constructor(
    child: ChildProcess,
    url: string,
    output: { text: string },
    exited: Promise<unknown>,
    killOnExit: () => void,
  ) {
    this.#child = child;
    this.url = url;
    this.#output = output;
    this.#exited = exited;
    this.#killOnExit = killOnExit;
  }

  static async start(options: MotoOptions = {}): Promise<MotoServer> {
    const venv = options.venv ?? MOTO_VENV;
    const bin = path.join(venv, "bin/moto_server");
    if (!existsSync(bin)) {
      throw new Error(`moto is not installed at ${venv}: run test/compat/install-moto.sh first`);
    }
    const startTimeoutMs = options.startTimeoutMs ?? 30_000;
    // moto's interpreter calls other services (SQS for callback tasks, ...) at
    // http://localhost:$MOTO_PORT, so the server must know its own port: port 0 will not do. A port
    // freed just before the spawn can be taken by someone else in between, hence the retries.
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await MotoServer.#spawn(bin, await freePort(), options, startTimeoutMs);
      } catch (error) {
        lastError = error;
        if (!/Address already in use/.test((error as Error).message)) break;
      }
    }
    throw lastError;
  }

  static async #spawn(
    bin: string,
    port: number,
    options: MotoOptions,
    startTimeoutMs: number,
  ): Promise<MotoServer> {
    const child = spawn(bin, ["--host", "127.0.0.1", "--port", String(port)], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        MOTO_PORT: String(port),
        PYTHONUNBUFFERED: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = { text: "" };
    const append = (chunk: Buffer): void => {
      output.text += chunk.toString();
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    // Settles on exit, and on a failed spawn (which emits "error" and no "exit"), never rejects.
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (error) => {
        output.text += `spawn failed: ${error.message}\n`;
        resolve();
      });
    });
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    // mocha ends the process with process.exit() (`exit: true`): without this a failed run would
    // leave the server behind.
    const killOnExit = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    process.on("exit", killOnExit);

    const server = new MotoServer(child, `http://127.0.0.1:${port}`, output, exited, killOnExit);
    try {
      await server.#configure(options.executeStateMachines ?? true, startTimeoutMs, () => gone);
      return server;
    } catch (error) {
      killOnExit();
      await exited;
      process.off("exit", killOnExit);
      throw new Error(`moto_server did not start: ${(error as Error).message}\n${output.text.slice(-4000)}`);
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** What the server printed (werkzeug's request log and Python tracebacks). */
  output(): string {
    return this.#output.text;
  }

  /** A real SDK client pointed at moto; destroyed by `stop()`. */
  sfn(overrides: Partial<SFNClientConfig> = {}): SFNClient {
    const client = new SFNClient({
      endpoint: this.url,
      region: MOTO_REGION,
      credentials: MOTO_CREDENTIALS,
      ...overrides,
    });
    this.#clients.push(client);
    return client;
  }

  /** Environment that points a child process's AWS SDK at moto, as a user would set it. */
  env(): NodeJS.ProcessEnv {
    return awsEnvFor(this.url);
  }

  /** SIGTERM by pid (moto exits 0 on it), SIGKILL if it has not gone after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    for (const client of this.#clients) client.destroy();
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGTERM");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
    process.off("exit", this.#killOnExit);
  }

  /**
   * Sets the interpreter switch, retrying until the server answers (it listens once Python has
   * imported moto, a second or two). The config endpoint echoes only batch and lambda settings, so
   * the answer cannot confirm the switch; the compat test checks it by running a state machine.
   */
  async #configure(execute: boolean, timeoutMs: number, gone: () => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const response = await fetch(`${this.url}/moto-api/config`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ stepfunctions: { execute_state_machine: execute } }),
        });
        await response.text();
        if (response.status === 201) return;
        throw new Error(`POST /moto-api/config answered ${response.status}`);
      } catch (error) {
        if (Date.now() > deadline || gone()) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
