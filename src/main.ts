/**
 * The `sfn-operator` command line: `operator`, `poller`, `local` and `emulator`. Parsing and process concerns only; each command lives in its own module, loaded
 * when that command runs, so that a process carries only the code it uses (a poller does not load
 * the emulator, nor the emulator the AWS SDK).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError, describeValue } from "./api/fields.ts";
import {
  configureLogging,
  describeError,
  getLogger,
  LOG_LEVELS,
  type LogFormat,
} from "./observability/logger.ts";
// The operator's settings table (names and documentation only; small).
import { OPERATOR_SETTINGS } from "./operator/settings.ts";
// Loaded by every command for the poller's help text: small, and zod comes with api/fields.ts anyway.
import { POLLER_ENV_VARS } from "./poller/env.ts";
import { VERSION } from "./version.ts";

/** Exit code for invalid configuration (a bad sources file or environment), as documented. */
const EXIT_CONFIG = 2;

const LOG_FORMATS: readonly LogFormat[] = ["auto", "json", "text"];

/** The global options as commander hands them over: raw text, checked in the preAction hook. */
interface GlobalOptions {
  logLevel: string;
  logFormat: string;
  logPayloads: boolean;
}

/**
 * Problems with the global options (and their SFN_* variables), found before the command runs. They
 * are reported together with the command's own configuration problems (exit 2, one line each), not
 * as a usage error that prints the whole help and hides the rest.
 */
const optionProblems: string[] = [];

/**
 * The name a problem with an option should carry: the variable when the value came from it (the
 * user set SFN_LOG_LEVEL, not --log-level), else the flag.
 */
function optionLabel(command: Command, key: string, flag: string, envName: string): string {
  return command.getOptionValueSource(key) === "env" ? envName : flag;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], label: string, fallback: T): T {
  const found = allowed.find((candidate) => candidate === value.trim().toLowerCase());
  if (found !== undefined) return found;
  optionProblems.push(`${label}: must be one of ${allowed.join(", ")}, got ${describeValue(value)}`);
  return fallback;
}

function portProblem(value: string): string | undefined {
  const parsed = Number(value);
  return value.trim() !== "" && Number.isInteger(parsed) && parsed >= 0 && parsed <= 65535
    ? undefined
    : `must be a port number from 0 to 65535, got ${describeValue(value)}`;
}

function port(value: string): number {
  const problem = portProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return Number(value);
}

function positiveNumber(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError("must be a positive number");
  return parsed;
}

/**
 * Runs the command's own configuration check and throws one ConfigError listing the global option
 * problems and the command's together, so that a user fixes everything in one round.
 */
