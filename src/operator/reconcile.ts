/**
 * Reconcile of one StepFunctionSource, top to bottom: get it from the cache (gone: done) -> being
 * deleted: finalizer work, then release -> ensure the finalizer -> read the spec -> resolve the
 * activity ARN -> find the target Service and port -> write the limit to Redis -> compute the poller
 * Deployment and apply it when it differs -> conditions and events -> status, written only when it
 * changed.
 *
 * Level-triggered and idempotent: it looks only at the current state (caches, Redis, AWS), never at
 * the event that queued it, so any number of runs converges to the same objects. Everything that talks
 * to the outside comes through ReconcileDeps, so this file holds decisions only.
 */
import type { V1Deployment, V1Service } from "@kubernetes/client-node";
import type { StepFunctionSourceStatus } from "../api/step-function-source.ts";
import { parseSourceSpec, type StepFunctionSource } from "../api/step-function-source.ts";
import { describeError, getLogger } from "../observability/logger.ts";
import { redactRedisUrl } from "../semaphore/redis/connection.ts";
import {
  type ConditionState,
  type ConditionStates,
  changedConditions,
  conditionFalse,
  conditionTrue,
  conditionUnknown,
  mergeConditions,
  pollersCondition,
  type SourceCondition,
} from "./conditions.ts";
import type { ReconcileResult } from "./controller.ts";
import { desiredPollerDeployment, pollerDeploymentName, pollerReplicas } from "./poller-deployment.ts";
import type { OperatorSettings } from "./settings.ts";
import { isSubset } from "./subset.ts";

/** The finalizer that lets the operator delete a source's Redis keys before the source goes. */
export const FINALIZER = "sfn-operator.dev/cleanup";

/** How long deletion waits for Redis before it lets the source go and leaves the keys (an event says so). */
export const CLEANUP_GIVE_UP_MS = 2 * 60_000;

/** How often a source whose Deployment name is taken by someone else's Deployment looks again. */
export const FOREIGN_DEPLOYMENT_RECHECK_MS = 15_000;

/** Which Redis a source's semaphore is in: the operator's, or the source's own `spec.redis.url`. */
export interface RedisTarget {
  url: string;
  /** The source's own password Secret, read by the operator when needed. */
  passwordSecret?: { namespace: string; name: string; key: string };
}

/** Task figures the pollers publish, as last read by the status collector. */
export interface TaskFigures {
  inFlight: number;
  succeeded: number;
  failed: number;
  lastTaskTime?: string;
}

/** A recoverable failure of an outside system: the reconcile is retried with backoff. */
export class RetryLater extends Error {
  override name = "RetryLater";
}

export interface ReconcileDeps {
  settings: OperatorSettings;
  now(): Date;
  sources: {
    get(namespace: string, name: string): StepFunctionSource | undefined;
    list(): readonly StepFunctionSource[];
  };
  services: { get(namespace: string, name: string): V1Service | undefined };
  deployments: { get(namespace: string, name: string): V1Deployment | undefined };
  kube: {
    /** Sets metadata.finalizers (with the resourceVersion read: a conflict is retried). */
    setFinalizers(source: StepFunctionSource, finalizers: string[]): Promise<void>;
    /** The Deployment from the API itself (the cache holds only those with the operator's label). */
    readDeployment(namespace: string, name: string): Promise<V1Deployment | undefined>;
    /** Server-side apply with the operator's field manager, forcing conflicts. */
    applyDeployment(deployment: V1Deployment): Promise<V1Deployment>;
    /** Replaces the status (fields it lacks are removed). */
    writeStatus(source: StepFunctionSource, status: StepFunctionSourceStatus): Promise<void>;
  };
  events: {
    record(source: StepFunctionSource, type: "Normal" | "Warning", reason: string, message: string): void;
  };
  /** CreateActivity, cached per region and name; throws ActivityError. */
  resolveActivity(name: string, region: string | undefined): Promise<string>;
  redis: {
    /** Makes the live limit `limit` (no write when Redis already holds it). */
    ensureLimit(target: RedisTarget, activityArn: string, limit: number): Promise<void>;
    /** The last figures read for the ARN, undefined when none yet. */
    figures(target: RedisTarget, activityArn: string): TaskFigures | undefined;
    /** Why the source's Redis is not usable, undefined when it is. */
    problem(target: RedisTarget): string | undefined;
    deleteState(target: RedisTarget, activityArn: string): Promise<void>;
  };
}

