/**
 * Structured logging for every component.
 *
 * One winston logger per process, configured once by the CLI. JSON when stderr is not a terminal (in
 * clusters, where logs are collected), human-readable when it is (local development). Text is
 * coloured only on a terminal (see `colourWanted`), so a file or a pipe never gets escape codes. Task payloads
 * never reach the log unless `logPayloads` was asked for together with the debug level: payloads can
 * hold customer data.
 */
import winston from "winston";

export type LogFormat = "json" | "text" | "auto";
export type LogLevel = "error" | "warn" | "info" | "debug";
export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug"];

export interface LoggingOptions {
  level: LogLevel;
  format: LogFormat;
  /** Log task inputs and outputs; honoured only at debug level. */
  logPayloads?: boolean;
}

export type Logger = winston.Logger;

let payloadLogging = false;

/** One line per record: `12:00:00.000 info [component] message key=value ...`. */
const textLine = winston.format.printf((info) => {
  const { timestamp, level, message, component, ...rest } = info;
  const fields = Object.entries(rest)
    .filter(([key]) => typeof key === "string")
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  const where = component ? ` [${String(component)}]` : "";
  return `${String(timestamp)} ${level}${where} ${String(message)}${fields ? ` ${fields}` : ""}`;
});

const timestamp = winston.format.timestamp({ format: "HH:mm:ss.SSS" });
const colouredTextFormat = winston.format.combine(timestamp, winston.format.colorize(), textLine);
const plainTextFormat = winston.format.combine(timestamp, textLine);

const jsonFormat = winston.format.combine(winston.format.timestamp(), winston.format.json());

/** What colourWanted looks at: the environment and the stream the log goes to. */
export interface ColourContext {
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
  /** The terminal's own answer (Node's `hasColors()`: TERM=dumb, NO_COLOR...), when a terminal. */
  hasColors?: () => boolean;
}

/**
 * Whether text logs get ANSI colours, by the customary rules: `FORCE_COLOR` (any value but "0" or
 * "false") wins, so colours survive a pipe into a pager when asked for; otherwise `NO_COLOR` (any
 * non-empty value) turns them off; otherwise only a terminal gets them (escape codes in a file or
 * a log collector are noise).
 */
export function colourWanted({ env, isTTY, hasColors }: ColourContext): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== "") return force !== "0" && force.toLowerCase() !== "false";
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (!isTTY) return false;
  return hasColors?.() ?? true;
}

function buildFormat(format: LogFormat): winston.Logform.Format {
  const stderr = process.stderr;
  const json = format === "json" || (format === "auto" && !stderr.isTTY);
  if (json) return jsonFormat;
  const colour = colourWanted({
    env: process.env,
    isTTY: Boolean(stderr.isTTY),
    ...(stderr.isTTY && typeof stderr.hasColors === "function"
      ? { hasColors: () => stderr.hasColors() }
      : {}),
  });
  return colour ? colouredTextFormat : plainTextFormat;
}

/** Logs go to stderr so that commands whose stdout is data (the demo's summary) stay clean. */
const root: winston.Logger = winston.createLogger({
  level: "info",
  format: buildFormat("auto"),
  transports: [new winston.transports.Stream({ stream: process.stderr })],
});

export function configureLogging(options: LoggingOptions): void {
  root.level = options.level;
  root.format = buildFormat(options.format);
  payloadLogging = Boolean(options.logPayloads) && options.level === "debug";
}

/** A logger whose records carry `component` (and any other fixed fields). */
export function getLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...fields });
}

/** Whether task payloads may be logged (debug level and explicitly asked for). */
export function payloadLoggingEnabled(): boolean {
  return payloadLogging;
}

/** Render an unknown thrown value for a log field without dumping request objects. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const name = error.name && error.name !== "Error" ? `${error.name}: ` : "";
    return `${name}${error.message}${typeof code === "string" && !error.message.includes(code) ? ` (${code})` : ""}`;
  }
  return String(error);
}
