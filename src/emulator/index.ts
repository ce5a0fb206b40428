/**
 * A local emulator of AWS Step Functions' activity API (the JSON protocol the AWS SDK speaks), with
 * long polls, task tokens, heartbeat and task timeouts, AWS's error codes and fault injection, plus a
 * side API for tests. See README.md in this folder.
 */
export { EmulatorClient, EmulatorClientError, type TaskCondition } from "./client.ts";
export { EmulatorCore, SideApiError } from "./core.ts";
export { AwsError, type AwsErrorCode } from "./errors.ts";
export { type EmulatorOptions, type RunningEmulator, startEmulator } from "./server.ts";
export { TASK_TOKEN_LENGTH } from "./tokens.ts";
export {
  type ActivityTaskCounts,
  CLOSED_STATUSES,
  type EmulatorStats,
  type EnqueueRequest,
  type EnqueueResult,
  type FaultKind,
  type FaultRule,
  TASK_STATUSES,
  type TaskFilter,
  type TaskRecord,
  type TaskStatus,
} from "./types.ts";