/** An AWS refusal of CreateActivity, already described for a condition. */
export class ActivityError extends Error {
  override name = "ActivityError";
  /** CamelCase reason: AccessDenied, Throttled, ActivityRefused, AwsError... */
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Figures of the cleanup of deleted sources whose Redis was unreachable: first failure per key. */
const cleanupFailures = new Map<string, number>();

export async function reconcileSource(
  deps: ReconcileDeps,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const key = `${namespace}/${name}`;
  // 1. Get it from the cache; gone means done (owned Deployments go by garbage collection).
  const source = deps.sources.get(namespace, name);
  if (source === undefined) {
    cleanupFailures.delete(key);
    return {};
  }

  // 2. Being deleted: clean Redis, then let it go.
  if (source.metadata?.deletionTimestamp) {
    await finalize(deps, source, key);
    return {};
  }

  // 3. The finalizer first, so that no Redis key is written for a source that could vanish without it.
  const finalizers = source.metadata?.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) {
    await deps.kube.setFinalizers(source, [...finalizers, FINALIZER]);
    return {}; // the update comes back through the watch and runs this again
  }

  const generation = source.metadata?.generation;
  const previous = source.status;
  // 4. The spec: the API server checked its shape; the rest (duration ranges) is checked here.
  const parsed = parseSourceSpec(source.spec);
  if (!parsed.ok) {
    const message = parsed.issues.map((issue) => `spec.${issue.path.join(".")}: ${issue.message}`).join("; ");
    const states: ConditionStates = {
      ActivityResolved: conditionFalse("InvalidSpec", `${message}: fix the spec`),
      TargetFound: conditionUnknown("InvalidSpec", message),
      PollersAvailable: conditionUnknown("InvalidSpec", message),
      SemaphoreHealthy: conditionUnknown("InvalidSpec", message),
    };
    await finish(deps, source, { ...previous, observedGeneration: generation }, states);
    return {}; // a fixed spec is a new generation, which queues it again
  }
  const spec = parsed.value;
  const redisTarget = redisTargetOf(source, deps.settings);

  // 5. The activity ARN (CreateActivity is idempotent by name; cached per region and name). One
  //    activity has one semaphore and one limit in a Redis: an older source of it keeps it.
  const region = spec.region ?? deps.settings.poller.region;
  const owner = activityOwner(deps, source, spec.activityName, region, redisTarget.url);
  let activityArn: string | undefined;
  let activityState: ConditionState;
  let keepPreviousArn = true;
  if (owner !== undefined) {
    keepPreviousArn = false;
    activityState = conditionFalse(
      "ActivityInUse",
      `activity ${JSON.stringify(spec.activityName)} is served by StepFunctionSource ${owner} with the same Redis: one activity has one limit; delete one of them, or give this one another activity`,
    );
  } else {
    try {
      activityArn = await deps.resolveActivity(spec.activityName, region);
      activityState = conditionTrue("Resolved", `activity ${activityArn}`);
    } catch (error) {
      const reason = error instanceof ActivityError ? error.reason : "AwsError";
      activityState = conditionFalse(reason, error instanceof Error ? error.message : String(error));
    }
  }

  // 6. The target Service and its port.
  const target = findTargetPort(deps.services.get(namespace, spec.target.service), spec.target, namespace);

  // 7. The live limit in Redis, before the Deployment: new pollers of a raised limit then find it.
  let semaphoreState = conditionUnknown("Waiting", "the semaphore is used once the activity is resolved");
  if (activityArn !== undefined) {
    try {
      await deps.redis.ensureLimit(redisTarget, activityArn, spec.maxConcurrency);
      semaphoreState = semaphoreCondition(deps.redis.problem(redisTarget), redisTarget);
    } catch (error) {
      semaphoreState = conditionFalse(
        "RedisUnreachable",
        `cannot write the limit to Redis (${describeError(error)}): pollers keep their last limit and take no new tasks until Redis is back; check ${redactRedisUrl(redisTarget.url)}`,
      );
    }
  }

