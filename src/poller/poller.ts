/**
 * The poll loops of one source in one process. Each loop:
 *
 *   acquire a permit -> GetActivityTask (long poll) -> run the task -> release the permit
 *
 * The permit is taken BEFORE the poll, so polls plus running tasks never exceed the source's limit,
 * even while more loops exist than permits (several pods, a rollout, a lowered limit).
 *
 * Stopping (SIGTERM) never aborts an outstanding poll: AWS may hand a task to a poll whose client
 * already gave up, and that task would be lost until its timeout. Loops waiting for a permit stop at
 * once; loops in a poll finish it, run the task it brings, report it, then stop.
 */
import type { PollerSettings } from "../api/types.ts";
import type { StepFunctions } from "../aws/step-functions.ts";
import { describeError, getLogger, type Logger } from "../observability/logger.ts";
import type { PollerMetrics, TaskOutcomeLabel } from "../observability/metrics.ts";
import type { Semaphore } from "../semaphore/semaphore.ts";
import type { HttpTarget } from "../target/http-target.ts";
import { Backoff, sleep } from "../util/backoff.ts";
import { runTask } from "./task-runner.ts";

/** A poll that comes back empty faster than this is an emulator or a fault, not a long poll. */
const FAST_EMPTY_POLL_MS = 1000;

export interface PollerDependencies {
  stepFunctions: StepFunctions;
  /**
   * Creates the source's semaphore once the activity ARN is known (the distributed semaphore is
   * keyed by it), from the settings in force then (maxConcurrency may have changed since start).
   * The poller closes it when it stops.
   */
  semaphoreFor: (activityArn: string, settings: PollerSettings) => Semaphore;
  target: HttpTarget;
  metrics: PollerMetrics;
}

export type PollerState = "starting" | "running" | "stopping" | "stopped";

/**
 * How long AWS holds a GetActivityTask open at most: the bound on how long stopping waits for an
 * outstanding poll (an emulator may answer sooner).
 */
export const LONG_POLL_MS = 60_000;

/** What a poller is doing right now and what it has done: for shutdown messages and summaries. */
export interface PollerActivity {
  /** GetActivityTask calls under way. */
  polls: number;
  /** When the most recent of them started (performance.now()), if any: it ends last. */
  lastPollStartedAt?: number;
  /** Tasks received and not yet reported. */
  tasks: number;
  /** When the most recent of them started (performance.now()), if any. */
  lastTaskStartedAt?: number;
  /** Tasks ended since start, by outcome. */
  outcomes: Record<TaskOutcomeLabel, number>;
}

export class Poller {
  #settings: PollerSettings;
  #loopCount = 0;
  readonly #deps: PollerDependencies;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  #state: PollerState = "starting";
  #activityArn: string | undefined;
  #semaphore: Semaphore | undefined;
  #problem: string | undefined;
  #done: Promise<void> | undefined;
  /** Start times (performance.now()) of the polls and of the tasks under way, by loop index. */
  readonly #polling = new Map<number, number>();
  readonly #running = new Map<number, number>();
  readonly #outcomes: Record<TaskOutcomeLabel, number> = { succeeded: 0, failed: 0, gone: 0, unreported: 0 };
  readonly #taskEndListeners = new Set<(outcome: TaskOutcomeLabel) => void>();

  constructor(settings: PollerSettings, deps: PollerDependencies) {
    this.#settings = settings;
    this.#deps = deps;
    this.#log = getLogger("poller", { source: settings.sourceName });
  }

  /** Resolves the activity ARN (retrying until it works or the poller is stopped), then starts `loops` loops. */
  start(loops: number): Promise<void> {
    this.#done ??= this.#run(loops);
    return this.#done;
  }

