/**
 * The AWS JSON 1.0 protocol as `@aws-sdk/client-sfn` speaks it: `POST /` with
 * `X-Amz-Target: AWSStepFunctions.<Action>` and a JSON body; answers carry
 * `Content-Type: application/x-amz-json-1.0` and `x-amzn-RequestId`, errors a 4xx/5xx status and
 * `{"__type": "<namespace>#<Code>", "message": ...}`. SigV4 signatures are not checked (any fake
 * credentials do), and the request's content type is not enforced.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../observability/logger.ts";
import { ACTIONS } from "./actions.ts";
import type { EmulatorCore } from "./core.ts";
import { AwsError } from "./errors.ts";
import { BodyTooLargeError, readBody, sendJson } from "./http.ts";

const TARGET_PREFIX = "AWSStepFunctions.";
/** Content type of every AWS answer. */
export const AWS_JSON_CONTENT_TYPE = "application/x-amz-json-1.0";

/** What the protocol layer needs from the server around it. */
export interface ProtocolContext {
  core: EmulatorCore;
  log: Logger;
  /** Aborted when the emulator closes: injected delays end at once. */
  closing: AbortSignal;
}

/** Serve one AWS API request. Never throws. */
export async function handleAwsRequest(
  context: ProtocolContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const requestId = randomUUID();
  const started = performance.now();
  const target = headerValue(req, "x-amz-target");
  const action = target?.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
  const clientGone = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) clientGone.abort();
  });
  let status = 200;
  let code: string | undefined;
  try {
    const bodyText = await readBody(req);
    const handler = action === undefined ? undefined : ACTIONS.get(action);
    context.core.countRequest(handler && action ? action : "(unknown)");
    if (!handler || !action) {
      throw new AwsError(
        "UnknownOperationException",
        `Operation not recognised: ${target ?? "(no X-Amz-Target)"}`,
      );
    }
    if (req.method !== "POST")
      throw new AwsError("UnknownOperationException", `Method ${req.method} not supported`);
    const decision = context.core.faults.decide(action);
    if (decision.delayMs > 0) await sleep(decision.delayMs, undefined, { signal: context.closing });
    if (decision.failure) throw decision.failure;
    const output = await handler(context.core, parseInput(bodyText), { clientGone: clientGone.signal });
    sendJson(res, 200, output, { "x-amzn-RequestId": requestId }, AWS_JSON_CONTENT_TYPE);
  } catch (thrown) {
    const error = toAwsError(thrown, context);
    status = error.status;
    code = error.code;
    context.core.countError(error.code);
    sendJson(res, error.status, error.toBody(), { "x-amzn-RequestId": requestId }, AWS_JSON_CONTENT_TYPE);
  }
  context.log.debug("aws request", {
    action: action ?? target ?? "(none)",
    status,
    ...(code ? { code } : {}),
    ms: Math.round(performance.now() - started),
    requestId,
    ...(clientGone.signal.aborted ? { clientGone: true } : {}),
  });
}

function parseInput(text: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AwsError("SerializationException", "Request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new AwsError("SerializationException", "Request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function toAwsError(thrown: unknown, context: ProtocolContext): AwsError {
  if (thrown instanceof AwsError) return thrown;
  if (thrown instanceof BodyTooLargeError) return new AwsError("ValidationException", thrown.message, 413);
  if (context.closing.aborted)
    return new AwsError("ServiceUnavailable", "The emulator is shutting down", 503);
  // A bug of ours: say so like AWS would, and leave the details in our log (no payloads in there).
  context.log.error("aws request failed", { error: thrown instanceof Error ? thrown.stack : String(thrown) });
  return new AwsError("InternalFailure", "Internal failure", 500);
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