  // 8. The poller Deployment: applied only when ours differs from what runs (no write otherwise).
  const desiredReplicas = pollerReplicas(spec);
  const current = currentDeployment(deps, source);
  let deployment = current.deployment;
  let foreign = current.foreign;
  if (activityArn !== undefined && target.port !== undefined && !foreign && deployment === undefined) {
    // The cache sees only Deployments with the operator's label: one of this name that someone else
    // made is invisible there, and a forced apply would take it over (or fail on its selector for
    // ever). Ask the API before creating.
    const existing = await deps.kube.readDeployment(namespace, pollerDeploymentName(name));
    if (existing !== undefined) {
      if (ownedBy(existing, source)) deployment = existing;
      else foreign = true;
    }
  }
  if (activityArn !== undefined && target.port !== undefined && !foreign) {
    const desired = desiredPollerDeployment({
      source: {
        apiVersion: source.apiVersion,
        kind: source.kind,
        name,
        namespace,
        uid: source.metadata?.uid ?? "",
      },
      spec,
      activityArn,
      targetPort: target.port,
      defaults: deps.settings.poller,
    });
    if (deployment === undefined || !isSubset(desired, deployment)) {
      const before = deployment;
      deployment = await deps.kube.applyDeployment(desired);
      getLogger("reconcile", { namespace, name }).info("applied the poller Deployment", {
        deployment: deployment.metadata?.name,
        replicas: desired.spec?.replicas,
      });
      recordDeploymentChange(deps, source, before, deployment, desiredReplicas);
    }
  }

  // A source that moved to another activity leaves the old one's keys behind: its old pollers are
  // gone or going (the rollout above), and a missing limit makes any that remain take no new task.
  const oldArn = previous?.activityArn;
  if (activityArn !== undefined && oldArn !== undefined && oldArn !== activityArn) {
    if (!sharedWithAnother(deps, source, oldArn, redisTarget.url)) {
      await deps.redis.deleteState(redisTarget, oldArn).catch((error: unknown) => {
        getLogger("reconcile", { namespace, name }).warn(
          "could not delete the previous activity's Redis keys",
          {
            activityArn: oldArn,
            error: describeError(error),
          },
        );
      });
    }
  }

  // 9. Conditions, events for what changed, and the status.
  const states: ConditionStates = {
    ActivityResolved: activityState,
    TargetFound: target.state,
    PollersAvailable: foreign
      ? conditionFalse(
          "DeploymentNameTaken",
          `a Deployment named ${pollerDeploymentName(name)} exists and is not this source's: delete or rename it`,
        )
      : activityArn === undefined || target.port === undefined
        ? conditionUnknown("Waiting", "no pollers until the activity and the target are found")
        : pollersCondition(deployment, desiredReplicas),
    SemaphoreHealthy: semaphoreState,
  };
  const figures = activityArn !== undefined ? deps.redis.figures(redisTarget, activityArn) : undefined;
  const ready = deployment?.status?.readyReplicas ?? 0;
  const status: StepFunctionSourceStatus = {
    observedGeneration: generation,
    // A resolution that fails for now keeps the ARN known before (the finalizer and the figures
    // need it); one that is refused for good (another source owns the activity) does not.
    ...(activityArn !== undefined
      ? { activityArn }
      : keepPreviousArn && previous?.activityArn !== undefined
        ? { activityArn: previous.activityArn }
        : {}),
    desiredPollers: desiredReplicas,
    readyPollers: ready,
    updatedPollers: deployment?.status?.updatedReplicas ?? 0,
    pollers: `${ready}/${desiredReplicas}`,
    tasksInFlight: figures?.inFlight ?? previous?.tasksInFlight ?? 0,
    tasksSucceeded: figures?.succeeded ?? previous?.tasksSucceeded ?? 0,
    tasksFailed: figures?.failed ?? previous?.tasksFailed ?? 0,
    ...((figures?.lastTaskTime ?? previous?.lastTaskTime) !== undefined && {
      lastTaskTime: figures?.lastTaskTime ?? previous?.lastTaskTime,
    }),
  };
  await finish(deps, source, status, states);

  // AWS refusals and an unreachable Redis heal outside the cluster: nothing will queue the source
  // again, so retry with the queue's backoff.
  if (activityArn === undefined && owner === undefined)
    throw new RetryLater(`${key}: ${activityState.message}`);
  if (semaphoreState.status === "False") throw new RetryLater(`${key}: ${semaphoreState.message}`);
  // A foreign Deployment without the operator's label is not watched: look again now and then, so
  // that deleting it (what the condition asks) heals the source.
  if (foreign) return { requeueAfterMs: FOREIGN_DEPLOYMENT_RECHECK_MS };
  return {};
}

