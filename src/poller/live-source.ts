/**
 * A poller the operator runs (SFN_LIMIT_FROM_REDIS=true): its limit is the one the operator writes to
 * Redis next to the semaphore, followed while it runs, so that a changed maxConcurrency is a scale of
 * the Deployment and never a restart; and its task figures go to Redis for the source's status.
 * (src/semaphore/redis/source-state.ts has the Redis side and its invariants.)
 *
 * Fail closed: the source's semaphore is a LimitGate, which hands out no permit, so no loop polls,
 * while no limit is known (before the first read, while the key is missing or invalid, and after a
 * reconnect until the key is read again). The Redis semaphore behind it is made with the first limit
 * read and keeps counting permits as before; only its limit changes (setLimit).
 */
import type { PollerSettings } from "../api/types.ts";
import { getLogger } from "../observability/logger.ts";
import { LimitGate } from "../semaphore/limit-gate.ts";
import type { RedisConnection } from "../semaphore/redis/connection.ts";
import { sourceStateKeys } from "../semaphore/redis/keys.ts";
import { LimitFollower, TaskFiguresRecorder } from "../semaphore/redis/source-state.ts";
import type { Semaphore } from "../semaphore/semaphore.ts";
import type { Poller } from "./poller.ts";

export interface LiveSourceOptions {
  connection: RedisConnection;
  /** Makes the source's real (Redis) semaphore with the first limit read. */
  createSemaphore: (settings: PollerSettings, activityArn: string, limit: number) => Semaphore;
  /** Prefix of this process's entry in the figures (the worker name). */
  workerName: string;
  /** Period of the limit's re-read (source-state.ts's default when absent). */
  limitRefreshMs?: number;
  /** Period of the in-flight report (source-state.ts's default when absent). */
  figuresReportMs?: number;
}

/** What runPollers needs for one source whose limit comes from Redis. */
export interface LiveSource {
  /** The source's semaphore (a LimitGate), once its activity ARN is known; starts following. */
  semaphoreFor(activityArn: string, settings: PollerSettings): Semaphore;
  /** Hooks the figures to the poller's task outcomes; returns the disposer. */
  afterStart(pollers: readonly Poller[]): () => void;
  /** Stops following and sends the last figures (after the pollers stopped, before the connection closes). */
  close(): Promise<void>;
}

export function liveSource(options: LiveSourceOptions): LiveSource {
  const log = getLogger("poller");
  let poller: Poller | undefined;
  let follower: LimitFollower | undefined;
  let figures: TaskFiguresRecorder | undefined;
  return {
    semaphoreFor(activityArn, settings) {
      if (follower) throw new Error("liveSource serves one source; semaphoreFor was called twice");
      const { connection } = options;
      const key = sourceStateKeys(activityArn).limit;
      const gate = new LimitGate(
        (limit) => options.createSemaphore(settings, activityArn, limit),
        `reading the concurrency limit from Redis (key ${key})`,
      );
      const followed = new LimitFollower({
        connection,
        activityArn,
        name: settings.sourceName,
        ...(options.limitRefreshMs ? { refreshMs: options.limitRefreshMs } : {}),
        onLimit: (limit) => gate.setLimit(limit),
        onNoLimit: (reason) => gate.withhold(reason),
      });
      figures = new TaskFiguresRecorder({
        connection,
        activityArn,
        reporterName: options.workerName,
        // Tasks received and not yet reported: their HTTP calls (and reports), not the polls.
        inFlight: () => poller?.activity().tasks ?? 0,
        ...(options.figuresReportMs ? { reportIntervalMs: options.figuresReportMs } : {}),
      });
      follower = followed;
      log.info("the concurrency limit comes from Redis (SFN_LIMIT_FROM_REDIS): no task until it is read", {
        source: settings.sourceName,
        key,
      });
      followed.start();
      figures.start();
      return gate;
    },
    afterStart(pollers) {
      if (pollers.length !== 1) throw new Error(`liveSource serves one source, got ${pollers.length}`);
      poller = pollers[0];
      return poller?.onTaskEnd((outcome) => figures?.taskEnded(outcome)) ?? (() => {});
    },
    async close() {
      follower?.close();
      await figures?.close();
    },
  };
}
