/**
 * Structured logging for every component.
 *
 * One winston logger per process, configured once by the CLI. JSON when stdout is not a terminal (in
 * clusters, where logs are collected), human-readable when it is (local development). Task payloads
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

const textFormat = winston.format.combine(
  winston.format.timestamp({ format: "HH:mm:ss.SSS" }),
  winston.format.colorize(),
  winston.format.printf((info) => {
    const { timestamp, level, message, component, ...rest } = info;
    const fields = Object.entries(rest)
      .filter(([key]) => typeof key === "string")
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ");
    const where = component ? ` [${String(component)}]` : "";
    return `${String(timestamp)} ${level}${where} ${String(message)}${fields ? ` ${fields}` : ""}`;
  }),
);

const jsonFormat = winston.format.combine(winston.format.timestamp(), winston.format.json());

function buildFormat(format: LogFormat): winston.Logform.Format {
  const json = format === "json" || (format === "auto" && !process.stderr.isTTY);
  return json ? jsonFormat : textFormat;
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
