/**
 * Prometheus metrics of the operator's machinery: the work queue (as client-go's workqueue metrics),
 * the reconcile loop (as controller-runtime's) and the informers. The registry is passed in, so the
 * operator's /metrics serves these beside its other series and tests use a registry of their own.
 *
 * Series (every one labelled by the queue, controller or informer name, so several can share a
 * registry):
 * - `sfn_operator_workqueue_depth{name}`: keys waiting to be handed to a worker.
 * - `sfn_operator_workqueue_adds_total{name}`: keys added (an add coalesced into a waiting key is not one).
 * - `sfn_operator_workqueue_retries_total{name}`: rate-limited re-adds (failed reconciles, conflicts).
 * - `sfn_operator_workqueue_queue_duration_seconds{name}`: time a key waited before a worker took it.
 * - `sfn_operator_workqueue_unfinished_work_seconds{name}`, `..._longest_running_processor_seconds{name}`:
 *   how long the keys being processed now have been running (sum, longest); read at scrape, so a
 *   stuck reconcile shows while it is stuck, not after.
 * - `sfn_operator_reconcile_total{controller,result}`: result is success, error, requeue (a conflict,
 *   retried at once) or requeue_after (reconcile asked to be called again later).
 * - `sfn_operator_reconcile_duration_seconds{controller,result}`.
 * - `sfn_operator_controller_active_workers{controller}`: workers running a reconcile now.
 * - `sfn_operator_informer_restarts_total{informer}`, `sfn_operator_informer_relists_total{informer}`,
 *   `sfn_operator_informer_synced{informer}` (1 once the first list is in the cache).
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** How a reconcile ended, as counted in `sfn_operator_reconcile_total{result}`. */
export type ReconcileResultLabel = "success" | "error" | "requeue" | "requeue_after";

/** What a work queue reports at scrape time about the keys it is processing now. */
export interface InFlightSampler {
  readonly name: string;
  /** Seconds each key being processed has run so far. */
  inFlightSeconds(): number[];
}

export class ControllerMetrics {
  readonly registry: Registry;
  readonly queueDepth: Gauge<"name">;
  readonly queueAdds: Counter<"name">;
  readonly queueRetries: Counter<"name">;
  readonly queueDuration: Histogram<"name">;
  readonly unfinishedWork: Gauge<"name">;
  readonly longestRunning: Gauge<"name">;
  readonly reconciles: Counter<"controller" | "result">;
  readonly reconcileDuration: Histogram<"controller" | "result">;
  readonly activeWorkers: Gauge<"controller">;
  readonly informerRestarts: Counter<"informer">;
  readonly informerRelists: Counter<"informer">;
  readonly informerSynced: Gauge<"informer">;
  readonly #samplers = new Set<InFlightSampler>();

  constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    this.queueDepth = new Gauge({
      name: "sfn_operator_workqueue_depth",
      help: "Keys waiting in the work queue for a worker.",
      labelNames: ["name"],
      registers,
    });
    this.queueAdds = new Counter({
      name: "sfn_operator_workqueue_adds_total",
      help: "Keys added to the work queue (adds coalesced into a key already waiting are not counted).",
      labelNames: ["name"],
      registers,
    });
    this.queueRetries = new Counter({
      name: "sfn_operator_workqueue_retries_total",
      help: "Rate-limited re-adds to the work queue (failed reconciles and conflicts).",
      labelNames: ["name"],
      registers,
    });
    this.queueDuration = new Histogram({
      name: "sfn_operator_workqueue_queue_duration_seconds",
      help: "Time a key waited in the work queue before a worker took it.",
      labelNames: ["name"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers,
    });
    const sample = (pick: (seconds: number[]) => number) => (gauge: Gauge<"name">) => {
      gauge.reset();
      for (const sampler of this.#samplers)
        gauge.set({ name: sampler.name }, pick(sampler.inFlightSeconds()));
    };
    const unfinished = sample((s) => s.reduce((a, b) => a + b, 0));
    const longest = sample((s) => s.reduce((a, b) => Math.max(a, b), 0));
    this.unfinishedWork = new Gauge({
      name: "sfn_operator_workqueue_unfinished_work_seconds",
      help: "Seconds the keys being processed now have run, summed; growing without end means a stuck worker.",
      labelNames: ["name"],
      registers,
      collect() {
        unfinished(this);
      },
    });
    this.longestRunning = new Gauge({
      name: "sfn_operator_workqueue_longest_running_processor_seconds",
      help: "Seconds the longest-running key being processed now has run.",
      labelNames: ["name"],
      registers,
      collect() {
        longest(this);
      },
    });
    this.reconciles = new Counter({
      name: "sfn_operator_reconcile_total",
      help: "Reconciles, by result: success, error, requeue (a conflict, retried at once), requeue_after.",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: "sfn_operator_reconcile_duration_seconds",
      help: "Duration of one reconcile, by result.",
      labelNames: ["controller", "result"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: "sfn_operator_controller_active_workers",
      help: "Workers running a reconcile now.",
      labelNames: ["controller"],
      registers,
    });
    this.informerRestarts = new Counter({
      name: "sfn_operator_informer_restarts_total",
      help: "Informer restarts after a list or watch error (client-node's informer stops on such errors).",
      labelNames: ["informer"],
      registers,
    });
    this.informerRelists = new Counter({
      name: "sfn_operator_informer_relists_total",
      help: "Periodic full relists of an informer (each re-delivers every object to its handler).",
      labelNames: ["informer"],
      registers,
    });
    this.informerSynced = new Gauge({
      name: "sfn_operator_informer_synced",
      help: "1 once the informer's first list is in its cache.",
      labelNames: ["informer"],
      registers,
    });
  }

  /** Registers a queue whose in-flight keys the unfinished/longest gauges read at each scrape. */
  addInFlightSampler(sampler: InFlightSampler): void {
    this.#samplers.add(sampler);
  }

  removeInFlightSampler(sampler: InFlightSampler): void {
    this.#samplers.delete(sampler);
  }
}
