/**
 * Conditions of a StepFunctionSource, as pure functions: what each says in each situation, and how a
 * new set is merged into the previous one (a condition keeps its lastTransitionTime while its status
 * stays the same, as Kubernetes' meta.SetStatusCondition does).
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { CONDITION_TYPES, type Condition, type ConditionType } from "../api/step-function-source.ts";

export type ConditionStatus = Condition["status"];
/** A condition as stored in status (metav1.Condition). */
export type SourceCondition = Condition;

/** A condition before it is stamped with times and the generation. */
export interface ConditionState {
  status: ConditionStatus;
  /** CamelCase, machine-readable. */
  reason: string;
  /** What is going on and, when something is wrong, what to do. */
  message: string;
}

export type ConditionStates = Record<Exclude<ConditionType, "Ready">, ConditionState>;

const TRUE = (reason: string, message: string): ConditionState => ({ status: "True", reason, message });
const FALSE = (reason: string, message: string): ConditionState => ({ status: "False", reason, message });
const UNKNOWN = (reason: string, message: string): ConditionState => ({ status: "Unknown", reason, message });

/**
 * PollersAvailable from the Deployment the operator keeps (undefined: not made yet). Pods that are
 * still starting or rolling out (the Deployment's Progressing condition says so) are
 * `PollersStarting`; only a Deployment that stopped progressing without ready pods is
 * `NoPollersReady`, which deserves a warning.
 */
export function pollersCondition(deployment: V1Deployment | undefined, desired: number): ConditionState {
  if (deployment === undefined)
    return UNKNOWN("DeploymentPending", "the poller Deployment does not exist yet");
  const name = deployment.metadata?.name ?? "";
  const ready = deployment.status?.readyReplicas ?? 0;
  const updated = deployment.status?.updatedReplicas ?? 0;
  const current = (deployment.metadata?.generation ?? 0) <= (deployment.status?.observedGeneration ?? -1);
  if (current && ready >= desired && updated >= desired) {
    return TRUE("AllPollersReady", `${ready}/${desired} pollers ready`);
  }
  const progressing = deployment.status?.conditions?.find((condition) => condition.type === "Progressing");
  const stuck = progressing?.reason === "ProgressDeadlineExceeded";
  const settled =
    current && progressing?.status === "True" && progressing.reason === "NewReplicaSetAvailable";
  if (!stuck && !settled) {
    return FALSE(
      ready === 0 ? "PollersStarting" : "PollersNotReady",
      `${ready}/${desired} pollers ready: the Deployment ${name} is rolling out`,
    );
  }
  if (ready === 0) {
    return FALSE(
      "NoPollersReady",
      `0/${desired} pollers ready: see \`kubectl describe deployment ${name}\` and its pods' events and logs`,
    );
  }
  return FALSE(
    "PollersNotReady",
    `${ready}/${desired} pollers ready: see \`kubectl describe deployment ${name}\``,
  );
}

/** Ready: every other condition is True; else the first that is not, in CONDITION_TYPES' order. */
export function readyCondition(states: ConditionStates): ConditionState {
  for (const type of CONDITION_TYPES) {
    if (type === "Ready") continue;
    const state = states[type];
    if (state.status !== "True") {
      return state.status === "False"
        ? FALSE(state.reason, `${type}: ${state.message}`)
        : UNKNOWN(state.reason, `${type}: ${state.message}`);
    }
  }
  return TRUE("Ready", "the pollers are running and the semaphore is reachable");
}

/**
 * The conditions to store: every type in CONDITION_TYPES' order, each keeping its previous
 * lastTransitionTime when its status did not change.
 */
export function mergeConditions(
  previous: readonly SourceCondition[] | undefined,
  states: ConditionStates,
  generation: number | undefined,
  now: Date,
): SourceCondition[] {
  const all: Record<ConditionType, ConditionState> = { ...states, Ready: readyCondition(states) };
  return CONDITION_TYPES.map((type) => {
    const state = all[type];
    const before = previous?.find((condition) => condition.type === type);
    const lastTransitionTime =
      before !== undefined && before.status === state.status ? before.lastTransitionTime : rfc3339(now);
    return {
      type,
      status: state.status,
      reason: state.reason,
      message: state.message,
      lastTransitionTime,
      ...(generation !== undefined && { observedGeneration: generation }),
    };
  });
}

/** metav1.Time: RFC 3339 in seconds (the API server refuses nothing finer for Time, and drops it). */
export function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** How a condition changed between two sets, for events. */
export function changedConditions(
  before: readonly SourceCondition[] | undefined,
  after: readonly SourceCondition[],
): SourceCondition[] {
  return after.filter((condition) => {
    const old = before?.find((candidate) => candidate.type === condition.type);
    return old === undefined
      ? condition.status !== "Unknown"
      : old.status !== condition.status || old.reason !== condition.reason;
  });
}

export { FALSE as conditionFalse, TRUE as conditionTrue, UNKNOWN as conditionUnknown };
