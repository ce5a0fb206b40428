/**
 * reconcileSource with an in-memory fake of every ReconcileDeps port. The fake is a small API server:
 * what reconcile writes (finalizers, the Deployment, the status) lands in the stores the caches read,
 * shaped as the API server returns it (a Deployment with server defaults, metadata and a status; a
 * status merged in as kube.ts's JSON merge patch merges it), so a test can run reconcile again on
 * the result and see what a real second run would do.
 *
 * Every test asserts the calls made and the ones not made, through one ordered call log.
 *
 * Coupling: reconcile.ts keeps a module-level `cleanupFailures` map keyed `namespace/name` (the time
 * of a source's first failed Redis cleanup). Every test uses its own source names so that none
 * inherits another's clock; the one test that depends on the map says so.
 */
import type { V1Deployment, V1DeploymentCondition, V1Service, V1ServicePort } from "@kubernetes/client-node";
import { ApiException } from "@kubernetes/client-node";
import { expect } from "chai";
import {
  type Condition,
  type ConditionType,
  type StepFunctionSource,
  type StepFunctionSourceSpec,
  type StepFunctionSourceSpecInput,
  type StepFunctionSourceStatus,
  stepFunctionSourceSpecSchema,
} from "../../src/api/step-function-source.ts";
import { rfc3339 } from "../../src/operator/conditions.ts";
import { isConflict } from "../../src/operator/controller.ts";
import { statusPatch } from "../../src/operator/kube.ts";
import {
  desiredPollerDeployment,
  LABELS,
  MANAGED_BY,
  pollerDeploymentName,
} from "../../src/operator/poller-deployment.ts";
import {
  ActivityError,
  CLEANUP_GIVE_UP_MS,
  FINALIZER,
  FOREIGN_DEPLOYMENT_RECHECK_MS,
  type ReconcileDeps,
  type RedisTarget,
  RetryLater,
  reconcileSource,
  type TaskFigures,
} from "../../src/operator/reconcile.ts";
import type { OperatorSettings } from "../../src/operator/settings.ts";

const NAMESPACE = "team-a";
const REDIS_URL = "redis://redis.sfn-system.svc:6379";
const REGION = "us-east-1";
const T0 = Date.parse("2026-11-30T01:02:03.456Z");
const OTHER_FINALIZER = "example.com/keep-me";

function arnOf(activityName: string, region = REGION): string {
  return `arn:aws:states:${region}:123456789012:activity:${activityName}`;
}

const SETTINGS: OperatorSettings = {
  namespace: "sfn-system",
  watchNamespaces: [],
  leaderElection: {
    enabled: false,
    leaseName: "sfn-operator",
    identity: "sfn-operator-0",
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
  },
  poller: {
    image: "example/sfn-operator:0.1.0",
    imagePullPolicy: "IfNotPresent",
    resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } },
    region: REGION,
    redisUrl: REDIS_URL,
    redisEnv: {},
    proxyEnv: {},
    logLevel: "info",
  },
  redisUrl: REDIS_URL,
  workers: 4,
  resyncPeriodMs: 300_000,
  statusIntervalMs: 5_000,
  apiTimeoutMs: 30_000,
};

/** A spec as the API server stores it: defaults applied. maxConcurrency 4 / 2 per poller: 2 pollers. */
function specOf(overrides: Partial<StepFunctionSourceSpecInput> = {}): StepFunctionSourceSpec {
  return stepFunctionSourceSpecSchema.parse({
    activityName: "sum",
    target: { service: "sum-svc", port: 8080, path: "/step/sum" },
    maxConcurrency: 4,
    concurrencyPerPoller: 2,
    ...overrides,
  });
}

interface SourceOptions {
  spec?: StepFunctionSourceSpec;
  /** Default: [FINALIZER] (the source has been reconciled once already). */
  finalizers?: string[];
  generation?: number;
  status?: StepFunctionSourceStatus;
  created?: string;
  deleting?: boolean;
  uid?: string;
}

function sourceOf(name: string, options: SourceOptions = {}): StepFunctionSource {
  return {
    apiVersion: "sfn-operator.dev/v1alpha1",
    kind: "StepFunctionSource",
    metadata: {
      name,
      namespace: NAMESPACE,
      uid: options.uid ?? `uid-${name}`,
      generation: options.generation ?? 1,
      resourceVersion: "100",
      creationTimestamp: new Date(options.created ?? "2026-11-01T00:00:00Z"),
      finalizers: options.finalizers ?? [FINALIZER],
      ...(options.deleting && { deletionTimestamp: new Date("2026-11-30T00:00:00Z") }),
    },
    spec: options.spec ?? specOf(),
    ...(options.status !== undefined && { status: options.status }),
  };
}

function serviceOf(name: string, ports: V1ServicePort[] = [{ name: "http", port: 8080 }]): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: NAMESPACE, uid: `uid-svc-${name}` },
    spec: { ports, selector: { app: name } },
  };
}

function json<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** RFC 7386 JSON merge patch, as the API server applies kube.ts's status patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (value !== undefined) result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** One call through a port, in the order made. */
type Op =
  | "setFinalizers"
  | "applyDeployment"
  | "writeStatus"
  | "event"
  | "resolveActivity"
  | "ensureLimit"
  | "figures"
  | "problem"
  | "deleteState";

type Progress = "ReplicaSetUpdated" | "NewReplicaSetAvailable" | "ProgressDeadlineExceeded";

/**
 * The cluster, AWS and Redis as reconcile sees them. Stores are keyed `namespace/name`; the caches
 * read them. The Deployment cache selects on the managed-by label, as the operator's informer does.
 */
class FakeWorld {
  nowMs = T0;
  readonly sources = new Map<string, StepFunctionSource>();
  readonly services = new Map<string, V1Service>();
  readonly deployments = new Map<string, V1Deployment>();

  /** Every call, in order. */
  readonly log: Op[] = [];
  readonly finalizerWrites: Array<{ key: string; finalizers: string[] }> = [];
  readonly applied: V1Deployment[] = [];
  readonly statusWrites: Array<{ key: string; status: StepFunctionSourceStatus }> = [];
  readonly events: Array<{ key: string; type: "Normal" | "Warning"; reason: string; message: string }> = [];
  readonly resolves: Array<{ name: string; region: string | undefined }> = [];
  readonly limits: Array<{ target: RedisTarget; arn: string; limit: number }> = [];
  readonly deletes: Array<{ target: RedisTarget; arn: string }> = [];

