/**
 * What the semaphore fault test (test/integration/semaphore-faults.test.ts) and its worker processes
 * (fault-worker.ts) say to each other. Two channels, on purpose separate:
 *
 * - Control, parent -> worker and back, over Node's IPC channel: limit changes and their
 *   acknowledgements.
 * - Counting, worker -> witness, over one TCP connection per worker process, one message per line:
 *   `hello <name> <pid>`, then `w <loop>` (the loop starts waiting for a permit), `+ <loop> <epoch>`
 *   (it holds one; `epoch`: the last limit change the worker knew to be settled when the loop
 *   called `acquire`), `- <loop> <seq>` (it stops holding; answered `k <seq>`, and only then does
 *   the loop release its permit), `note <text>` (for the witness's event log). A killed process's
 *   connection closes, and the witness forgets its holdings, as a crashed pod's tasks end.
 */

/** A worker process's settings, passed as JSON in the `SFN_FAULT_WORKER` environment variable. */
export interface FaultWorkerConfig {
  /** `w<slot>.<incarnation>`: unique within a run. */
  name: string;
  redisUrl: string;
  activityArn: string;
  /** The limit in force when the process starts (the last settled change). */
  limit: number;
  /** The last settled limit change (see the file's comment). */
  epoch: number;
  ttlMs: number;
  /** Concurrent acquire / hold / release loops. */
  loops: number;
  /** Range of a hold's duration (drawn log-uniformly) and of the pause between holds (uniformly). */
  holdMs: [number, number];
  thinkMs: [number, number];
  /** Seed of the process's own draws (hold and think durations). */
  seed: number;
  witnessPort: number;
}

export const WORKER_CONFIG_ENV = "SFN_FAULT_WORKER";

export type ParentMessage =
  | { type: "limit"; limit: number; epoch: number }
  | { type: "settled"; epoch: number }
  /** Holds last this long from now on (the target service slowed down), or as configured again (null). */
  | { type: "hold"; holdMs: [number, number] | null };

export type WorkerMessage = { type: "ready" } | { type: "ack"; epoch: number };

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  if (typeof value !== "object" || value === null || !("type" in value)) return false;
  return (
    value.type === "ready" || (value.type === "ack" && "epoch" in value && typeof value.epoch === "number")
  );
}

export function isParentMessage(value: unknown): value is ParentMessage {
  if (typeof value !== "object" || value === null || !("type" in value)) return false;
  if (value.type === "hold")
    return "holdMs" in value && (value.holdMs === null || Array.isArray(value.holdMs));
  if (!("epoch" in value) || typeof value.epoch !== "number") return false;
  return (
    value.type === "settled" ||
    (value.type === "limit" && "limit" in value && typeof value.limit === "number")
  );
}
