/**
 * A resilient informer around client-node's `ListWatch`: a cache of one kind of object kept current
 * by list + watch, with handlers called for every change, that does not give up.
 *
 * What client-node's ListWatch does (read from 2.0.1's cache.js and watch.js): it lists, then watches
 * from the list's resourceVersion; it relists by itself on 410 Gone, reconnects by itself after a
 * clean close or its 30 s inactivity timeout, and on any other error (connection refused or reset,
 * 403, a failed list) it emits `error` and stops for good. It has no periodic resync, its list has no
 * timeout, and its cache is private (it can only be told to relist by a 410).
 *
 * What this adds:
 * - Restart after `error`, with exponential backoff and full jitter (capped; the failure count
 *   starts over once no error was seen for a while). A restart calls `start()` on the same ListWatch,
 *   which resumes watching from its last resourceVersion: no relist, so an API server that comes back
 *   is not hit by every informer's full list at once; if that resourceVersion is too old the API
 *   server answers 410 and ListWatch relists by itself, reporting what was deleted meanwhile.
 * - A full relist on a timer (minutes, jittered): a fresh ListWatch replaces the current one. The
 *   list is diffed against our own cache: objects gone are delivered to `onDelete`, and EVERY listed
 *   object, changed or not, to `onChange`. Re-delivering every object is what controller-runtime's
 *   resync does, and it is what makes a missed event harmless whatever was missed: a watch event
 *   lost in transit, but also a change the informer cannot see at all (a hand-edited Deployment whose
 *   event went to another informer that was down, Redis keys gone). Handlers only enqueue keys; the
 *   work queue coalesces them and reconcile is level-triggered and writes nothing when nothing
 *   changed, so the cost is one list and one cheap reconcile per object per interval.
 * - Every list has a deadline of our own (client-node sets none).
 * - Our own cache (`get`, `list`), which survives the replacement of the ListWatch, and
 *   `hasSynced()` / `waitForSync()`.
 *
 * Invariants: only the current ListWatch may change the cache or call handlers (a replaced one is
 * stopped, and any event or list result it still produces is ignored and stops it again); the cache
 * and the handlers see the same sequence of states; a handler that throws is logged and never
 * breaks the informer.
 */
import {
  ADD,
  DELETE,
  ERROR,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  UPDATE,
  Watch,
} from "@kubernetes/client-node";
import { describeError, getLogger, type Logger } from "../observability/logger.ts";
import { Backoff } from "../util/backoff.ts";
import type { ControllerMetrics } from "./controller-metrics.ts";
import { describeApiError, withDeadline } from "./kube-call.ts";

/** What the list function gets: the informer's selectors (so list and watch agree) and a deadline. */
export interface InformerListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Aborts when the list's deadline passes; pass it on with `signalOptions(signal)`. */
  signal: AbortSignal;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** For logs and metrics, e.g. "stepfunctionsources". */
  name: string;
  kubeConfig: KubeConfig;
  /**
   * The collection's URL path, namespaced (`/api/v1/namespaces/team-a/configmaps`) or for all
   * namespaces (`/apis/apps/v1/deployments`); the list function must list the same collection.
   */
  watchPath: string;
  /** Lists the collection with the given selectors, e.g. `api.listDeploymentForAllNamespaces(...)`. */
  list: (options: InformerListOptions) => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Called for an added or changed object, and for every object at each (re)list. */
  onChange?: (object: T) => void;
  /** Called for a deleted object (its last state seen). */
  onDelete?: (object: T) => void;
  /** Full relist every this many ms, ±10 % (default 5 minutes). */
  relistIntervalMs?: number;
  /** Deadline of one list call (default 60 s). */
  listTimeoutMs?: number;
  /** First restart delay scale after an error, ms (default 1 s). */
  restartBaseMs?: number;
  /** Largest restart delay, ms (default 30 s). */
  restartCapMs?: number;
  /** The backoff starts over after this long without an error (default 60 s). */
  restartResetAfterMs?: number;
  metrics?: ControllerMetrics;
  log?: Logger;
  /** Randomness of the jitter; injectable for tests. */
  random?: () => number;
}

/**
 * Drops `metadata.managedFields` from a cached object, in place (ListWatch's own cache holds the same
 * object): nothing here reads them, and they are the larger part of a Deployment's metadata (the
 * operator's memory at 500 sources: BENCHMARKS.md). controller-runtime's caches drop them too.
 */
function dropManagedFields(object: KubernetesObject): void {
  if (object.metadata?.managedFields !== undefined) delete object.metadata.managedFields;
}

export class ResilientInformer<T extends KubernetesObject> {
  readonly name: string;
  readonly #options: InformerOptions<T>;
  readonly #watch: Watch;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #relistIntervalMs: number;
  readonly #listTimeoutMs: number;
  readonly #resetAfterMs: number;
  readonly #random: () => number;
  /** Our cache: namespace ("" for cluster-scoped) -> name -> object. */
  #store = new Map<string, Map<string, T>>();
  #current: ListWatch<T> | undefined;
  #started = false;
  #stopped = false;
  #synced = false;
  #syncWaiters: Array<(synced: boolean) => void> = [];
  #restartTimer: NodeJS.Timeout | undefined;
  #relistTimer: NodeJS.Timeout | undefined;
  #lastErrorAt = Number.NEGATIVE_INFINITY;
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  #lastError: string | undefined;
  /** Errors of the current ListWatch so far; failures since the last successful (re)start. */
  #errors = 0;
  #failuresInRow = 0;
  #restarts = 0;
  #relists = 0;

