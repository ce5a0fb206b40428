/**
 * How we read errors from Step Functions and the network under it. Codes are AWS's (`error.name` of
 * the SDK's exceptions) or Node's socket codes.
 */

/** Answers to SendTask* that mean the task is gone at AWS: nothing left to report, move on. */
export const TASK_GONE_CODES = ["TaskDoesNotExist", "InvalidToken", "TaskTimedOut"] as const;
export type TaskGoneCode = (typeof TASK_GONE_CODES)[number];

const THROTTLING_CODES = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "ProvisionedThroughputExceededException",
]);

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** AWS's error code, Node's socket code, or the error's name: the one label we count and log. */
export function errorCode(error: unknown): string {
  if (typeof error !== "object" || error === null) return "Unknown";
  const e = error as ErrorLike;
  if (typeof e.$metadata === "object" && typeof e.name === "string" && e.name !== "Error") return e.name;
  if (typeof e.code === "string") return e.code;
  if (typeof e.name === "string" && e.name !== "Error") return e.name;
  return "Unknown";
}

export function isTaskGone(error: unknown): error is Error & { name: TaskGoneCode } {
  return (TASK_GONE_CODES as readonly string[]).includes(errorCode(error));
}

/**
 * Throttling, AWS server faults and network failures: worth trying again later. Anything else (a 4xx
 * such as ValidationException or ActivityDoesNotExist) would fail the same way again.
 */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as ErrorLike;
  const code = errorCode(error);
  if (THROTTLING_CODES.has(code) || NETWORK_CODES.has(code) || code === "TimeoutError") return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === "number") return status === 429 || status >= 500;
  if (e.$fault === "server") return true;
  // No HTTP answer at all: the request never completed (socket closed, DNS, TLS).
  return e.$metadata === undefined;
}
