/**
 * The id that follows one activity task everywhere: the poller's log lines (`taskId`), the
 * `step-func-task-id` header of the request to the target, and the emulator's task record
 * (`stepFuncTaskId`). One function so that the three always agree.
 */
import { hash } from "node:crypto";

/**
 * A stable id for a task that is not its token: the token is a credential for reporting, the id is
 * safe to log and to hand to targets (the same task always gets the same id).
 */
export function taskIdOf(taskToken: string): string {
  // The one-shot `hash` makes no Hash object: a few µs less per task than createHash().
  return hash("sha256", taskToken, "hex").slice(0, 32);
}