  /** Stops taking new tasks; `start()`'s promise resolves when every taken task is reported. */
  stop(): void {
    if (this.#state === "stopped" || this.#stop.signal.aborted) return;
    this.#state = "stopping";
    this.#stop.abort();
  }

  /** The settings in force (maxConcurrency may have changed since start). */
  get settings(): PollerSettings {
    return this.#settings;
  }

  get state(): PollerState {
    return this.#state;
  }

  get activityArn(): string | undefined {
    return this.#activityArn;
  }

  /**
   * Applies a new maxConcurrency without a restart: the semaphore takes it at the next acquisition
   * (holders above a lowered limit finish their tasks). Loops are not added: a raised limit is served
   * up to the loops this poller runs.
   */
  setMaxConcurrency(limit: number): void {
    this.#settings = { ...this.#settings, maxConcurrency: limit };
    this.#semaphore?.setLimit(limit);
    this.#log.info("maxConcurrency changed", { maxConcurrency: limit, loops: this.#loopCount });
    if (limit > this.#loopCount) {
      this.#log.warn("maxConcurrency is above this process's loops; restart to use all of it", {
        loops: this.#loopCount,
      });
    }
  }

  /** The source's semaphore, once the activity ARN is resolved. */
  get semaphore(): Semaphore | undefined {
    return this.#semaphore;
  }

  /** What the loops are doing now, and the tasks ended so far. */
  activity(): PollerActivity {
    return {
      polls: this.#polling.size,
      ...(this.#polling.size > 0 ? { lastPollStartedAt: Math.max(...this.#polling.values()) } : {}),
      tasks: this.#running.size,
      ...(this.#running.size > 0 ? { lastTaskStartedAt: Math.max(...this.#running.values()) } : {}),
      outcomes: { ...this.#outcomes },
    };
  }

  /**
   * Calls `listener` with the outcome of each task that ends from now on, as it is counted in
   * `activity().outcomes` (while the task still counts as running there); returns the remover.
   */
  onTaskEnd(listener: (outcome: TaskOutcomeLabel) => void): () => void {
    this.#taskEndListeners.add(listener);
    return () => this.#taskEndListeners.delete(listener);
  }

  /** Why the poller cannot work right now (e.g. the activity ARN cannot be resolved), if anything. */
  get problem(): string | undefined {
    return this.#problem;
  }

  async #run(loops: number): Promise<void> {
    this.#loopCount = loops;
    const arn = await this.#resolveArn();
    if (arn !== undefined) {
      this.#activityArn = arn;
      const semaphore = this.#deps.semaphoreFor(arn, this.#settings);
      this.#semaphore = semaphore;
      if (this.#state === "starting") this.#state = "running";
      this.#log.info("polling", {
        activityArn: arn,
        loops,
        maxConcurrency: this.settings.maxConcurrency,
        target: this.#deps.target.url,
      });
      await Promise.all(Array.from({ length: loops }, (_, index) => this.#loop(arn, semaphore, index)));
      await semaphore.close();
    }
    this.#state = "stopped";
    this.#log.info("stopped");
  }

  async #resolveArn(): Promise<string | undefined> {
    if (this.settings.activityArn) return this.settings.activityArn;
    const backoff = new Backoff({ baseMs: 1000, capMs: 60_000 });
    while (!this.#stop.signal.aborted) {
      try {
        const arn = await this.#deps.stepFunctions.resolveActivityArn(this.settings.activityName);
        this.#problem = undefined;
        return arn;
      } catch (error) {
        // Stopped meanwhile (a signal, or local mode giving up on an error retrying cannot heal).
        if (this.#stop.signal.aborted) break;
        const delay = backoff.next();
        this.#problem = `cannot resolve activity "${this.settings.activityName}": ${describeError(error)}`;
        this.#log.error("CreateActivity failed; retrying", { error: describeError(error), retryInMs: delay });
        await sleep(delay, this.#stop.signal);
      }
    }
    return undefined;
  }

  /** Tells the listeners; one that throws is a bug of its own and must not end the loop. */
  #taskEnded(outcome: TaskOutcomeLabel, log: Logger): void {
    for (const listener of this.#taskEndListeners) {
      try {
        listener(outcome);
      } catch (error) {
        log.error("a task-end listener failed (a bug; please report it)", { error: describeError(error) });
      }
    }
  }

  async #loop(activityArn: string, semaphore: Semaphore, index: number): Promise<void> {
    const { stepFunctions, metrics } = this.#deps;
    const source = this.settings.sourceName;
    const log = this.#log.child({ loop: index });
    const errorBackoff = new Backoff({ baseMs: 500, capMs: 30_000 });
    const emptyBackoff = new Backoff({ baseMs: 100, capMs: 5_000 });
    const ctx = {
      settings: this.settings,
      activityArn,
      stepFunctions,
      target: this.#deps.target,
      metrics,
      log,
    };

    while (!this.#stop.signal.aborted) {
      const waitStarted = performance.now();
      let permit: Awaited<ReturnType<Semaphore["acquire"]>>;
      try {
        permit = await semaphore.acquire(this.#stop.signal);
      } catch (error) {
        if (this.#stop.signal.aborted) break;
        const delay = errorBackoff.next();
        log.warn("could not acquire a permit; retrying", { error: describeError(error), retryInMs: delay });
        await sleep(delay, this.#stop.signal);
        continue;
      }
      metrics.permitWait.observe({ source }, (performance.now() - waitStarted) / 1000);

      // Sleep (if any) happens after the permit is released, so a failing loop never sits on one.
      let pause = 0;
      try {
        if (this.#stop.signal.aborted) break;
        // Fail closed: a permit granted just before the semaphore lost Redis is not used for a poll.
        const health = semaphore.health();
        if (!health.ready) {
          pause = errorBackoff.next();
          log.debug("semaphore not ready; not polling", { reason: health.reason });
          continue;
        }
        const pollStarted = performance.now();
        this.#polling.set(index, pollStarted);
        let task: Awaited<ReturnType<StepFunctions["getActivityTask"]>>;
        try {
          task = await stepFunctions.getActivityTask(activityArn);
        } finally {
          this.#polling.delete(index);
        }
        metrics.polls.inc({ source });
        errorBackoff.reset();
        if (task) {
          emptyBackoff.reset();
          this.#running.set(index, performance.now());
          try {
            const outcome = await runTask(task, ctx);
            this.#outcomes[outcome] += 1;
            this.#taskEnded(outcome, log);
          } finally {
            this.#running.delete(index);
          }
        } else {
          metrics.emptyPolls.inc({ source });
          if (performance.now() - pollStarted < FAST_EMPTY_POLL_MS) pause = emptyBackoff.next();
          else emptyBackoff.reset();
        }
      } catch (error) {
        // Only the poll can throw here (runTask never does); no task was taken.
        pause = errorBackoff.next();
        log.warn("GetActivityTask failed; retrying", { error: describeError(error), retryInMs: pause });
      } finally {
        await permit.release();
      }
      if (pause > 0) await sleep(pause, this.#stop.signal);
    }
  }
}
