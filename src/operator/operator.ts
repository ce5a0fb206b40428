/**
 * The operator's controller, assembled: informers on StepFunctionSources, the Deployments it owns
 * and Services (per watched namespace, or across all), a work queue keyed `namespace/name` fed by
 * all three, the reconcile workers, and the timer that reads task figures from Redis into the
 * status. The leader runs it; a standby does not (run-operator.ts).
 */
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Deployment,
  type V1Service,
} from "@kubernetes/client-node";
import { Counter, type Registry } from "prom-client";
import { SFS_GROUP, SFS_PLURAL, SFS_VERSION, type StepFunctionSource } from "../api/step-function-source.ts";
import { describeError, getLogger } from "../observability/logger.ts";
import { ActivityResolver } from "./activities.ts";
import { runWorkers, type Workers } from "./controller.ts";
import { ControllerMetrics } from "./controller-metrics.ts";
import { EventRecorder } from "./events.ts";
import { type InformerListOptions, ResilientInformer } from "./informer.ts";
import { KubeWriter } from "./kube.ts";
import { signalOptions } from "./kube-call.ts";
import { MANAGED_SELECTOR } from "./poller-deployment.ts";
import { reconcileSource, redisTargetOf } from "./reconcile.ts";
import type { OperatorSettings } from "./settings.ts";
import { SourceRedis } from "./source-redis.ts";
import { objectKey, splitKey, WorkQueue } from "./work-queue.ts";

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  settings: OperatorSettings;
  registry: Registry;
  env: NodeJS.ProcessEnv;
}

/** One kind's informers (one per watched namespace, or one for all) seen as one cache. */
class InformerSet<T extends KubernetesObject> {
  readonly #informers: Map<string, ResilientInformer<T>>;

  constructor(informers: Map<string, ResilientInformer<T>>) {
    this.#informers = informers;
  }

  get(namespace: string, name: string): T | undefined {
    const informer = this.#informers.get(namespace) ?? this.#informers.get("");
    return informer?.get(namespace, name);
  }