async function checked<T>(check: () => T | Promise<T>): Promise<T> {
  const problems = [...optionProblems];
  let value: T | undefined;
  try {
    value = await check();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.issues);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return value as T;
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
  // Values are checked in the preAction hook, not by commander: a bad SFN_LOG_LEVEL is then
  // reported with the command's other configuration problems instead of alone, with the help.
  .addOption(
    new Option("--log-level <level>", `log level: ${LOG_LEVELS.join(", ")}`)
      .default("info")
      .env("SFN_LOG_LEVEL"),
  )
  .addOption(
    new Option("--log-format <format>", "json, text, or auto (json unless stderr is a terminal)")
      .default("auto")
      .env("SFN_LOG_FORMAT"),
  )
  .option("--log-payloads", "log task inputs and outputs (only with --log-level debug)", false)
  .addHelpText(
    "after",
    `
A first try, without AWS or a cluster (or just: npm run demo):
  sfn-operator emulator &                        # a local Step Functions on 127.0.0.1:8083
  export AWS_ENDPOINT_URL_SFN=http://127.0.0.1:8083 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x
  sfn-operator local --check -f sources.yaml     # the file's format: sfn-operator local --help
  sfn-operator local -f sources.yaml
  curl -XPOST http://127.0.0.1:8083/_emulator/tasks -d '{"activityName":"sum","input":{"numbers":[1,2]}}'

Exit codes: 0 stopped cleanly, 1 failed, 2 invalid configuration (every problem listed).
`,
  )
  .showHelpAfterError()
  .hook("preAction", (command) => {
    const options = command.opts<GlobalOptions>();
    const level = oneOf(
      options.logLevel,
      LOG_LEVELS,
      optionLabel(command, "logLevel", "--log-level", "SFN_LOG_LEVEL"),
      "info",
    );
    const format = oneOf(
      options.logFormat,
      LOG_FORMATS,
      optionLabel(command, "logFormat", "--log-format", "SFN_LOG_FORMAT"),
      "auto",
    );
    configureLogging({ level, format, logPayloads: options.logPayloads });
    if (options.logPayloads && level !== "debug") {
      getLogger("main").warn("--log-payloads has no effect without --log-level debug");
    }
  });

const SOURCES_EXAMPLE = `
The sources file (every problem is listed at once; exit code 2):

  redis: redis://127.0.0.1:6379   # optional: share each limit with every process using this Redis
  region: us-east-1               # optional
  sources:
    - activityName: sum           # created if missing
      target: http://127.0.0.1:8080
      path: /step/sum             # tasks are POSTed to target + path
      maxConcurrency: 10          # optional (1): tasks in flight at once
      concurrencyPerPoller: 5     # optional (1)
      requestTimeout: 30s         # optional (5m)
      heartbeatInterval: 10s      # optional (10s)

AWS credentials and region come from the SDK's default chain; AWS_ENDPOINT_URL_SFN points it at
another endpoint, e.g. the emulator: AWS_ENDPOINT_URL_SFN=http://127.0.0.1:8083
Ctrl-C stops taking tasks and waits for outstanding polls (up to 60 s) and running tasks; press it
again to exit at once.
`;

program
  .command("local")
  .description("run the pollers of a sources file in this process, outside Kubernetes")
  .requiredOption("-f, --file <path>", "the sources file (YAML)")
  .option("--check", "check the sources file and print what would run, without starting anything")
  .option("--metrics-port <port>", "serve /metrics, /healthz and /readyz on 127.0.0.1:<port>", port)
  .addHelpText("after", SOURCES_EXAMPLE)
  .action((options: { file: string; check?: boolean; metricsPort?: number }) =>
    execute(async () => {
      const { checkLocal, runLocal } = await import("./local/run-local.ts");
      const { loadLocalConfig } = await import("./local/config.ts");
      const config = await checked(() => loadLocalConfig(options.file));
      if (options.check) {
        process.stdout.write(`${checkLocal(options.file, config).join("\n")}\n`);
        return 0;
      }
      return runLocal({
        file: options.file,
        config,
        ...(options.metricsPort !== undefined ? { metricsPort: options.metricsPort } : {}),
      });
    }),
  );

/** The poller's variables for its help: the required ones first, then the rest in the README's order. */
function pollerVariablesHelp(): string {
  const width = Math.max(...POLLER_ENV_VARS.map((v) => v.name.length));
  const lines = POLLER_ENV_VARS.toSorted((a, b) => Number(b.required) - Number(a.required)).map(
    (v) => `  ${v.name.padEnd(width)}  ${v.required ? "required" : `default: ${v.default ?? "none"}`}`,
  );
  return (
    "\nEnvironment (the README describes each; invalid values exit 2, every problem listed).\n" +
    `SFN_ACTIVITY_NAME or SFN_ACTIVITY_ARN is required too:\n${lines.join("\n")}\n`
  );
}

program
  .command("poller")
  .description("run the poller of one source, configured by SFN_* environment variables (see the README)")
  .addOption(
    new Option("--metrics-port <port>", "port of /metrics, /healthz and /readyz")
      .default("9090")
      .env("SFN_METRICS_PORT"),
  )
  .addHelpText("after", pollerVariablesHelp)
  .action((options: { metricsPort: string }, command: Command) =>
    execute(async () => {
      const { runPollerCommand } = await import("./poller/run-poller.ts");
      const { pollerConfigFromEnv } = await import("./poller/env.ts");
      const portIssue = portProblem(options.metricsPort);
      if (portIssue !== undefined) {
        optionProblems.push(
          `${optionLabel(command, "metricsPort", "--metrics-port", "SFN_METRICS_PORT")}: ${portIssue}`,
        );
      }
      const config = await checked(() => pollerConfigFromEnv(process.env));
      return runPollerCommand({ metricsPort: Number(options.metricsPort), config });
    }),
  );

/** commander's name for a flag's value: `--poller-image` -> `pollerImage`. */
function optionKey(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

const operatorCommand = program
  .command("operator")
  .description("run the operator: StepFunctionSources -> poller Deployments, status and leader election")
  .addOption(
    new Option("--metrics-port <port>", "port of /metrics, /healthz and /readyz")
      .default("9090")
      .env("SFN_METRICS_PORT"),
  );
for (const setting of OPERATOR_SETTINGS) {
  operatorCommand.addOption(
    new Option(`${setting.flag} <value>`, `${setting.description} (default: ${setting.default})`).env(
      setting.env,
    ),
  );
}
operatorCommand
  .addHelpText(
    "after",
    `
Every setting can be a flag or its environment variable (a flag wins); the README describes each.
Invalid values exit 2 with every problem listed. The Kubernetes credentials are the pod's
ServiceAccount in a cluster, else KUBECONFIG or ~/.kube/config.
`,
  )
  .action((options: Record<string, string | undefined>, command: Command) =>
    execute(async () => {
      const { operatorSettingsFrom } = await import("./operator/settings.ts");
      const { runOperatorCommand } = await import("./operator/run-operator.ts");
      const portIssue = portProblem(options.metricsPort ?? "");
      if (portIssue !== undefined) {
        optionProblems.push(
          `${optionLabel(command, "metricsPort", "--metrics-port", "SFN_METRICS_PORT")}: ${portIssue}`,
        );
      }
      const values = Object.fromEntries(
        OPERATOR_SETTINGS.map((setting) => [setting.env, options[optionKey(setting.flag)]]),
      );
      const labelOf = (variable: string): string => {
        const setting = OPERATOR_SETTINGS.find((candidate) => candidate.env === variable);
        if (setting === undefined) return variable;
        const given = command.getOptionValueSource(optionKey(setting.flag));
        // A setting given neither way (a required one, a default that broke a rule) has both names.
        if (given !== "env" && given !== "cli") return `${setting.env} (${setting.flag})`;
        return optionLabel(command, optionKey(setting.flag), setting.flag, setting.env);
      };
      const { settings, warnings } = await checked(() => {
        const { settings, problems, warnings } = operatorSettingsFrom(values, process.env, labelOf);
        if (problems.length > 0 || settings === undefined) throw new ConfigError(problems);
        return { settings, warnings };
      });
      return runOperatorCommand({
        settings,
        warnings,
        metricsPort: Number(options.metricsPort),
        env: process.env,
      });
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
      await checked(() => undefined);
      const { startEmulator } = await import("./emulator/index.ts");
      const emulator = await startEmulator(options);
      process.stdout.write(
        `Step Functions emulator listening on ${emulator.url}\n` +
          // What a first-time user needs next; the side API is in src/emulator/README.md.
          `Point pollers at it: AWS_ENDPOINT_URL_SFN=${emulator.url} (any AWS_REGION and credentials)\n` +
          `Enqueue a task: curl -XPOST ${emulator.url}/_emulator/tasks -d '{"activityName":"sum","input":{}}'\n`,
      );
      await untilSignal();
      await emulator.close();
      return 0;
    }),
  );

program
  .command("sample-service")
  .description(
    "run the sample target of the examples and the demo: POST /step/sum and /step/split (see examples/)",
  )
  .option("--port <port>", "port to listen on", port, 8080)
  .option("--host <host>", "address to listen on (all addresses in a pod)", "0.0.0.0")
  .action((options: { port: number; host: string }) =>
    execute(async () => {
      await checked(() => undefined);
      const { SampleService } = await import("./sample/sample-service.ts");
      const service = await new SampleService().start(options.port, options.host);
      process.stdout.write(
        `sample service listening on ${options.host}:${service.port} (POST /step/sum, POST /step/split)\n`,
      );
      await untilSignal();
      await service.close();
      return 0;
    }),
  );

/** Resolves on the first SIGTERM or SIGINT: the long-running helper commands stop cleanly then. */
function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}

await program.parseAsync(process.argv);