/** Merge the conditions in, record events for their transitions, write status when it changed. */
async function finish(
  deps: ReconcileDeps,
  source: StepFunctionSource,
  status: StepFunctionSourceStatus,
  states: ConditionStates,
): Promise<void> {
  const previous = source.status;
  const conditions = mergeConditions(previous?.conditions, states, source.metadata?.generation, deps.now());
  for (const condition of changedConditions(previous?.conditions, conditions)) {
    if (!eventWorthy(condition, previous?.conditions)) continue;
    deps.events.record(
      source,
      condition.status === "False" ? "Warning" : "Normal",
      condition.reason,
      condition.message,
    );
  }
  const next: StepFunctionSourceStatus = { ...status, conditions };
  if (!isSubset(next, previous ?? {}) || !isSubset(previous ?? {}, next)) {
    await deps.kube.writeStatus(source, next);
  }
}

/**
 * Transitions that are the normal course of things (pollers starting or rolling, waiting for another
 * condition): visible in the conditions, not worth an event.
 */
const QUIET_REASONS = new Set(["PollersStarting", "PollersNotReady", "DeploymentPending", "Waiting"]);

/**
 * Whether a condition's change deserves an event: a condition turning False (Warning), or True again
 * after it was False (Normal: the recovery), except the quiet ones. A condition that is True from the
 * start says nothing new (at 500 sources those events were most of the operator's API calls); Ready
 * turning True does, every time, and Ready turning False never does (what made it False has its own).
 */
function eventWorthy(condition: SourceCondition, before: readonly SourceCondition[] | undefined): boolean {
  if (condition.status === "Unknown" || QUIET_REASONS.has(condition.reason)) return false;
  if (condition.type === "Ready") return condition.status === "True";
  if (condition.status === "False") return true;
  // A recovery from a failure; not the end of a normal phase (pollers starting).
  const old = before?.find((candidate) => candidate.type === condition.type);
  return old?.status === "False" && !QUIET_REASONS.has(old.reason);
}

/**
 * The oldest other live source (namespace/name) of the same activity (name and region) in the same
 * Redis, if it is older than this one: it owns the activity's semaphore and limit.
 */
function activityOwner(
  deps: ReconcileDeps,
  source: StepFunctionSource,
  activityName: string,
  region: string | undefined,
  redisUrl: string,
): string | undefined {
  const age = (other: StepFunctionSource): string =>
    `${other.metadata?.creationTimestamp ? new Date(other.metadata.creationTimestamp).toISOString() : "~"} ${other.metadata?.namespace}/${other.metadata?.name}`;
  const mine = age(source);
  let owner: StepFunctionSource | undefined;
  for (const other of deps.sources.list()) {
    if (other.metadata?.uid === source.metadata?.uid || other.metadata?.deletionTimestamp) continue;
    if (other.spec?.activityName !== activityName) continue;
    if ((other.spec.region ?? deps.settings.poller.region) !== region) continue;
    if (redisTargetOf(other, deps.settings).url !== redisUrl) continue;
    if (age(other) < mine && (owner === undefined || age(other) < age(owner))) owner = other;
  }
  return owner === undefined ? undefined : `${owner.metadata?.namespace}/${owner.metadata?.name}`;
}

async function finalize(deps: ReconcileDeps, source: StepFunctionSource, key: string): Promise<void> {
  const finalizers = source.metadata?.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return;
  const arn = source.status?.activityArn;
  const target = redisTargetOf(source, deps.settings);
  // Another live source of the same activity in the same Redis shares the semaphore: keep it.
  if (arn !== undefined && !sharedWithAnother(deps, source, arn, target.url)) {
    try {
      await deps.redis.deleteState(target, arn);
    } catch (error) {
      const first = cleanupFailures.get(key) ?? deps.now().getTime();
      cleanupFailures.set(key, first);
      if (deps.now().getTime() - first < CLEANUP_GIVE_UP_MS) {
        throw new RetryLater(`${key}: cannot delete the semaphore's Redis keys yet: ${describeError(error)}`);
      }
      // Never hold a deletion for ever: leave the keys (they are small; the leases expire by themselves).
      deps.events.record(
        source,
        "Warning",
        "RedisCleanupAbandoned",
        `could not delete the semaphore's Redis keys for ${Math.round(CLEANUP_GIVE_UP_MS / 1000)} s (${describeError(error)}); letting the source go and leaving them in ${redactRedisUrl(target.url)}`,
      );
    }
  }
  await deps.kube.setFinalizers(
    source,
    finalizers.filter((finalizer) => finalizer !== FINALIZER),
  );
  // Only now: a conflict above retries with the give-up clock still running.
  cleanupFailures.delete(key);
}

/** Whether another live source uses the semaphore of `arn` in the Redis at `url`. */
function sharedWithAnother(
  deps: ReconcileDeps,
  source: StepFunctionSource,
  arn: string,
  url: string,
): boolean {
  return deps.sources
    .list()
    .some(
      (other) =>
        other.metadata?.uid !== source.metadata?.uid &&
        !other.metadata?.deletionTimestamp &&
        other.status?.activityArn === arn &&
        redisTargetOf(other, deps.settings).url === url,
    );
}