  list(): T[] {
    return [...this.#informers.values()].flatMap((informer) => [...informer.list()]);
  }

  start(): void {
    for (const informer of this.#informers.values()) informer.start();
  }

  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    const synced = await Promise.all(
      [...this.#informers.values()].map((informer) => informer.waitForSync(signal)),
    );
    return synced.every(Boolean);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#informers.values()].map((informer) => informer.stop()));
  }

  /** The informers not synced yet, each with its last error: what a failed start reports. */
  unsynced(): string[] {
    return [...this.#informers.values()]
      .filter((informer) => !informer.hasSynced())
      .map((informer) => `${informer.name} (${informer.lastError ?? "no answer yet"})`);
  }
}

/**
 * The caches must fill within this many API timeouts (2 minutes by default, controller-runtime's
 * CacheSyncTimeout), else start() fails and the process exits 1. Each list has the API timeout as
 * its deadline and is retried with backoff, so this leaves room for a few attempts and for a
 * permission that is still propagating; a permission that is missing for good (a rule left out of
 * the RBAC), or an API server that cannot be reached, must not leave a leader on the Lease doing
 * nothing, with only a warning every 30 s to show for it.
 */
export const CACHE_SYNC_API_TIMEOUTS = 4;

export class Operator {
  readonly writes: KubeWriter["writes"];
  readonly #settings: OperatorSettings;
  readonly #queue: WorkQueue;
  readonly #metrics: ControllerMetrics;
  readonly #sources: InformerSet<StepFunctionSource>;
  readonly #deployments: InformerSet<V1Deployment>;
  readonly #services: InformerSet<V1Service>;
  readonly #kube: KubeWriter;
  readonly #events: EventRecorder;
  readonly #activities: ActivityResolver;
  readonly #redis: SourceRedis;
  readonly #log = getLogger("operator");
  #workers: Workers | undefined;
  #collectTimer: NodeJS.Timeout | undefined;
  #collecting: Promise<void> | undefined;
  #stopped = false;
  /** What each live source claims (activity, region, Redis), to see when a claim ends or changes. */
  readonly #claims = new Map<string, { activityName: string; identity: string }>();

  constructor(options: OperatorOptions) {
    const { kubeConfig, settings } = options;
    this.#settings = settings;
    this.#metrics = new ControllerMetrics(options.registry);
    this.#queue = new WorkQueue({ name: "stepfunctionsource", metrics: this.#metrics });
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);
    const apps = kubeConfig.makeApiClient(AppsV1Api);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const writes = new Counter({
      name: "sfn_operator_api_writes_total",
      help: "Writes the operator sent to the Kubernetes API, by kind (finalizers, deployments, status); events not included.",
      labelNames: ["kind"],
      registers: [options.registry],
    });
    this.#kube = new KubeWriter(custom, apps, settings.apiTimeoutMs, (kind) => writes.inc({ kind }));
    this.writes = this.#kube.writes;
    this.#events = new EventRecorder(core, settings.apiTimeoutMs, settings.leaderElection.identity);
    this.#activities = new ActivityResolver(settings.leaderElection.identity);
    this.#redis = new SourceRedis({
      env: options.env,
      defaultUrl: settings.redisUrl,
      core,
      apiTimeoutMs: settings.apiTimeoutMs,
      identity: settings.leaderElection.identity,
    });

    const namespaces = settings.watchNamespaces.length > 0 ? settings.watchNamespaces : [""];
    const common = {
      kubeConfig,
      relistIntervalMs: settings.resyncPeriodMs,
      listTimeoutMs: settings.apiTimeoutMs,
      metrics: this.#metrics,
    };
    const informers = <T extends KubernetesObject>(
      kind: string,
      path: (namespace: string) => string,
      list: (namespace: string, options: InformerListOptions) => Promise<KubernetesListObject<T>>,
      handlers: { onChange: (object: T) => void; onDelete: (object: T) => void },
      labelSelector?: string,
    ): InformerSet<T> =>
      new InformerSet(
        new Map(
          namespaces.map((namespace) => [
            namespace,
            new ResilientInformer<T>({
              ...common,
              name: namespace === "" ? kind : `${kind}/${namespace}`,
              watchPath: path(namespace),
              list: (listOptions) => list(namespace, listOptions),
              ...(labelSelector !== undefined && { labelSelector }),
              ...handlers,
            }),
          ]),
        ),
      );
    const inNamespace = (namespace: string): string => (namespace === "" ? "" : `/namespaces/${namespace}`);

    this.#sources = informers<StepFunctionSource>(
      "stepfunctionsources",
      (namespace) => `/apis/${SFS_GROUP}/${SFS_VERSION}${inNamespace(namespace)}/${SFS_PLURAL}`,
      async (namespace, { signal }) => {
        const common = { group: SFS_GROUP, version: SFS_VERSION, plural: SFS_PLURAL };
        const list =
          namespace === ""
            ? await custom.listClusterCustomObject(common, signalOptions(signal))
            : await custom.listNamespacedCustomObject({ ...common, namespace }, signalOptions(signal));
        return list as KubernetesListObject<StepFunctionSource>;
      },
      {
        onChange: (source) => {
          this.#enqueue(objectKey(source));
          this.#activityClaimChanged(source, false);
        },
        onDelete: (source) => {
          this.#enqueue(objectKey(source));
          this.#activityClaimChanged(source, true);
        },
      },
    );
    const ownerKey = (deployment: V1Deployment): void => {
      const owner = deployment.metadata?.ownerReferences?.find(
        (reference) => reference.controller && reference.apiVersion.startsWith(`${SFS_GROUP}/`),
      );
      if (owner !== undefined) this.#enqueue(`${deployment.metadata?.namespace}/${owner.name}`);
    };
    this.#deployments = informers<V1Deployment>(
      "deployments",
      (namespace) => `/apis/apps/v1${inNamespace(namespace)}/deployments`,
      (namespace, { labelSelector, signal }) =>
        namespace === ""
          ? apps.listDeploymentForAllNamespaces(
              { ...(labelSelector && { labelSelector }) },
              signalOptions(signal),
            )
          : apps.listNamespacedDeployment(
              { namespace, ...(labelSelector && { labelSelector }) },
              signalOptions(signal),
            ),
      { onChange: ownerKey, onDelete: ownerKey },
      MANAGED_SELECTOR,
    );
    // A Service that appears, changes or goes queues the sources that send to it.
    const serviceUsers = (service: V1Service): void => {
      for (const source of this.#sources.list()) {
        if (
          source.metadata?.namespace === service.metadata?.namespace &&
          source.spec?.target?.service === service.metadata?.name
        ) {
          this.#enqueue(objectKey(source));
        }
      }
    };
    this.#services = informers<V1Service>(
      "services",
      (namespace) => `/api/v1${inNamespace(namespace)}/services`,
      (namespace, { signal }) =>
        namespace === ""
          ? core.listServiceForAllNamespaces({}, signalOptions(signal))
          : core.listNamespacedService({ namespace }, signalOptions(signal)),
      { onChange: serviceUsers, onDelete: serviceUsers },
    );
  }

  /**
   * Starts the informers, waits for their caches, then the workers and the figures timer. Rejects
   * when the caches do not fill within CACHE_SYNC_API_TIMEOUTS API timeouts (naming the informers
   * and why); resolves without starting when `signal` aborts or stop() is called first.
   */
  async start(signal?: AbortSignal): Promise<void> {
    this.#sources.start();
    this.#deployments.start();
    this.#services.start();
    const syncTimeoutMs = CACHE_SYNC_API_TIMEOUTS * this.#settings.apiTimeoutMs;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), syncTimeoutMs);
    const waiting = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
    let synced: boolean[];
    try {
      synced = await Promise.all([
        this.#sources.waitForSync(waiting),
        this.#deployments.waitForSync(waiting),
        this.#services.waitForSync(waiting),
      ]);
    } finally {
      clearTimeout(timer);
    }
    if (this.#stopped || signal?.aborted) return;
    if (!synced.every(Boolean)) {
      const unsynced = [
        ...this.#sources.unsynced(),
        ...this.#deployments.unsynced(),
        ...this.#services.unsynced(),
      ];
      throw new Error(
        `the caches did not fill within ${syncTimeoutMs / 1000} s (${CACHE_SYNC_API_TIMEOUTS} x SFN_API_TIMEOUT): ${unsynced.join("; ")}; check the operator's RBAC (README, RBAC) and that the API server answers`,
      );
    }
    this.#log.info("caches synced; reconciling", {
      sources: this.#sources.list().length,
      namespaces: this.#settings.watchNamespaces.length > 0 ? this.#settings.watchNamespaces : "all",
    });
    // Everything once at the start (the informers' adds came before the workers, and are queued).
    for (const source of this.#sources.list()) this.#enqueue(objectKey(source));
    this.#workers = runWorkers({
      queue: this.#queue,
      workers: this.#settings.workers,
      metrics: this.#metrics,
      reconcile: (key) => {
        const { namespace, name } = splitKey(key);
        return reconcileSource(this.#deps, namespace ?? "", name);
      },
    });
    this.#scheduleCollect();
  }

  /** Stops taking keys, finishes the reconciles in flight (or aborts them), stops watching. */
  async stop(options: { abortInFlight?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    if (options.abortInFlight) this.#kube.fence();
    clearTimeout(this.#collectTimer);
    if (this.#workers) await this.#workers.stop(options);
    else this.#queue.shutDown();
    await this.#collecting;
    await Promise.all([this.#sources.stop(), this.#deployments.stop(), this.#services.stop()]);
    await this.#redis.close();
    this.#activities.close();
  }

  #enqueue(key: string): void {
    if (!this.#stopped) this.#queue.add(key);
  }

  /**
   * One activity has one source per Redis (reconcile's ActivityInUse): a younger source of it waits,
   * and nothing else queues it when the older one lets go of the activity (is deleted, or moves to
   * another activity, region or Redis). So when a source's claim ends or changes, the other sources
   * of the activity names involved are queued. Status changes and relists leave the claim as it was
   * and queue nothing more.
   */
  #activityClaimChanged(source: StepFunctionSource, deleted: boolean): void {
    const key = objectKey(source);
    const before = this.#claims.get(key);
    const gone = deleted || source.metadata?.deletionTimestamp !== undefined;
    const claim = gone
      ? undefined
      : {
          activityName: source.spec?.activityName ?? "",
          identity: `${source.spec?.activityName}\n${source.spec?.region ?? ""}\n${redisTargetOf(source, this.#settings).url}`,
        };
    if (claim === undefined) this.#claims.delete(key);
    else this.#claims.set(key, claim);
    // A source seen for the first time frees no activity (at the start, every source is queued).
    if (before === undefined || before.identity === claim?.identity) return;
    const names = new Set([before.activityName, claim?.activityName]);
    for (const other of this.#sources.list()) {
      const otherKey = objectKey(other);
      if (otherKey !== key && names.has(other.spec?.activityName)) this.#enqueue(otherKey);
    }
  }

  get #deps(): Parameters<typeof reconcileSource>[0] {
    return {
      settings: this.#settings,
      now: () => new Date(),
      sources: this.#sources,
      services: this.#services,
      deployments: this.#deployments,
      kube: this.#kube,
      events: this.#events,
      resolveActivity: (name, region) => this.#activities.resolve(name, region),
      redis: this.#redis,
    };
  }

  #scheduleCollect(): void {
    if (this.#stopped) return;
    this.#collectTimer = setTimeout(() => {
      this.#collecting = this.#collect().finally(() => {
        this.#collecting = undefined;
        this.#scheduleCollect();
      });
    }, this.#settings.statusIntervalMs);
  }

  /** Task figures for every resolved source; a source whose figures changed is reconciled (status). */
  async #collect(): Promise<void> {
    try {
      const sources = this.#sources
        .list()
        .filter((source) => source.status?.activityArn !== undefined && !source.metadata?.deletionTimestamp)
        .map((source) => ({
          key: objectKey(source),
          target: redisTargetOf(source, this.#settings),
          activityArn: source.status?.activityArn ?? "",
          limit: source.spec?.maxConcurrency ?? 1,
        }));
      for (const key of await this.#redis.collect(sources)) this.#enqueue(key);
    } catch (error) {
      this.#log.warn("could not collect task figures", { error: describeError(error) });
    }
  }
}