  /** Makes the next calls of a port fail. */
  readonly fail: Partial<
    Record<"setFinalizers" | "applyDeployment" | "writeStatus" | "ensureLimit" | "deleteState", Error>
  > = {};
  /** What CreateActivity throws, when it fails. */
  activityFailure: Error | undefined;
  /** What redis.problem() says. */
  redisProblem: string | undefined;
  /** What redis.figures() returns. */
  figures: TaskFigures | undefined;
  /**
   * A Deployment controller done before the apply returns (every pod ready), so that one run can reach
   * Ready; false: the apply returns the Deployment as the API server does, before any rollout.
   */
  instantRollout = true;

  #resourceVersion = 1000;
  readonly #appliedSpecs = new Map<string, string>();

  constructor(...sources: StepFunctionSource[]) {
    for (const source of sources) this.putSource(source);
  }

  putSource(source: StepFunctionSource): void {
    this.sources.set(`${source.metadata.namespace}/${source.metadata.name}`, source);
  }

  source(name: string): StepFunctionSource {
    const source = this.sources.get(`${NAMESPACE}/${name}`);
    if (source === undefined) throw new Error(`no source ${name}`);
    return source;
  }

  /** A user's edit of the spec: a new generation. */
  editSpec(name: string, overrides: Partial<StepFunctionSourceSpecInput>): void {
    const source = this.source(name);
    this.putSource({
      ...source,
      metadata: {
        ...source.metadata,
        generation: (source.metadata.generation ?? 1) + 1,
        resourceVersion: this.#nextVersion(),
      },
      spec: stepFunctionSourceSpecSchema.parse({ ...source.spec, ...overrides }),
    });
  }

  putService(service: V1Service): void {
    this.services.set(`${service.metadata?.namespace}/${service.metadata?.name}`, service);
  }

  putDeployment(deployment: V1Deployment): void {
    this.deployments.set(`${deployment.metadata?.namespace}/${deployment.metadata?.name}`, deployment);
  }

  deployment(name: string): V1Deployment | undefined {
    return this.deployments.get(`${NAMESPACE}/${name}`);
  }

  /** The Deployment controller observed the current generation and reports this. */
  rollOut(name: string, fields: { ready?: number; progress?: Progress } = {}): void {
    const key = `${NAMESPACE}/${name}`;
    const deployment = this.deployments.get(key);
    if (deployment === undefined) throw new Error(`no Deployment ${name}`);
    const replicas = deployment.spec?.replicas ?? 1;
    const ready = fields.ready ?? replicas;
    const progress = fields.progress ?? "NewReplicaSetAvailable";
    const condition = (type: string, status: string, reason: string): V1DeploymentCondition => ({
      type,
      status,
      reason,
      message: reason,
      lastUpdateTime: new Date(this.nowMs),
      lastTransitionTime: new Date(this.nowMs),
    });
    this.deployments.set(key, {
      ...deployment,
      status: {
        observedGeneration: deployment.metadata?.generation ?? 1,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: ready,
        availableReplicas: ready,
        ...(ready < replicas && { unavailableReplicas: replicas - ready }),
        conditions: [
          condition(
            "Available",
            ready >= replicas ? "True" : "False",
            ready >= replicas ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
          ),
          condition("Progressing", progress === "ProgressDeadlineExceeded" ? "False" : "True", progress),
        ],
      },
    });
  }

  /** Forgets what was recorded (the stores stay), before the next run of a test. */
  clearRecords(): void {
    for (const list of [
      this.log,
      this.finalizerWrites,
      this.applied,
      this.statusWrites,
      this.events,
      this.resolves,
      this.limits,
      this.deletes,
    ]) {
      list.length = 0;
    }
  }

  eventReasons(): string[] {
    return this.events.map((event) => event.reason);
  }

