/**
 * The AWS Step Functions actions the emulator serves, on a parsed JSON request body. Input checks
 * follow AWS's split: a field of the wrong JSON type is a SerializationException (the request could
 * not be read), a missing or too long field a ValidationException (the model's constraints), and
 * semantic problems get the action's own codes (InvalidArn, InvalidToken, ...).
 */
import { AWS_LIMITS } from "../api/defaults.ts";
import type { EmulatorCore } from "./core.ts";
import { AwsError, validationError } from "./errors.ts";

/** What an action needs besides its input. */
export interface ActionContext {
  /** Fires when the request's client goes away (long polls must know). */
  clientGone: AbortSignal;
}

/** One action: input body in, output body out, AwsError for error answers. */
export type ActionHandler = (
  core: EmulatorCore,
  input: Record<string, unknown>,
  context: ActionContext,
) => Promise<Record<string, unknown>> | Record<string, unknown>;

const ARN_MAX = 256;
const NEXT_TOKEN_MAX = 1024;
const MAX_RESULTS_MAX = 1000;

/** The served actions, by the name that follows `AWSStepFunctions.` in X-Amz-Target. */
export const ACTIONS: ReadonlyMap<string, ActionHandler> = new Map<string, ActionHandler>([
  [
    "CreateActivity",
    (core, input) => {
      const name = requiredString(input, "name", 1, AWS_LIMITS.activityNameLength);
      // tags and encryptionConfiguration are accepted and ignored: AWS ignores them too when the
      // activity exists, and nothing in this project reads them back.
      const activity = core.activities.create(name);
      return { activityArn: activity.arn, creationDate: epochSeconds(activity.creationDate) };
    },
  ],
  [
    "DescribeActivity",
    (core, input) => {
      const activity = core.activities.get(requiredString(input, "activityArn", 1, ARN_MAX));
      return {
        activityArn: activity.arn,
        name: activity.name,
        creationDate: epochSeconds(activity.creationDate),
        encryptionConfiguration: { type: "AWS_OWNED_KEY" },
      };
    },
  ],
  [
    "ListActivities",
    (core, input) => {
      const maxResults = optionalInteger(input, "maxResults", 0, MAX_RESULTS_MAX) ?? 0;
      const nextToken = optionalString(input, "nextToken", 1, NEXT_TOKEN_MAX);
      const page = core.activities.list(maxResults, nextToken);
      return {
        activities: page.activities.map((a) => ({
          activityArn: a.arn,
          name: a.name,
          creationDate: epochSeconds(a.creationDate),
        })),
        ...(page.nextToken ? { nextToken: page.nextToken } : {}),
      };
    },
  ],
  [
    "DeleteActivity",
    (core, input) => {
      const arn = requiredString(input, "activityArn", 1, ARN_MAX);
      if (core.activities.delete(arn)) core.tasks.endPolls(arn);
      return {};
    },
  ],
  [
    "GetActivityTask",
    async (core, input, context) => {
      const arn = requiredString(input, "activityArn", 1, ARN_MAX);
      const workerName = optionalString(input, "workerName", 1, AWS_LIMITS.workerNameLength);
      core.activities.get(arn);
      const task = await core.tasks.poll(arn, workerName, context.clientGone);
      return task ? { taskToken: task.taskToken, input: task.input } : {};
    },
  ],
  [
    "SendTaskSuccess",
    (core, input) => {
      // No length check on the token here: AWS answers InvalidToken for over-long tokens.
      const token = requiredString(input, "taskToken", 0, Number.POSITIVE_INFINITY);
      const output = requiredString(input, "output", 0, Number.POSITIVE_INFINITY);
      core.tasks.succeed(token, output);
      return {};
    },
  ],
  [
    "SendTaskFailure",
    (core, input) => {
      const token = requiredString(input, "taskToken", 0, Number.POSITIVE_INFINITY);
      const error = optionalString(input, "error", 0, AWS_LIMITS.errorLength);
      const cause = optionalString(input, "cause", 0, AWS_LIMITS.causeLength);
      core.tasks.fail(token, error, cause);
      return {};
    },
  ],
  [
    "SendTaskHeartbeat",
    (core, input) => {
      core.tasks.heartbeat(requiredString(input, "taskToken", 0, Number.POSITIVE_INFINITY));
      return {};
    },
  ],
]);

/** Timestamps in awsJson1_0 are epoch seconds (with milliseconds as the fraction). */
function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

/**
 * A string field of at most `max` characters. Characters are UTF-16 code units, as AWS's Java
 * validation counts them: a client that truncates by code points can still be refused.
 */
function optionalString(
  input: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): string | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw new AwsError(
      "SerializationException",
      `${jsonType(value)} can not be converted to a String (${field})`,
    );
  }
  if (value.length < min)
    throw validationError(field, `Member must have length greater than or equal to ${min}`);
  if (value.length > max)
    throw validationError(field, `Member must have length less than or equal to ${max}`);
  return value;
}

function requiredString(input: Record<string, unknown>, field: string, min: number, max: number): string {
  const value = optionalString(input, field, min, max);
  if (value === undefined) throw validationError(field, "Member must not be null");
  return value;
}

function optionalInteger(
  input: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): number | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new AwsError(
      "SerializationException",
      `${jsonType(value)} can not be converted to an Integer (${field})`,
    );
  }
  if (value < min) throw validationError(field, `Member must have value greater than or equal to ${min}`);
  if (value > max) throw validationError(field, `Member must have value less than or equal to ${max}`);
  return value;
}

/** Jackson's names of JSON value kinds, as they appear in AWS's SerializationException messages. */
function jsonType(value: unknown): string {
  if (Array.isArray(value)) return "START_ARRAY";
  if (typeof value === "object") return "START_OBJECT";
  if (typeof value === "number") return "NUMBER_VALUE";
  if (typeof value === "boolean") return "BOOLEAN_VALUE";
  return "STRING_VALUE";
}
