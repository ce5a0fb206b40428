/**
 * The outcome rules: how a target's answer becomes SendTaskSuccess or SendTaskFailure. Pure
 * functions, so every row of the table in the README is a unit test.
 *
 * | target answered                     | reported                                                   |
 * |-------------------------------------|------------------------------------------------------------|
 * | 200, body valid JSON <= 256 KiB     | SendTaskSuccess, output = body                             |
 * | 200, body not JSON / empty          | SendTaskFailure Target.InvalidOutput                       |
 * | 200, body over 262,144 bytes        | SendTaskFailure Target.OutputTooLarge                      |
 * | any other status                    | SendTaskFailure, error = step-func-error header or HTTP.<status>, cause = step-func-cause header or status line and start of body |
 * | no answer within requestTimeout     | SendTaskFailure Target.Timeout                             |
 * | connection refused / reset / other  | SendTaskFailure Target.ConnectionRefused / ConnectionReset / ConnectionFailed |
 */
import { AWS_LIMITS } from "../api/defaults.ts";

/** Error names we report when the target did not name one; documented for users' Retry/Catch rules. */
export const ERROR_NAMES = {
  invalidOutput: "Target.InvalidOutput",
  outputTooLarge: "Target.OutputTooLarge",
  timeout: "Target.Timeout",
  connectionRefused: "Target.ConnectionRefused",
  connectionReset: "Target.ConnectionReset",
  connectionFailed: "Target.ConnectionFailed",
  internalError: "Poller.InternalError",
  httpStatus: (status: number) => `HTTP.${status}`,
} as const;

/** Response headers a target may set to fill SendTaskFailure's fields (the seed's names). */
export const ERROR_HEADER = "step-func-error";
export const CAUSE_HEADER = "step-func-cause";

/** How much of a failed response's body a default cause quotes. */
const BODY_EXCERPT_CHARS = 1024;

/** What the HTTP call to the target produced. */
export type TargetResult =
  | {
      kind: "response";
      status: number;
      statusText: string;
      headers: Readonly<Record<string, string | string[] | undefined>>;
      /** The body, or its first `AWS_LIMITS.outputBytes + 1` bytes when `bodyTruncated`. */
      body: Buffer;
      /** The body was longer than what was read (more than the output limit). */
      bodyTruncated: boolean;
    }
  | { kind: "timeout"; timeoutMs: number }
  | { kind: "connection-error"; code: string; message: string };

export type TaskOutcome =
  | { kind: "success"; output: string }
  | { kind: "failure"; error: string; cause: string };

/** Describes the call for causes, e.g. "POST /step/sum". */
export interface RequestDescription {
  method: string;
  path: string;
}

export function decideOutcome(result: TargetResult, request: RequestDescription): TaskOutcome {
  const call = `${request.method} ${request.path}`;
  switch (result.kind) {
    case "timeout":
      return failure(ERROR_NAMES.timeout, `${call} did not answer within ${formatMs(result.timeoutMs)}`);
    case "connection-error":
      return failure(connectionErrorName(result.code), `${call} failed: ${result.message} (${result.code})`);
    case "response":
      return result.status === 200 ? successOutcome(result, call) : httpFailure(result, call);
  }
}

/** Fatal: invalid UTF-8 throws instead of turning into U+FFFD. Stateless without `stream`, so shared. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

function successOutcome(result: Extract<TargetResult, { kind: "response" }>, call: string): TaskOutcome {
  if (result.bodyTruncated || result.body.length > AWS_LIMITS.outputBytes) {
    return failure(
      ERROR_NAMES.outputTooLarge,
      `${call} answered 200 with a body over ${AWS_LIMITS.outputBytes} bytes, the Step Functions output limit`,
    );
  }
  let text: string;
  try {
    text = UTF8.decode(result.body);
  } catch {
    return failure(ERROR_NAMES.invalidOutput, `${call} answered 200 with a body that is not valid UTF-8`);
  }
  if (text.trim() === "") {
    return failure(
      ERROR_NAMES.invalidOutput,
      `${call} answered 200 with an empty body; task output must be JSON`,
    );
  }
  try {
    JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return failure(ERROR_NAMES.invalidOutput, `${call} answered 200 with a body that is not JSON: ${reason}`);
  }
  return { kind: "success", output: text };
}

function httpFailure(result: Extract<TargetResult, { kind: "response" }>, call: string): TaskOutcome {
  const errorHeader = headerText(result.headers[ERROR_HEADER]);
  const causeHeader = headerText(result.headers[CAUSE_HEADER]);
  const statusLine = `${result.status}${result.statusText ? ` ${result.statusText}` : ""}`;
  const excerpt = truncateChars(result.body.toString("utf8"), BODY_EXCERPT_CHARS);
  const defaultCause = `${call} answered HTTP ${statusLine}${excerpt.trim() ? `: ${excerpt}` : ""}`;
  return failure(errorHeader || ERROR_NAMES.httpStatus(result.status), causeHeader || defaultCause);
}

function failure(error: string, cause: string): TaskOutcome {
  return {
    kind: "failure",
    error: truncateChars(error, AWS_LIMITS.errorLength),
    cause: truncateChars(cause, AWS_LIMITS.causeLength),
  };
}

function connectionErrorName(code: string): string {
  if (code === "ECONNREFUSED") return ERROR_NAMES.connectionRefused;
  if (code === "ECONNRESET" || code === "EPIPE") return ERROR_NAMES.connectionReset;
  return ERROR_NAMES.connectionFailed;
}

/**
 * A header value as the target meant it. Node's HTTP parser hands header bytes over as latin1 (one
 * character per byte), and servers differ in what bytes they send for non-ASCII text: Go, Python and
 * most frameworks write UTF-8, while a Node.js server writes its header strings as Latin-1 (`é` is the
 * single byte 0xE9). So the bytes are decoded as UTF-8 when they are valid UTF-8, and kept as Latin-1
 * otherwise: Latin-1 text almost never forms valid UTF-8 by accident (it would need a byte from
 * C2-F4 followed by exactly the right number of bytes from 80-BF), and ASCII is both. Several
 * values of one header are joined as HTTP does (Node already joins repeated `step-func-*` headers).
 */
export function headerText(value: string | string[] | undefined): string {
  if (value === undefined) return "";
  const joined = Array.isArray(value) ? value.join(", ") : value;
  return decodeHeaderBytes(joined).trim();
}

/** `latin1`: a string of one character per byte, as Node's parser makes them. */
export function decodeHeaderBytes(latin1: string): string {
  // Pure ASCII (the common case) reads the same either way: skip the copy and the decoder.
  if (!/[\u0080-\u00ff]/.test(latin1)) return latin1;
  try {
    return UTF8.decode(Buffer.from(latin1, "latin1"));
  } catch {
    return latin1; // not UTF-8: the characters are the Latin-1 ones Node already made
  }
}

/**
 * Cuts `text` to at most `max` UTF-16 code units without splitting a surrogate pair. Counting code
 * units is the stricter of the two ways AWS may count "characters" (a code point outside the BMP is
 * two units), so the result fits whichever it uses. Strings here are already decoded, so a UTF-8
 * sequence can never be split.
 */
export function truncateChars(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1; // a high surrogate whose pair would be cut off
  return text.slice(0, end);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