/** The Redis of a source: its own `spec.redis`, else the operator's. */
export function redisTargetOf(source: StepFunctionSource, settings: OperatorSettings): RedisTarget {
  // Read from the object as stored (it may not have been parsed yet: deletion does not parse it).
  const own = source.spec?.redis;
  if (own?.url) {
    return {
      url: own.url,
      ...(own.passwordSecretRef && {
        passwordSecret: { namespace: source.metadata?.namespace ?? "", ...own.passwordSecretRef },
      }),
    };
  }
  return { url: settings.redisUrl };
}

/**
 * The Deployment of this source's name from the cache: `owned` when this source controls it. One of
 * the same name that it does not control (someone else's, or a previous source's that garbage
 * collection has not removed yet) is never taken over.
 */
function currentDeployment(
  deps: ReconcileDeps,
  source: StepFunctionSource,
): { deployment?: V1Deployment; foreign: boolean } {
  const deployment = deps.deployments.get(
    source.metadata?.namespace ?? "",
    pollerDeploymentName(source.metadata?.name ?? ""),
  );
  if (deployment === undefined) return { foreign: false };
  return ownedBy(deployment, source) ? { deployment, foreign: false } : { foreign: true };
}

/** Whether the source is the Deployment's controlling owner. */
function ownedBy(deployment: V1Deployment, source: StepFunctionSource): boolean {
  const uid = source.metadata?.uid;
  return (
    deployment.metadata?.ownerReferences?.some((owner) => owner.uid === uid && owner.controller === true) ??
    false
  );
}

function recordDeploymentChange(
  deps: ReconcileDeps,
  source: StepFunctionSource,
  before: V1Deployment | undefined,
  after: V1Deployment,
  replicas: number,
): void {
  const name = after.metadata?.name ?? "";
  if (before === undefined) {
    deps.events.record(
      source,
      "Normal",
      "DeploymentCreated",
      `created Deployment ${name} with ${replicas} poller(s)`,
    );
    return;
  }
  const wasReplicas = before.spec?.replicas;
  if (wasReplicas !== undefined && wasReplicas !== replicas) {
    deps.events.record(
      source,
      "Normal",
      "DeploymentScaled",
      `scaled Deployment ${name} from ${wasReplicas} to ${replicas} poller(s)`,
    );
  } else {
    deps.events.record(source, "Normal", "DeploymentUpdated", `updated Deployment ${name}`);
  }
}

/** TargetFound and the resolved port number. */
export function findTargetPort(
  service: V1Service | undefined,
  target: { service: string; port?: number | string | undefined },
  namespace: string,
): { state: ReturnType<typeof conditionTrue>; port?: number } {
  if (service === undefined) {
    return {
      state: conditionFalse(
        "ServiceNotFound",
        `Service ${target.service} not found in namespace ${namespace}: create it, or fix spec.target.service`,
      ),
    };
  }
  const ports = service.spec?.ports ?? [];
  if (ports.length === 0) {
    return { state: conditionFalse("ServiceHasNoPorts", `Service ${target.service} has no ports: add one`) };
  }
  const wanted = target.port;
  const port =
    wanted === undefined
      ? ports[0]
      : ports.find((candidate) =>
          typeof wanted === "number" ? candidate.port === wanted : candidate.name === wanted,
        );
  if (port === undefined) {
    const known = ports.map((candidate) =>
      candidate.name ? `${candidate.name} (${candidate.port})` : String(candidate.port),
    );
    return {
      state: conditionFalse(
        "PortNotFound",
        `Service ${target.service} has no port ${JSON.stringify(wanted)} (it has ${known.join(", ")}): fix spec.target.port or the Service`,
      ),
    };
  }
  return {
    state: conditionTrue(
      "ServiceFound",
      `tasks go to Service ${target.service} port ${port.port}${port.name ? ` (${port.name})` : ""}`,
    ),
    port: port.port,
  };
}

function semaphoreCondition(problem: string | undefined, target: RedisTarget) {
  if (problem === undefined)
    return conditionTrue("RedisReachable", `the semaphore's Redis answers (${redactRedisUrl(target.url)})`);
  return conditionFalse(
    "RedisUnreachable",
    `${problem}: pollers take no new tasks until Redis is back; check ${redactRedisUrl(target.url)} and its password`,
  );
}
