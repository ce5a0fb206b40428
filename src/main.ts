/**
 * The `sfn-operator` command line: `local`, `poller` and `emulator` (the operator comes with the
 * Kubernetes work). Parsing and process concerns only; each command lives in its own module, loaded
 * when that command runs, so that a process carries only the code it uses (a poller does not load
 * the emulator, nor the emulator the AWS SDK).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "./api/fields.ts";
import {
  configureLogging,
  describeError,
  getLogger,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./observability/logger.ts";
import { VERSION } from "./version.ts";

/** Exit code for invalid configuration (a bad sources file or environment), as documented. */
const EXIT_CONFIG = 2;

interface GlobalOptions {
  logLevel: LogLevel;
  logFormat: LogFormat;
  logPayloads: boolean;
}

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) {
    throw new InvalidArgumentError("must be a port number from 0 to 65535");
  }
  return parsed;
}

function positiveNumber(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError("must be a positive number");
  return parsed;
}

/** Runs a command to its exit code; configuration errors exit 2 with their message. */
async function execute(run: () => Promise<number | undefined>): Promise<void> {
  let code: number;
  try {
    code = (await run()) ?? 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`sfn-operator: invalid configuration\n${error.message}\n`);
      code = EXIT_CONFIG;
    } else {
      getLogger("main").error("fatal error", { error: describeError(error) });
      code = 1;
    }
  }
  // Let the log transport flush, then exit even if an agent keeps a socket open.
  setTimeout(() => process.exit(code), 50);
}

const program = new Command()
  .name("sfn-operator")
  .description("Serve AWS Step Functions activity tasks from HTTP services.")
  .version(VERSION)
  .addOption(
    new Option("--log-level <level>", "log level").choices(LOG_LEVELS).default("info").env("SFN_LOG_LEVEL"),
  )
  .addOption(
    new Option("--log-format <format>", "json, text, or auto (json unless stderr is a terminal)")
      .choices(["auto", "json", "text"])
      .default("auto")
      .env("SFN_LOG_FORMAT"),
  )
  .option("--log-payloads", "log task inputs and outputs (only with --log-level debug)", false)
  .showHelpAfterError()
  .hook("preAction", (command) => {
    const options = command.opts<GlobalOptions>();
    configureLogging({
      level: options.logLevel,
      format: options.logFormat,
      logPayloads: options.logPayloads,
    });
  });

program
  .command("local")
  .description("run the pollers of a sources file in this process, outside Kubernetes")
  .requiredOption("-f, --file <path>", "the sources file (YAML)")
  .option("--metrics-port <port>", "serve /metrics, /healthz and /readyz on 127.0.0.1:<port>", port)
  .addHelpText(
    "after",
    "\nAWS credentials and region come from the SDK's default chain; AWS_ENDPOINT_URL_SFN points it at another\nendpoint, e.g. the emulator: AWS_ENDPOINT_URL_SFN=http://127.0.0.1:8083\n",
  )
  .action((options: { file: string; metricsPort?: number }) =>
    execute(async () => {
      const { runLocal } = await import("./local/run-local.ts");
      return runLocal({
        file: options.file,
        ...(options.metricsPort !== undefined ? { metricsPort: options.metricsPort } : {}),
      });
    }),
  );

program
  .command("poller")
  .description("run the poller of one source, configured by SFN_* environment variables (see the README)")
  .addOption(
    new Option("--metrics-port <port>", "port of /metrics, /healthz and /readyz")
      .argParser(port)
      .default(9090)
      .env("SFN_METRICS_PORT"),
  )
  .action((options: { metricsPort: number }) =>
    execute(async () => {
      const { runPollerCommand } = await import("./poller/run-poller.ts");
      return runPollerCommand(options);
    }),
  );

program
  .command("emulator")
  .description(
    "run a local Step Functions emulator (activities and activity tasks) for development and tests",
  )
  .option("--port <port>", "port to listen on", port, 8083)
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .option("--long-poll-seconds <seconds>", "how long GetActivityTask waits for a task", positiveNumber, 60)
  .action((options: { port: number; host: string; longPollSeconds: number }) =>
    execute(async () => {
      const { startEmulator } = await import("./emulator/index.ts");
      const emulator = await startEmulator(options);
      process.stdout.write(`Step Functions emulator listening on ${emulator.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
      await emulator.close();
      return 0;
    }),
  );

await program.parseAsync(process.argv);