  constructor(options: InformerOptions<T>) {
    this.name = options.name;
    this.#options = options;
    this.#watch = new Watch(options.kubeConfig);
    this.#log = options.log ?? getLogger("informer", { informer: options.name });
    // 0 until the first list is in the cache, so an informer that never syncs shows (and alerts) as 0
    // rather than as a missing series.
    options.metrics?.informerSynced.set({ informer: options.name }, 0);
    this.#random = options.random ?? Math.random;
    this.#relistIntervalMs = options.relistIntervalMs ?? 5 * 60_000;
    this.#listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.#resetAfterMs = options.restartResetAfterMs ?? 60_000;
    this.#backoff = new Backoff({
      baseMs: options.restartBaseMs ?? 1_000,
      capMs: options.restartCapMs ?? 30_000,
      random: this.#random,
    });
    if (!(this.#relistIntervalMs > 0))
      throw new Error(`relistIntervalMs must be > 0, got ${this.#relistIntervalMs}`);
  }

  /** Lists, then watches; returns at once (see {@link waitForSync}). */
  start(): void {
    if (this.#started) throw new Error(`informer ${this.name} was already started`);
    this.#started = true;
    this.#launch();
    this.#scheduleRelist();
  }

  /** Stops watching and every timer; the cache keeps its last content. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#relistTimer);
    const current = this.#current;
    this.#current = undefined;
    this.#resolveSyncWaiters(false);
    await current?.stop();
  }

  /** Whether the first list is in the cache. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves true once synced; false if the informer stops or `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    if (this.#stopped || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = (synced: boolean): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve(synced);
      };
      const onAbort = (): void => {
        this.#syncWaiters = this.#syncWaiters.filter((w) => w !== waiter);
        resolve(false);
      };
      this.#syncWaiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The cached object, if any (`namespace` undefined or "" for a cluster-scoped object). */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#store.get(namespace ?? "")?.get(name);
  }

  /** The cached objects of `namespace`, or of all namespaces. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.#store.get(namespace)?.values() ?? [])];
    return [...this.#store.values()].flatMap((objects) => [...objects.values()]);
  }

  /** Restarts after errors so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The last list/watch error, described (undefined before any): why an informer does not sync. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Periodic relists so far. */
  get relists(): number {
    return this.#relists;
  }

  /** Replaces the current ListWatch (if any) with a fresh one, which lists first. */
  #launch(): void {
    const previous = this.#current;
    const { watchPath, labelSelector, fieldSelector } = this.#options;
    const listWatch: ListWatch<T> = new ListWatch<T>(
      watchPath,
      this.#watch,
      () => this.#list(listWatch),
      false,
      labelSelector,
      fieldSelector,
    );
    this.#current = listWatch;
    listWatch.on(ADD, (object) => this.#upsert(listWatch, object));
    listWatch.on(UPDATE, (object) => this.#upsert(listWatch, object));
    listWatch.on(DELETE, (object) => this.#remove(listWatch, object));
    listWatch.on(ERROR, (error: unknown) => this.#failed(listWatch, error));
    // Its own stop makes it emit an AbortError, which #failed ignores as it is no longer current.
    if (previous) void previous.stop();
    this.#run(listWatch);
  }

  /** (Re)starts a ListWatch: lists if it has no resourceVersion yet, else resumes the watch. */
  #run(listWatch: ListWatch<T>): void {
    const errorsBefore = this.#errors;
    listWatch.start().then(
      () => {
        // Replaced while its watch was connecting: that watch was not aborted by stop(); abort it now.
        if (!this.#isCurrent(listWatch)) {
          void listWatch.stop();
          return;
        }
        // start() resolves once the watch request was answered; no error meanwhile: it is back.
        if (this.#errors === errorsBefore && this.#failuresInRow > 0) {
          this.#log.info("list/watch recovered", { failures: this.#failuresInRow });
          this.#failuresInRow = 0;
        }
      },
      (error: unknown) => this.#failed(listWatch, error),
    );
  }

  #isCurrent(listWatch: ListWatch<T>): boolean {
    return listWatch === this.#current && !this.#stopped;
  }

  /** The list function ListWatch calls; also diffs the result into our cache and re-delivers. */
  async #list(listWatch: ListWatch<T>): Promise<KubernetesListObject<T>> {
    const { labelSelector, fieldSelector } = this.#options;
    const list = await withDeadline(`listing ${this.name}`, this.#listTimeoutMs, (signal) =>
      this.#options.list({
        ...(labelSelector !== undefined ? { labelSelector } : {}),
        ...(fieldSelector !== undefined ? { fieldSelector } : {}),
        signal,
      }),
    );
    // A replaced ListWatch must neither touch the cache nor go on to watch: rejecting makes it emit
    // `error` (ignored) and stop.
    if (!this.#isCurrent(listWatch)) throw new Error(`informer ${this.name}: list of a replaced watch`);
    this.#replaceAll(list);
    return list;
  }

  #replaceAll(list: KubernetesListObject<T>): void {
    const items = list.items ?? [];
    // Items of a typed list carry no kind; give them the list's, as watch events have it.
    const kind = list.kind?.endsWith("List") ? list.kind.slice(0, -4) : undefined;
    const fresh = new Map<string, Map<string, T>>();
    for (const item of items) {
      dropManagedFields(item);
      if (kind && item.kind === undefined) item.kind = kind;
      if (list.apiVersion && item.apiVersion === undefined) item.apiVersion = list.apiVersion;
      const namespace = item.metadata?.namespace ?? "";
      let objects = fresh.get(namespace);
      if (!objects) {
        objects = new Map();
        fresh.set(namespace, objects);
      }
      objects.set(item.metadata?.name ?? "", item);
    }
    const gone: T[] = [];
    for (const [namespace, objects] of this.#store) {
      for (const [name, object] of objects) if (!fresh.get(namespace)?.has(name)) gone.push(object);
    }
    this.#store = fresh;
    for (const object of gone) this.#deliver("onDelete", object);
    for (const item of items) this.#deliver("onChange", item);
    if (!this.#synced) {
      this.#synced = true;
      this.#options.metrics?.informerSynced.set({ informer: this.name }, 1);
      this.#log.info("informer synced", { objects: items.length });
      this.#resolveSyncWaiters(true);
    }
  }

  #upsert(listWatch: ListWatch<T>, object: T): void {
    if (!this.#isCurrent(listWatch)) {
      void listWatch.stop();
      return;
    }
    dropManagedFields(object);
    const namespace = object.metadata?.namespace ?? "";
    const name = object.metadata?.name ?? "";
    let objects = this.#store.get(namespace);
    const existing = objects?.get(name);
    const version = object.metadata?.resourceVersion;
    // ListWatch re-announces what our list already delivered: same version, nothing new.
    if (existing && version !== undefined && existing.metadata?.resourceVersion === version) return;
    if (!objects) {
      objects = new Map();
      this.#store.set(namespace, objects);
    }
    objects.set(name, object);
    this.#deliver("onChange", object);
  }

  #remove(listWatch: ListWatch<T>, object: T): void {
    if (!this.#isCurrent(listWatch)) {
      void listWatch.stop();
      return;
    }
    const namespace = object.metadata?.namespace ?? "";
    const objects = this.#store.get(namespace);
    if (!objects?.delete(object.metadata?.name ?? "")) return;
    if (objects.size === 0) this.#store.delete(namespace);
    this.#deliver("onDelete", object);
  }

  #deliver(handler: "onChange" | "onDelete", object: T): void {
    try {
      this.#options[handler]?.(object);
    } catch (error) {
      this.#log.error("informer handler failed", {
        handler,
        namespace: object.metadata?.namespace,
        name: object.metadata?.name,
        error: describeError(error),
      });
    }
  }

  /** ListWatch stopped for good on `error`: start it again after a backoff. */
  #failed(listWatch: ListWatch<T>, error: unknown): void {
    if (!this.#isCurrent(listWatch) || this.#restartTimer !== undefined) return;
    const now = performance.now();
    if (now - this.#lastErrorAt > this.#resetAfterMs) this.#backoff.reset();
    this.#lastErrorAt = now;
    this.#lastError = describeApiError(error);
    this.#errors += 1;
    this.#failuresInRow += 1;
    const delayMs = this.#backoff.next();
    this.#restarts += 1;
    this.#options.metrics?.informerRestarts.inc({ informer: this.name });
    // An outage fails every attempt: warn on the first failure and then every 30 s, not each time.
    const warn = this.#failuresInRow === 1 || now - this.#lastWarnAt >= 30_000;
    if (warn) this.#lastWarnAt = now;
    this.#log.log(warn ? "warn" : "debug", "list/watch failed: restarting", {
      error: this.#lastError,
      restartInMs: delayMs,
      failuresInRow: this.#failuresInRow,
    });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#isCurrent(listWatch)) this.#run(listWatch);
    }, delayMs);
  }

  #scheduleRelist(): void {
    const delayMs = this.#relistIntervalMs * (0.9 + 0.2 * this.#random());
    this.#relistTimer = setTimeout(() => {
      if (this.#stopped) return;
      this.#relists += 1;
      this.#options.metrics?.informerRelists.inc({ informer: this.name });
      this.#log.debug("periodic relist");
      // The fresh ListWatch lists at once: a restart pending after an error is not needed any more.
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
      this.#launch();
      this.#scheduleRelist();
    }, delayMs);
  }

  #resolveSyncWaiters(synced: boolean): void {
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const waiter of waiters) waiter(synced);
  }
}