  deps(): ReconcileDeps {
    return {
      settings: SETTINGS,
      now: () => new Date(this.nowMs),
      sources: {
        get: (namespace, name) => this.sources.get(`${namespace}/${name}`),
        list: () => [...this.sources.values()],
      },
      services: { get: (namespace, name) => this.services.get(`${namespace}/${name}`) },
      deployments: {
        get: (namespace, name) => {
          const deployment = this.deployments.get(`${namespace}/${name}`);
          return deployment?.metadata?.labels?.[LABELS.managedBy] === MANAGED_BY ? deployment : undefined;
        },
      },
      kube: {
        setFinalizers: async (source, finalizers) => {
          this.log.push("setFinalizers");
          const key = `${source.metadata.namespace}/${source.metadata.name}`;
          this.finalizerWrites.push({ key, finalizers: [...finalizers] });
          if (this.fail.setFinalizers) throw this.fail.setFinalizers;
          const stored = this.sources.get(key);
          if (stored === undefined) throw new ApiException(404, "Not Found", {}, {});
          if (stored.metadata.deletionTimestamp && finalizers.length === 0) {
            this.sources.delete(key); // the last finalizer gone: the API server deletes it
          } else {
            this.putSource({
              ...stored,
              metadata: {
                ...stored.metadata,
                finalizers: [...finalizers],
                resourceVersion: this.#nextVersion(),
              },
            });
          }
        },
        // An uncached GET sees every Deployment, labelled or not (a read: not in the call log).
        readDeployment: async (namespace, name) => {
          const deployment = this.deployments.get(`${namespace}/${name}`);
          return deployment === undefined ? undefined : structuredClone(deployment);
        },
        applyDeployment: async (desired) => {
          this.log.push("applyDeployment");
          this.applied.push(structuredClone(desired));
          if (this.fail.applyDeployment) throw this.fail.applyDeployment;
          const name = desired.metadata?.name ?? "";
          const key = `${desired.metadata?.namespace}/${name}`;
          this.deployments.set(key, this.#served(key, desired));
          if (this.instantRollout) this.rollOut(name);
          return structuredClone(this.deployments.get(key) as V1Deployment);
        },
        writeStatus: async (source, status) => {
          this.log.push("writeStatus");
          const key = `${source.metadata.namespace}/${source.metadata.name}`;
          this.statusWrites.push({ key, status: json(status) });
          if (this.fail.writeStatus) throw this.fail.writeStatus;
          const stored = this.sources.get(key);
          if (stored === undefined) throw new ApiException(404, "Not Found", {}, {});
          // kube.ts sends { status: statusPatch(...) } as a JSON merge patch.
          this.putSource({
            ...stored,
            metadata: { ...stored.metadata, resourceVersion: this.#nextVersion() },
            status: mergePatch(
              stored.status ?? {},
              json(statusPatch(stored.status, status)),
            ) as StepFunctionSourceStatus,
          });
        },
      },
      events: {
        record: (source, type, reason, message) => {
          this.log.push("event");
          this.events.push({
            key: `${source.metadata.namespace}/${source.metadata.name}`,
            type,
            reason,
            message,
          });
        },
      },
      resolveActivity: async (name, region) => {
        this.log.push("resolveActivity");
        this.resolves.push({ name, region });
        if (this.activityFailure) throw this.activityFailure;
        return arnOf(name, region);
      },
      redis: {
        ensureLimit: async (target, arn, limit) => {
          this.log.push("ensureLimit");
          this.limits.push({ target, arn, limit });
          if (this.fail.ensureLimit) throw this.fail.ensureLimit;
        },
        figures: () => {
          this.log.push("figures");
          return this.figures;
        },
        problem: () => {
          this.log.push("problem");
          return this.redisProblem;
        },
        deleteState: async (target, arn) => {
          this.log.push("deleteState");
          this.deletes.push({ target, arn });
          if (this.fail.deleteState) throw this.fail.deleteState;
        },
      },
    };
  }

  run(name: string): ReturnType<typeof reconcileSource> {
    return reconcileSource(this.deps(), NAMESPACE, name);
  }

  #nextVersion(): string {
    this.#resourceVersion += 1;
    return String(this.#resourceVersion);
  }

  /**
   * What the API server holds after a server-side apply of `desired`: our fields, its metadata and
   * defaults, the status as it was; the generation moves only when the spec changed.
   */
  #served(key: string, desired: V1Deployment): V1Deployment {
    const existing = this.deployments.get(key);
    const specText = JSON.stringify(desired.spec);
    const generation =
      existing === undefined
        ? 1
        : (existing.metadata?.generation ?? 1) + (this.#appliedSpecs.get(key) === specText ? 0 : 1);
    this.#appliedSpecs.set(key, specText);
    const object = structuredClone(desired);
    object.metadata = {
      ...object.metadata,
      uid: existing?.metadata?.uid ?? `uid-deployment-${key}`,
      resourceVersion: this.#nextVersion(),
      generation,
      managedFields: [{ manager: "sfn-operator", operation: "Apply", apiVersion: "apps/v1" }],
    };
    const spec = object.spec;
    if (spec !== undefined) {
      spec.progressDeadlineSeconds = 600;
      const pod = spec.template.spec;
      if (pod !== undefined) {
        pod.restartPolicy = "Always";
        pod.dnsPolicy = "ClusterFirst";
        pod.schedulerName = "default-scheduler";
        for (const container of pod.containers) {
          container.terminationMessagePath = "/dev/termination-log";
          container.terminationMessagePolicy = "File";
          for (const probe of [container.readinessProbe, container.livenessProbe]) {
            if (probe === undefined) continue;
            probe.timeoutSeconds = 1;
            probe.successThreshold = 1;
            if (probe.httpGet) probe.httpGet.scheme = "HTTP";
          }
          for (const variable of container.env ?? []) {
            if (variable.valueFrom?.fieldRef) variable.valueFrom.fieldRef.apiVersion = "v1";
          }
        }
      }
    }
    object.status = existing?.status ?? {};
    return object;
  }
}

function conditionOf(status: StepFunctionSourceStatus | undefined, type: ConditionType): Condition {
  const condition = status?.conditions?.find((candidate) => candidate.type === type);
  expect(condition, `condition ${type}`).to.not.equal(undefined);
  return condition as Condition;
}

function onlyStatusWrite(world: FakeWorld): StepFunctionSourceStatus {
  expect(world.statusWrites, "status writes").to.have.length(1);
  return (world.statusWrites[0] as { status: StepFunctionSourceStatus }).status;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  expect.fail("expected the reconcile to throw");
}

/** A world with a source (with our finalizer), its Service, and nothing else yet. */
function worldWith(name: string, options: SourceOptions = {}): FakeWorld {
  const world = new FakeWorld(sourceOf(name, options));
  world.putService(serviceOf("sum-svc"));
  return world;
}

const conflict = (): ApiException<unknown> =>
  new ApiException(409, "Conflict", { reason: "Conflict", message: "the object has been modified" }, {});

describe("reconcileSource", () => {
  it("writes nothing for a source that is gone from the cache", async () => {
    const world = new FakeWorld();
    world.putService(serviceOf("sum-svc"));

    expect(await world.run("gone")).to.deep.equal({});
    expect(world.log).to.deep.equal([]);
  });

  it("adds the finalizer (keeping the others) and does nothing else in that run", async () => {
    const world = worldWith("no-finalizer", { finalizers: [OTHER_FINALIZER] });

    expect(await world.run("no-finalizer")).to.deep.equal({});
    expect(world.log).to.deep.equal(["setFinalizers"]);
    expect(world.finalizerWrites).to.deep.equal([
      { key: `${NAMESPACE}/no-finalizer`, finalizers: [OTHER_FINALIZER, FINALIZER] },
    ]);
    // No Deployment, no status, no Redis, no AWS: the update comes back through the watch.
    expect(world.applied).to.deep.equal([]);
    expect(world.statusWrites).to.deep.equal([]);
    expect(world.limits).to.deep.equal([]);
    expect(world.resolves).to.deep.equal([]);
  });

  it("resolves the activity, writes the limit before the Deployment, applies it once, and reports Ready", async () => {
    const world = worldWith("happy");
    const arn = arnOf("sum");

    expect(await world.run("happy")).to.deep.equal({});

    expect(world.resolves).to.deep.equal([{ name: "sum", region: REGION }]);
    expect(world.limits).to.deep.equal([{ target: { url: REDIS_URL }, arn, limit: 4 }]);
    // The live limit first: pollers of a raised limit must find it when they start.
    expect(world.log.indexOf("ensureLimit")).to.be.greaterThan(-1);
    expect(world.log.indexOf("ensureLimit")).to.be.lessThan(world.log.indexOf("applyDeployment"));
    expect(world.log.filter((op) => op === "applyDeployment")).to.have.length(1);

    const applied = world.applied[0] as V1Deployment;
    expect(applied.metadata?.name).to.equal("happy-poller");
    expect(applied.spec?.replicas).to.equal(2); // ceil(4 / 2)
    expect(applied.metadata?.ownerReferences?.[0]).to.include({ uid: "uid-happy", controller: true });
    expect(applied).to.deep.equal(
      desiredPollerDeployment({
        source: {
          apiVersion: "sfn-operator.dev/v1alpha1",
          kind: "StepFunctionSource",
          name: "happy",
          namespace: NAMESPACE,
          uid: "uid-happy",
        },
        spec: specOf(),
        activityArn: arn,
        targetPort: 8080,
        defaults: SETTINGS.poller,
      }),
    );

    const status = onlyStatusWrite(world);
    expect(status).to.deep.include({
      observedGeneration: 1,
      activityArn: arn,
      desiredPollers: 2,
      readyPollers: 2,
      updatedPollers: 2,
      pollers: "2/2",
      tasksInFlight: 0,
      tasksSucceeded: 0,
      tasksFailed: 0,
    });
    expect(
      status.conditions?.map((condition) => [condition.type, condition.status, condition.reason]),
    ).to.deep.equal([
      ["Ready", "True", "Ready"],
      ["ActivityResolved", "True", "Resolved"],
      ["TargetFound", "True", "ServiceFound"],
      ["PollersAvailable", "True", "AllPollersReady"],
      ["SemaphoreHealthy", "True", "RedisReachable"],
    ]);
    for (const condition of status.conditions ?? []) {
      expect(condition.observedGeneration).to.equal(1);
      expect(condition.lastTransitionTime).to.equal(rfc3339(new Date(T0)));
    }

    // Conditions True from the start are no news: the Deployment made and Ready are.
    expect(world.eventReasons()).to.deep.equal(["DeploymentCreated", "Ready"]);
    expect(world.events.every((event) => event.type === "Normal")).to.equal(true);
    expect(world.finalizerWrites).to.deep.equal([]);
    expect(world.deletes).to.deep.equal([]);
  });

  it("writes nothing on a second run when nothing changed (the caches hold what was written)", async () => {
    const world = worldWith("idempotent");
    world.figures = { inFlight: 1, succeeded: 7, failed: 2, lastTaskTime: "2026-11-30T01:00:00Z" };
    await world.run("idempotent");
    expect(world.applied).to.have.length(1);
    expect(world.statusWrites).to.have.length(1);

    // What the caches now hold is the API server's form: the Deployment with defaults, metadata and
    // the Deployment controller's status; the source's status as merged in.
    const cached = world.deployment("idempotent-poller");
    expect(cached?.spec?.progressDeadlineSeconds).to.equal(600);
    expect(cached?.status).to.include({ observedGeneration: 1, readyReplicas: 2, updatedReplicas: 2 });
    expect(world.source("idempotent").status).to.deep.equal(world.statusWrites[0]?.status);
    world.clearRecords();
    world.nowMs += 60_000; // later: no condition may move its lastTransitionTime

    expect(await world.run("idempotent")).to.deep.equal({});
    expect(world.log).to.not.include("applyDeployment");
    expect(world.log).to.not.include("writeStatus");
    expect(world.log).to.not.include("setFinalizers");
    expect(world.log).to.not.include("event");
    expect(world.events).to.deep.equal([]);
  });

  it("scales the Deployment when maxConcurrency changes, with the same pod template, and says so", async () => {
    const world = worldWith("scaled");
    await world.run("scaled");
    const first = world.applied[0] as V1Deployment;
    world.clearRecords();
    world.instantRollout = false;
    world.editSpec("scaled", { maxConcurrency: 8 });

    expect(await world.run("scaled")).to.deep.equal({});

    expect(world.limits.map((limit) => limit.limit)).to.deep.equal([8]);
    expect(world.log.indexOf("ensureLimit")).to.be.lessThan(world.log.indexOf("applyDeployment"));
    expect(world.applied).to.have.length(1);
    const second = world.applied[0] as V1Deployment;
    expect(second.spec?.replicas).to.equal(4);
    // The pollers follow the limit from Redis: the pods are not rolled.
    expect(second.spec?.template).to.deep.equal(first.spec?.template);
    expect(world.events).to.deep.equal([
      {
        key: `${NAMESPACE}/scaled`,
        type: "Normal",
        reason: "DeploymentScaled",
        message: "scaled Deployment scaled-poller from 2 to 4 poller(s)",
      },
    ]);
    const status = onlyStatusWrite(world);
    expect(status).to.include({ observedGeneration: 2, desiredPollers: 4, pollers: "2/4" });
    expect(conditionOf(status, "PollersAvailable")).to.include({
      status: "False",
      reason: "PollersNotReady",
    });
  });

  describe("the target Service", () => {
    function expectTargetProblem(world: FakeWorld, reason: string, message: RegExp): void {
      expect(world.applied, "no Deployment").to.deep.equal([]);
      const status = onlyStatusWrite(world);
      expect(conditionOf(status, "TargetFound")).to.include({ status: "False", reason });
      expect(conditionOf(status, "TargetFound").message).to.match(message);
      expect(conditionOf(status, "PollersAvailable")).to.include({ status: "Unknown", reason: "Waiting" });
      expect(conditionOf(status, "Ready")).to.include({ status: "False", reason });
      expect(world.events.map((event) => [event.type, event.reason])).to.deep.equal([["Warning", reason]]);
      // The activity resolves and the limit is written: only the Deployment waits for the Service.
      expect(world.resolves).to.have.length(1);
      expect(world.limits).to.have.length(1);
    }

    it("is TargetFound False ServiceNotFound when the Service does not exist", async () => {
      const world = new FakeWorld(sourceOf("no-service"));

      // No RetryLater: the Service informer queues the source when the Service appears.
      expect(await world.run("no-service")).to.deep.equal({});
      expectTargetProblem(world, "ServiceNotFound", /^Service sum-svc not found in namespace team-a/);
    });

    it("records the recovery (Normal ServiceFound, then Ready) when the Service appears", async () => {
      const world = new FakeWorld(sourceOf("service-later"));
      await world.run("service-later");
      world.putService(serviceOf("sum-svc"));
      world.clearRecords();

      await world.run("service-later");

      expect(world.events.map((event) => [event.type, event.reason])).to.deep.equal([
        ["Normal", "DeploymentCreated"],
        ["Normal", "Ready"],
        ["Normal", "ServiceFound"],
      ]);
    });

    it("is TargetFound False PortNotFound when no port has the name given", async () => {
      const world = new FakeWorld(
        sourceOf("no-port-name", {
          spec: specOf({ target: { service: "sum-svc", port: "grpc", path: "/step/sum" } }),
        }),
      );
      world.putService(serviceOf("sum-svc", [{ name: "http", port: 8080 }, { port: 9000 }]));

      expect(await world.run("no-port-name")).to.deep.equal({});
      expectTargetProblem(world, "PortNotFound", /has no port "grpc" \(it has http \(8080\), 9000\)/);
    });

    it("is TargetFound False ServiceHasNoPorts for a Service without ports", async () => {
      const world = new FakeWorld(sourceOf("no-ports"));
      world.putService(serviceOf("sum-svc", []));

      expect(await world.run("no-ports")).to.deep.equal({});
      expectTargetProblem(world, "ServiceHasNoPorts", /has no ports/);
    });

    it("sends to the number of a port given by name", async () => {
      const world = new FakeWorld(
        sourceOf("port-by-name", {
          spec: specOf({ target: { service: "sum-svc", port: "web", path: "/step/sum" } }),
        }),
      );
      world.putService(
        serviceOf("sum-svc", [
          { name: "metrics", port: 9100 },
          { name: "web", port: 8081 },
        ]),
      );

      await world.run("port-by-name");
      const env = world.applied[0]?.spec?.template.spec?.containers[0]?.env ?? [];
      expect(env.find((variable) => variable.name === "SFN_TARGET_URL")?.value).to.equal(
        "http://sum-svc.team-a.svc:8081",
      );
    });
  });

  describe("the activity", () => {
    it("on an AWS refusal: ActivityResolved False with its reason, the known ARN kept, RetryLater after the status write", async () => {
      const world = worldWith("refused");
      await world.run("refused");
      world.clearRecords();
      world.activityFailure = new ActivityError(
        "AccessDenied",
        "not authorized to perform states:CreateActivity: give the operator's role that permission",
      );

      const error = await rejection(world.run("refused"));

      expect(error).to.be.instanceOf(RetryLater);
      expect((error as Error).message).to.contain("team-a/refused");
      expect((error as Error).message).to.contain("not authorized to perform states:CreateActivity");
      expect(world.log.at(-1), "the status is written before the throw").to.equal("writeStatus");
      expect(world.resolves).to.have.length(1);
      expect(world.log).to.not.include("ensureLimit");
      expect(world.log).to.not.include("applyDeployment");
      const status = onlyStatusWrite(world);
      expect(status.activityArn, "the ARN known before").to.equal(arnOf("sum"));
      expect(conditionOf(status, "ActivityResolved")).to.include({ status: "False", reason: "AccessDenied" });
      expect(conditionOf(status, "Ready")).to.include({ status: "False", reason: "AccessDenied" });
      expect(world.events.map((event) => [event.type, event.reason])).to.deep.equal([
        ["Warning", "AccessDenied"],
      ]);
    });

    it("on any other error: ActivityResolved False AwsError, RetryLater", async () => {
      const world = worldWith("aws-error");
      world.activityFailure = new Error("socket hang up");

      expect(await rejection(world.run("aws-error"))).to.be.instanceOf(RetryLater);
      const status = onlyStatusWrite(world);
      expect(status.activityArn).to.equal(undefined);
      expect(conditionOf(status, "ActivityResolved")).to.include({
        status: "False",
        reason: "AwsError",
        message: "socket hang up",
      });
      expect(world.log).to.not.include("applyDeployment");
    });

    it("is ActivityInUse when an older source serves the same activity in the same Redis: nothing resolved, applied or retried", async () => {
      const world = new FakeWorld(
        sourceOf("inuse-old", { created: "2026-01-01T00:00:00Z" }),
        sourceOf("inuse-new", { created: "2026-02-01T00:00:00Z" }),
      );
      world.putService(serviceOf("sum-svc"));

      // Nothing to retry: the older source's going or changing is what would change this.
      expect(await world.run("inuse-new")).to.deep.equal({});

      expect(world.log).to.not.include("resolveActivity");
      expect(world.log).to.not.include("ensureLimit");
      expect(world.log).to.not.include("applyDeployment");
      const status = onlyStatusWrite(world);
      expect(status).to.not.have.property("activityArn");
      const activity = conditionOf(status, "ActivityResolved");
      expect(activity).to.include({ status: "False", reason: "ActivityInUse" });
      expect(activity.message).to.contain("StepFunctionSource team-a/inuse-old");
      expect(world.events.map((event) => [event.type, event.reason])).to.deep.equal([
        ["Warning", "ActivityInUse"],
      ]);
    });

    it("is no conflict with a source of the same activity name in another region or Redis, a newer one, or one being deleted", async () => {
      const variants: Array<[string, SourceOptions]> = [
        ["other-region", { created: "2026-01-01T00:00:00Z", spec: specOf({ region: "eu-west-1" }) }],
        [
          "other-redis",
          { created: "2026-01-01T00:00:00Z", spec: specOf({ redis: { url: "redis://other-redis:6379" } }) },
        ],
        ["newer", { created: "2026-12-01T00:00:00Z" }],
        ["deleting", { created: "2026-01-01T00:00:00Z", deleting: true }],
      ];
      for (const [variant, options] of variants) {
        const world = new FakeWorld(
          sourceOf(`free-${variant}-other`, options),
          sourceOf(`free-${variant}`, { created: "2026-06-01T00:00:00Z" }),
        );
        world.putService(serviceOf("sum-svc"));

        await world.run(`free-${variant}`);
        expect(world.resolves, variant).to.have.length(1);
        expect(world.applied, variant).to.have.length(1);
        expect(conditionOf(world.statusWrites[0]?.status, "ActivityResolved").status, variant).to.equal(
          "True",
        );
      }
    });
  });

  it("never applies over a Deployment of the poller's name that this source does not control: DeploymentNameTaken", async () => {
    const world = worldWith("taken");
    // A previous source of the same name (another uid) whose Deployment garbage collection has not
    // removed yet: it carries our labels, so the informer has it.
    world.putDeployment({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: {
        name: pollerDeploymentName("taken"),
        namespace: NAMESPACE,
        labels: { [LABELS.managedBy]: MANAGED_BY },
        ownerReferences: [
          {
            apiVersion: "sfn-operator.dev/v1alpha1",
            kind: "StepFunctionSource",
            name: "taken",
            uid: "uid-of-a-previous-taken",
            controller: true,
          },
        ],
      },
      spec: { replicas: 5, selector: {}, template: {} },
      status: { readyReplicas: 5 },
    });

    // Looked at again now and then: deleting the other Deployment (not watched) then heals it.
    expect(await world.run("taken")).to.deep.equal({ requeueAfterMs: FOREIGN_DEPLOYMENT_RECHECK_MS });

    expect(world.log).to.not.include("applyDeployment");
    const status = onlyStatusWrite(world);
    expect(conditionOf(status, "PollersAvailable")).to.include({
      status: "False",
      reason: "DeploymentNameTaken",
    });
    expect(status).to.include({ readyPollers: 0, pollers: "0/2" });
    expect(world.events.map((event) => [event.type, event.reason])).to.deep.equal([
      ["Warning", "DeploymentNameTaken"],
    ]);
  });

  it("with Redis unreachable: SemaphoreHealthy False RedisUnreachable, the Deployment still applied, RetryLater", async () => {
    const world = worldWith("redis-down");
    world.fail.ensureLimit = new Error("connect ECONNREFUSED 10.96.0.7:6379");

    const error = await rejection(world.run("redis-down"));

    expect(error).to.be.instanceOf(RetryLater);
    expect((error as Error).message).to.contain("team-a/redis-down");
    expect(world.log.at(-1), "the status is written before the throw").to.equal("writeStatus");
    // Why the Deployment is applied anyway: the pollers fail closed (src/poller/live-source.ts: no
    // permit, so no poll, while no limit is read from Redis), so pollers started now cannot exceed
    // maxConcurrency; and holding the Deployment back would also hold back every other spec change
    // (image, target, resources) for as long as Redis is down.
    expect(world.limits).to.have.length(1);
    expect(world.applied).to.have.length(1);
    expect(world.log.indexOf("ensureLimit")).to.be.lessThan(world.log.indexOf("applyDeployment"));
    const status = onlyStatusWrite(world);
    const semaphore = conditionOf(status, "SemaphoreHealthy");
    expect(semaphore).to.include({ status: "False", reason: "RedisUnreachable" });
    expect(semaphore.message).to.contain("ECONNREFUSED");
    expect(semaphore.message).to.contain(REDIS_URL);
    expect(status.activityArn).to.equal(arnOf("sum"));
    expect(
      world.events.filter((event) => event.type === "Warning").map((event) => event.reason),
    ).to.deep.equal(["RedisUnreachable"]);
  });

  it("with a Redis problem reported after the limit was written: RedisUnreachable, RetryLater", async () => {
    const world = worldWith("redis-noauth");
    world.redisProblem = "NOAUTH Authentication required";

    expect(await rejection(world.run("redis-noauth"))).to.be.instanceOf(RetryLater);
    const semaphore = conditionOf(onlyStatusWrite(world), "SemaphoreHealthy");
    expect(semaphore).to.include({ status: "False", reason: "RedisUnreachable" });
    expect(semaphore.message).to.match(/^NOAUTH Authentication required: /);
  });

  it("on a spec the API server accepted but reconcile refuses (requestTimeout 50ms): InvalidSpec, nothing resolved or applied", async () => {
    const world = worldWith("invalid");
    await world.run("invalid");
    const before = world.source("invalid").status;
    world.clearRecords();
    const source = world.source("invalid");
    world.putSource({
      ...source,
      metadata: { ...source.metadata, generation: 2 },
      spec: { ...source.spec, requestTimeout: "50ms" },
    });

    // No RetryLater: a fixed spec is a new generation, which queues the source again.
    expect(await world.run("invalid")).to.deep.equal({});

    expect(world.log).to.not.include("resolveActivity");
    expect(world.log).to.not.include("ensureLimit");
    expect(world.log).to.not.include("applyDeployment");
    const status = onlyStatusWrite(world);
    // What was known stays (the pollers of the last good spec keep running); the generation moves.
    expect(status).to.include({
      observedGeneration: 2,
      activityArn: before?.activityArn,
      desiredPollers: 2,
      readyPollers: 2,
    });
    const activity = conditionOf(status, "ActivityResolved");
    expect(activity).to.include({ status: "False", reason: "InvalidSpec" });
    expect(activity.message).to.match(/^spec\.requestTimeout: /);
    for (const type of ["TargetFound", "PollersAvailable", "SemaphoreHealthy"] as const) {
      expect(conditionOf(status, type), type).to.include({ status: "Unknown", reason: "InvalidSpec" });
    }
    expect(world.events.map((event) => [event.type, event.reason])).to.deep.equal([
      ["Warning", "InvalidSpec"],
    ]);
  });

  describe("deletion", () => {
    function deleting(name: string, options: SourceOptions = {}): StepFunctionSource {
      return sourceOf(name, {
        deleting: true,
        finalizers: [OTHER_FINALIZER, FINALIZER],
        status: { activityArn: arnOf("sum") },
        ...options,
      });
    }

    it("deletes the previous activity's Redis state when a source moves to another activity", async () => {
      const world = worldWith("moved", {
        spec: specOf({ activityName: "sum-v2" }),
        status: { activityArn: arnOf("sum") },
      });

      await world.run("moved");

      expect(world.deletes).to.deep.equal([{ target: { url: REDIS_URL }, arn: arnOf("sum") }]);
      expect(world.log.indexOf("deleteState")).to.be.greaterThan(world.log.indexOf("applyDeployment"));
      expect(world.source("moved").status?.activityArn).to.equal(arnOf("sum-v2"));
    });

    it("deletes the semaphore's Redis state, then removes only our finalizer", async () => {
      const world = new FakeWorld(deleting("delete-clean"));

      expect(await world.run("delete-clean")).to.deep.equal({});

      expect(world.log).to.deep.equal(["deleteState", "setFinalizers"]);
      expect(world.deletes).to.deep.equal([{ target: { url: REDIS_URL }, arn: arnOf("sum") }]);
      expect(world.finalizerWrites).to.deep.equal([
        { key: `${NAMESPACE}/delete-clean`, finalizers: [OTHER_FINALIZER] },
      ]);
    });

    it("deletes the state in the source's own Redis, with its password Secret", async () => {
      const world = new FakeWorld(
        deleting("delete-own-redis", {
          spec: specOf({
            redis: { url: "redis://other-redis:6379", passwordSecretRef: { name: "other-redis", key: "pw" } },
          }),
        }),
      );

      await world.run("delete-own-redis");
      expect(world.deletes).to.deep.equal([
        {
          target: {
            url: "redis://other-redis:6379",
            passwordSecret: { namespace: NAMESPACE, name: "other-redis", key: "pw" },
          },
          arn: arnOf("sum"),
        },
      ]);
    });

    it("removes the finalizer without touching Redis when no ARN was ever resolved", async () => {
      const world = new FakeWorld(deleting("delete-no-arn", { status: {} }));

      await world.run("delete-no-arn");
      expect(world.log).to.deep.equal(["setFinalizers"]);
    });

    it("keeps the state another live source of the same ARN and Redis uses", async () => {
      const world = new FakeWorld(
        deleting("delete-shared"),
        sourceOf("delete-shared-peer", { status: { activityArn: arnOf("sum") } }),
      );

      expect(await world.run("delete-shared")).to.deep.equal({});
      expect(world.log).to.deep.equal(["setFinalizers"]);
      expect(world.deletes).to.deep.equal([]);
      expect(world.finalizerWrites[0]?.finalizers).to.deep.equal([OTHER_FINALIZER]);
    });

    it("retries later and keeps the finalizer while Redis cannot be cleaned", async () => {
      const world = new FakeWorld(deleting("delete-retry"));
      world.fail.deleteState = new Error("connect ECONNREFUSED 10.96.0.7:6379");

      const error = await rejection(world.run("delete-retry"));
      expect(error).to.be.instanceOf(RetryLater);
      expect((error as Error).message).to.contain("team-a/delete-retry");
      expect((error as Error).message).to.contain("ECONNREFUSED");
      expect(world.log).to.deep.equal(["deleteState"]);
      expect(world.source("delete-retry").metadata.finalizers).to.include(FINALIZER);
    });

    it("lets the source go after CLEANUP_GIVE_UP_MS, with a Warning event, leaving the keys", async () => {
      const world = new FakeWorld(deleting("delete-give-up"));
      world.fail.deleteState = new Error("connect ECONNREFUSED 10.96.0.7:6379");

      expect(await rejection(world.run("delete-give-up"))).to.be.instanceOf(RetryLater);
      world.nowMs = T0 + CLEANUP_GIVE_UP_MS - 1;
      expect(await rejection(world.run("delete-give-up"))).to.be.instanceOf(RetryLater);
      expect(world.finalizerWrites).to.deep.equal([]);
      expect(world.events).to.deep.equal([]);
      world.clearRecords();
      world.nowMs = T0 + CLEANUP_GIVE_UP_MS;

      expect(await world.run("delete-give-up")).to.deep.equal({});

      expect(world.log).to.deep.equal(["deleteState", "event", "setFinalizers"]);
      const event = world.events[0];
      expect(event).to.include({ type: "Warning", reason: "RedisCleanupAbandoned" });
      expect(event?.message).to.contain("120 s");
      expect(event?.message).to.contain(REDIS_URL);
      expect(world.finalizerWrites[0]?.finalizers).to.deep.equal([OTHER_FINALIZER]);
      expect(world.sources.has(`${NAMESPACE}/delete-give-up`), "still held by the other finalizer").to.equal(
        true,
      );
    });

    it("starts the give-up clock again for a new source of a name whose old source is gone", async () => {
      // Depends on the module-level cleanupFailures map on purpose: the gone source's run clears it.
      const world = new FakeWorld(deleting("delete-reused"));
      world.fail.deleteState = new Error("connect ECONNREFUSED 10.96.0.7:6379");
      expect(await rejection(world.run("delete-reused"))).to.be.instanceOf(RetryLater);
      world.sources.clear(); // someone removed the finalizer by hand: it is gone
      expect(await world.run("delete-reused")).to.deep.equal({});
      world.putSource(deleting("delete-reused", { uid: "uid-delete-reused-2" }));
      world.nowMs = T0 + CLEANUP_GIVE_UP_MS;

      expect(await rejection(world.run("delete-reused"))).to.be.instanceOf(RetryLater);
      expect(world.events).to.deep.equal([]);
    });

    it("does nothing for a source being deleted without our finalizer", async () => {
      const world = new FakeWorld(deleting("delete-not-ours", { finalizers: [OTHER_FINALIZER] }));

      expect(await world.run("delete-not-ours")).to.deep.equal({});
      expect(world.log).to.deep.equal([]);
    });
  });

  describe("bugs found by these tests, fixed", () => {
    // BUG: a status written without activityArn (ActivityInUse: "refused for good, the ARN is not
    // kept", src/operator/reconcile.ts, the status built in step 9) does not remove the ARN on the
    // server: kube.ts's writeStatus sends { status } as a JSON merge patch, in which an absent key
    // leaves the stored one alone. The stale ARN stays for ever, `finish` then sees a difference on
    // every run (isSubset(previous, next) fails on activityArn) and writes the status again each time,
    // and the status collector (operator.ts #collect) keeps reading figures and re-writing this
    // source's maxConcurrency as the live limit of an ARN another source owns (source-redis.ts
    // collect: `figures.limit !== source.limit` -> ensureLimit), so the two sources' limits take
    // turns (and this source's old Deployment, left running, polls the same activity). Fix: in
    // KubeWriter.writeStatus (src/operator/kube.ts), send null for every top-level key of
    // source.status that the new status lacks (merge patch deletes null keys), or write the status by
    // server-side apply; then let this file's fake writeStatus do what the fixed one does.
    it("an ActivityInUse source loses the ARN it held, and the next run writes nothing (was a bug: a merge patch kept it)", async () => {
      const world = new FakeWorld(
        sourceOf("held-a", { created: "2026-01-01T00:00:00Z", spec: specOf({ activityName: "other" }) }),
        sourceOf("held-b", { created: "2026-06-01T00:00:00Z", spec: specOf({ activityName: "shared" }) }),
      );
      world.putService(serviceOf("sum-svc"));
      await world.run("held-b");
      expect(world.source("held-b").status?.activityArn).to.equal(arnOf("shared"));
      // The older source is changed to the same activity: it owns it now.
      world.editSpec("held-a", { activityName: "shared" });
      world.clearRecords();

      await world.run("held-b");
      expect(conditionOf(onlyStatusWrite(world), "ActivityResolved").reason).to.equal("ActivityInUse");
      expect(onlyStatusWrite(world)).to.not.have.property("activityArn");
      expect(world.source("held-b").status, "the ARN left on the server").to.not.have.property("activityArn");
      world.clearRecords();

      await world.run("held-b");
      expect(world.log).to.not.include("writeStatus");
    });

    // BUG: the foreign-Deployment check (src/operator/reconcile.ts, currentDeployment) only sees what
    // the Deployment cache holds, and the operator's Deployment informer selects
    // app.kubernetes.io/managed-by=sfn-operator (src/operator/operator.ts, MANAGED_SELECTOR). Someone
    // else's Deployment named <source>-poller without that label is invisible: reconcile takes the
    // name as free and server-side applies over it with force: true (kube.ts applyDeployment). Either
    // the apply fails (spec.selector is immutable: 422, thrown before the status is written, so the
    // user sees no condition, only backoff retries in the logs) or, with an equal selector, the
    // operator takes the Deployment over. Never DeploymentNameTaken. Fix: when the cache has no
    // Deployment of the name, create it with a POST (create) instead of an apply, and turn 409
    // AlreadyExists into DeploymentNameTaken (not a requeued conflict); or GET it uncached before the
    // first apply and check its owner reference.
    it("a Deployment of the poller's name without our labels is never applied over (was a bug: the cache does not see it)", async () => {
      const world = worldWith("unlabeled");
      world.putDeployment({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "unlabeled-poller", namespace: NAMESPACE, labels: { app: "someone-else" } },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: "someone-else" } },
          template: { metadata: { labels: { app: "someone-else" } } },
        },
      });

      await world.run("unlabeled");

      expect(world.log).to.not.include("applyDeployment");
      expect(conditionOf(onlyStatusWrite(world), "PollersAvailable").reason).to.equal("DeploymentNameTaken");
    });

    // BUG: src/operator/reconcile.ts, finalize: on giving up, `cleanupFailures.delete(key)` runs
    // before `deps.kube.setFinalizers`. When that write fails (a 409: the source changed, e.g. another
    // controller removed its own finalizer), the retry finds no first-failure time, starts the clock
    // again and waits another CLEANUP_GIVE_UP_MS (and records RedisCleanupAbandoned a second time).
    // Fix: keep the entry until the finalizer is removed (delete it after setFinalizers succeeds, or
    // leave it to the "source gone" branch, which already deletes it).
    it("a conflict while letting the source go keeps the give-up clock (was a bug)", async () => {
      const world = new FakeWorld(
        sourceOf("give-up-conflict", { deleting: true, status: { activityArn: arnOf("sum") } }),
      );
      world.fail.deleteState = new Error("connect ECONNREFUSED 10.96.0.7:6379");
      expect(await rejection(world.run("give-up-conflict"))).to.be.instanceOf(RetryLater);
      world.nowMs = T0 + CLEANUP_GIVE_UP_MS;
      world.fail.setFinalizers = conflict();
      expect(isConflict(await rejection(world.run("give-up-conflict")))).to.equal(true);
      delete world.fail.setFinalizers;
      world.clearRecords();
      world.nowMs += 5; // the conflict is retried at once

      expect(await world.run("give-up-conflict")).to.deep.equal({});
      expect(world.finalizerWrites.map((write) => write.finalizers)).to.deep.equal([[]]);
    });
  });

  describe("conflicts (409) propagate, for the controller to requeue", () => {
    it("from setFinalizers, adding or removing ours", async () => {
      const adding = worldWith("conflict-add", { finalizers: [] });
      adding.fail.setFinalizers = conflict();
      const added = await rejection(adding.run("conflict-add"));
      expect(added).to.be.instanceOf(ApiException);
      expect(isConflict(added)).to.equal(true);
      expect(adding.log).to.deep.equal(["setFinalizers"]);

      const removing = new FakeWorld(
        sourceOf("conflict-remove", { deleting: true, status: { activityArn: arnOf("sum") } }),
      );
      removing.fail.setFinalizers = conflict();
      expect(isConflict(await rejection(removing.run("conflict-remove")))).to.equal(true);
      expect(removing.log).to.deep.equal(["deleteState", "setFinalizers"]);
    });

    it("from applyDeployment, with no status written and no event", async () => {
      const world = worldWith("conflict-apply");
      world.fail.applyDeployment = conflict();

      const error = await rejection(world.run("conflict-apply"));
      expect(isConflict(error)).to.equal(true);
      expect(world.log).to.include("applyDeployment");
      expect(world.log).to.not.include("writeStatus");
      expect(world.events).to.deep.equal([]);
    });
  });

  describe("events", () => {
    it("none for PollersStarting (the Deployment was just made and has not progressed)", async () => {
      const world = worldWith("starting");
      world.instantRollout = false;

      await world.run("starting");

      const status = onlyStatusWrite(world);
      expect(conditionOf(status, "PollersAvailable")).to.include({
        status: "False",
        reason: "PollersStarting",
      });
      expect(conditionOf(status, "Ready")).to.include({ status: "False", reason: "PollersStarting" });
      expect(world.eventReasons()).to.deep.equal(["DeploymentCreated"]);

      // The pods come up: Ready is the news, not the end of the start (no AllPollersReady event).
      world.rollOut("starting-poller");
      world.clearRecords();
      await world.run("starting");
      expect(world.eventReasons()).to.deep.equal(["Ready"]);
    });

    it("a Warning for NoPollersReady (the rollout ended with no pod ready)", async () => {
      const world = worldWith("none-ready");
      world.instantRollout = false;
      await world.run("none-ready");
      world.clearRecords();
      world.rollOut("none-ready-poller", { ready: 0, progress: "ProgressDeadlineExceeded" });

      await world.run("none-ready");

      expect(world.log).to.not.include("applyDeployment");
      expect(world.events).to.have.length(1);
      expect(world.events[0]).to.include({ type: "Warning", reason: "NoPollersReady" });
      expect(world.events[0]?.message).to.contain("kubectl describe deployment none-ready-poller");
      expect(conditionOf(onlyStatusWrite(world), "PollersAvailable")).to.include({
        status: "False",
        reason: "NoPollersReady",
      });
    });
  });
});
