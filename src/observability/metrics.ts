/**
 * Prometheus metrics of the poller (and of local mode, which runs the same pollers). One registry per
 * process; every series carries the `source` label so one process serving several sources (local
 * mode) stays readable.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** How a task ended, as counted in `sfn_operator_tasks_total{outcome}`. */
export type TaskOutcomeLabel =
  | "succeeded" // SendTaskSuccess accepted
  | "failed" // SendTaskFailure accepted
  | "gone" // AWS no longer knew the task (timed out, deleted): nothing to report
  | "unreported"; // the report could not reach AWS within its retry window

export class PollerMetrics {
  readonly registry: Registry;
  readonly tasks: Counter<"source" | "outcome">;
  readonly taskDuration: Histogram<"source" | "outcome">;
  readonly tasksInFlight: Gauge<"source">;
  readonly permitWait: Histogram<"source">;
  readonly emptyPolls: Counter<"source">;
  readonly polls: Counter<"source">;
  readonly heartbeats: Counter<"source">;
  readonly awsErrors: Counter<"api" | "code">;
  readonly permitsHeld: Gauge<"source">;
  readonly permitWaiters: Gauge<"source">;
  readonly concurrencyLimit: Gauge<"source">;
  readonly leasesLost: Counter<"source">;
  readonly redisErrors: Counter<"operation">;
  #sampleSemaphores: (() => void) | undefined;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: "sfn_operator_" });

    this.tasks = new Counter({
      name: "sfn_operator_tasks_total",
      help: "Activity tasks taken, by how they ended (succeeded, failed, gone, unreported).",
      labelNames: ["source", "outcome"],
      registers,
    });
    this.taskDuration = new Histogram({
      name: "sfn_operator_task_duration_seconds",
      help: "Time from receiving a task to its outcome being reported.",
      labelNames: ["source", "outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.tasksInFlight = new Gauge({
      name: "sfn_operator_tasks_in_flight",
      help: "Tasks received and not yet reported.",
      labelNames: ["source"],
      registers,
    });
    this.permitWait = new Histogram({
      name: "sfn_operator_permit_wait_seconds",
      help: "Time a poll loop waited for a concurrency permit.",
      labelNames: ["source"],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300],
      registers,
    });
    this.polls = new Counter({
      name: "sfn_operator_polls_total",
      help: "GetActivityTask calls that returned (with or without a task).",
      labelNames: ["source"],
      registers,
    });
    this.emptyPolls = new Counter({
      name: "sfn_operator_empty_polls_total",
      help: "GetActivityTask calls that returned no task.",
      labelNames: ["source"],
      registers,
    });
    this.heartbeats = new Counter({
      name: "sfn_operator_heartbeats_total",
      help: "SendTaskHeartbeat calls accepted.",
      labelNames: ["source"],
      registers,
    });
    this.awsErrors = new Counter({
      name: "sfn_operator_aws_errors_total",
      help: "Errors answered by Step Functions (each attempt, including the SDK's retries), by API and error code.",
      labelNames: ["api", "code"],
      registers,
    });
    this.permitsHeld = new Gauge({
      name: "sfn_operator_permits_held",
      help: "Concurrency permits held by this process.",
      labelNames: ["source"],
      registers,
      collect: () => this.#sampleSemaphores?.(),
    });
    this.permitWaiters = new Gauge({
      name: "sfn_operator_permit_waiters",
      help: "Poll loops of this process waiting for a concurrency permit.",
      labelNames: ["source"],
      registers,
    });
    this.concurrencyLimit = new Gauge({
      name: "sfn_operator_concurrency_limit",
      help: "The concurrency limit in force for the source (maxConcurrency; for `poller` without Redis, its own bound); 0 while none is known (SFN_LIMIT_FROM_REDIS before the limit is in Redis): no task is taken then.",
      labelNames: ["source"],
      registers,
      collect: () => this.#sampleSemaphores?.(),
    });
    this.leasesLost = new Counter({
      name: "sfn_operator_semaphore_leases_lost_total",
      help: "Permit leases found gone at refresh with no room to take them again (the process then takes no new tasks until their tasks finish).",
      labelNames: ["source"],
      registers,
    });
    this.redisErrors = new Counter({
      name: "sfn_operator_redis_errors_total",
      help: "Failed Redis operations (acquire, refresh, release, connection errors).",
      labelNames: ["operation"],
      registers,
    });
  }

  /** Sets the function that fills the permit gauges; called at each scrape. */
  onScrapeSampleSemaphores(sample: () => void): void {
    this.#sampleSemaphores = sample;
  }
}

/**
 * `sfn_operator_leader{identity}`: 1 while this operator process leads (holds the operator's Lease),
 * else 0. Registered by whoever owns the operator's registry; the leader elector sets it.
 */
export function createLeaderGauge(registry: Registry): Gauge<"identity"> {
  return new Gauge({
    name: "sfn_operator_leader",
    help: "1 while this operator process is the leader (holds the operator's Lease), else 0.",
    labelNames: ["identity"],
    registers: [registry],
  });
}
