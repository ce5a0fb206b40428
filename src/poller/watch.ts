/**
 * What the runtime says on its own, so that a run is never silent about what matters:
 *
 * - A source whose semaphore cannot hand out permits (Redis unreachable, leases lost) takes no tasks
 *   while the log would otherwise end at "polling": say so as a warning as soon as it lasts past a
 *   short grace, again every `repeatWarningMs` while it lasts, and once at info when it is over.
 *   Only `/readyz` said it before, which nobody reads on a laptop.
 * - A periodic summary per source (tasks ended in the window by outcome, in flight), and a last one
 *   over the whole run at exit: a healthy run at info level shows it is working without a line per
 *   task.
 *
 * It reads each poller's semaphore `health()` and `activity()`; the semaphores themselves stay
 * unaware of it.
 */
import { formatDuration } from "../api/duration.ts";
import type { TaskOutcomeLabel } from "../observability/metrics.ts";
import type { SemaphoreHealth } from "../semaphore/semaphore.ts";
import type { PollerActivity, PollerState } from "./poller.ts";

/** The parts of a Poller the watch reads (a structural type, so tests can hand in fakes). */
export interface WatchedPoller {
  readonly settings: { readonly sourceName: string };
  readonly semaphore: { health(): SemaphoreHealth } | undefined;
  readonly state: PollerState;
  activity(): PollerActivity;
}

/** The two levels the watch logs at; a winston Logger fits. */
export interface WatchLog {
  info(message: string, fields: Record<string, unknown>): unknown;
  warn(message: string, fields: Record<string, unknown>): unknown;
}

export interface RuntimeWatchOptions {
  pollers: readonly WatchedPoller[];
  log: WatchLog;
  /** How often health is looked at. */
  checkIntervalMs?: number;
  /**
   * How long a semaphore may be not ready before the first warning: long enough for the connection
   * made at start-up, short enough to be "at once" for a person watching.
   */
  warnAfterMs?: number;
  /** Repeat of the warning while the problem lasts. */
  repeatWarningMs?: number;
  /** Period of the summary line; 0 turns it off. */
  summaryIntervalMs?: number;
  /** Clock in ms (performance.now() by default). */
  now?: () => number;
}

export const MESSAGES = {
  notReady: "not taking tasks: the concurrency semaphore is not ready",
  ready: "taking tasks again: the concurrency semaphore is ready",
  summary: "task summary",
} as const;

const OUTCOMES: readonly TaskOutcomeLabel[] = ["succeeded", "failed", "gone", "unreported"];

interface HealthState {
  /** When the current not-ready spell began, if one is under way. */
  since?: number;
  /** When it was last warned about (undefined: not yet warned). */
  warnedAt?: number;
}

export class RuntimeWatch {
  readonly #pollers: readonly WatchedPoller[];
  readonly #log: WatchLog;
  readonly #checkIntervalMs: number;
  readonly #warnAfterMs: number;
  readonly #repeatWarningMs: number;
  readonly #summaryIntervalMs: number;
  readonly #now: () => number;
  readonly #health = new Map<WatchedPoller, HealthState>();
  /** Outcome counts at the last summary, per poller. */
  readonly #lastOutcomes = new Map<WatchedPoller, Record<TaskOutcomeLabel, number>>();
  #lastSummaryAt: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RuntimeWatchOptions) {
    this.#pollers = options.pollers;
    this.#log = options.log;
    this.#checkIntervalMs = options.checkIntervalMs ?? 1000;
    this.#warnAfterMs = options.warnAfterMs ?? 1000;
    this.#repeatWarningMs = options.repeatWarningMs ?? 30_000;
    this.#summaryIntervalMs = options.summaryIntervalMs ?? 60_000;
    this.#now = options.now ?? (() => performance.now());
    this.#lastSummaryAt = this.#now();
  }

  start(): void {
    this.#timer ??= setInterval(() => this.check(), this.#checkIntervalMs);
    // Never what keeps the process alive: the pollers are.
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One look at every poller: health warnings, and the summary when due. */
  check(): void {
    const now = this.#now();
    for (const poller of this.#pollers) this.#checkHealth(poller, now);
    if (this.#summaryIntervalMs > 0 && now - this.#lastSummaryAt >= this.#summaryIntervalMs) {
      this.#summarise(now, false);
    }
  }

  /** The last summary, over the whole run: called once every poller has stopped. */
  final(): void {
    this.#summarise(this.#now(), true);
  }

  #checkHealth(poller: WatchedPoller, now: number): void {
    const state = this.#health.get(poller) ?? {};
    this.#health.set(poller, state);
    // While stopping, "not ready" is expected (the semaphore closes) and the shutdown says its own.
    const health = poller.state === "running" ? poller.semaphore?.health() : undefined;
    const source = poller.settings.sourceName;
    if (health === undefined || health.ready) {
      if (state.warnedAt !== undefined && health?.ready) {
        this.#log.info(MESSAGES.ready, { source, after: formatSeconds(now - (state.since ?? now)) });
      }
      state.since = undefined;
      state.warnedAt = undefined;
      return;
    }
    state.since ??= now;
    const due =
      state.warnedAt === undefined
        ? now - state.since >= this.#warnAfterMs
        : now - state.warnedAt >= this.#repeatWarningMs;
    if (!due) return;
    state.warnedAt = now;
    this.#log.warn(MESSAGES.notReady, {
      source,
      reason: health.reason ?? "unknown",
      for: formatSeconds(now - state.since),
    });
  }

  #summarise(now: number, final: boolean): void {
    const window = final ? "whole run" : formatSeconds(now - this.#lastSummaryAt);
    this.#lastSummaryAt = now;
    for (const poller of this.#pollers) {
      const activity = poller.activity();
      const before = final ? undefined : this.#lastOutcomes.get(poller);
      this.#lastOutcomes.set(poller, activity.outcomes);
      const counts = Object.fromEntries(
        OUTCOMES.map((outcome) => [outcome, activity.outcomes[outcome] - (before?.[outcome] ?? 0)]),
      );
      this.#log.info(MESSAGES.summary, {
        source: poller.settings.sourceName,
        window,
        ...counts,
        inFlight: activity.tasks,
        ...(final ? {} : { total: activity.outcomes }),
      });
    }
  }
}

/** "45s", "2m30s": a duration rounded to whole seconds. */
export function formatSeconds(ms: number): string {
  return formatDuration(Math.max(0, Math.round(ms / 1000)) * 1000);
}
