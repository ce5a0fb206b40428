/**
 * The operator's side of Redis: one connection per Redis the sources use (the operator's own, and any
 * `spec.redis` override), the live limits it writes, and the task figures it reads for the status.
 *
 * Figures are read by `collect()` on a timer (every few seconds, one pipeline per Redis for all its
 * sources: never a read per task, never a status write per task); reconcile reads the last collected
 * figures from memory. `collect()` also writes back a limit that Redis no longer holds (Redis lost
 * its data): pollers that follow the limit take no task until it is there again.
 */
import { ApiException, type CoreV1Api } from "@kubernetes/client-node";
import { describeError, getLogger } from "../observability/logger.ts";
import { RedisConnection, redisOptionsFromEnv } from "../semaphore/redis/connection.ts";
import {
  deleteSourceState,
  readSourceStats,
  type SourceStats,
  writeLimit,
} from "../semaphore/redis/source-state.ts";
import { describeApiError, withTimeout } from "./kube-call.ts";
import type { RedisTarget, TaskFigures } from "./reconcile.ts";

/** What collect() needs to know of each source. */
export interface CollectedSource {
  key: string;
  target: RedisTarget;
  activityArn: string;
  limit: number;
}

/** How long the first use of a Redis waits for its connection before it reports it unreachable. */
const FIRST_CONNECT_WAIT_MS = 3000;

interface Entry {
  connection?: RedisConnection;
  /** Why there is no connection (the password Secret cannot be read). */
  problem?: string;
  opening?: Promise<void>;
}

export class SourceRedis {
  readonly #env: NodeJS.ProcessEnv;
  readonly #defaultUrl: string;
  readonly #core: CoreV1Api;
  readonly #apiTimeoutMs: number;
  readonly #identity: string;
  readonly #entries = new Map<string, Entry>();
  readonly #figures = new Map<string, SourceStats>();
  /** The limit last written per Redis and ARN: no write when it is already there. */
  readonly #limits = new Map<string, number>();
  /** Per Redis, whether the last collect() found it unusable: a change queues its sources. */
  readonly #down = new Map<string, boolean>();
  readonly #log = getLogger("redis");

  constructor(options: {
    env: NodeJS.ProcessEnv;
    /** The operator's own Redis (SFN_REDIS_URL). */
    defaultUrl: string;
    core: CoreV1Api;
    apiTimeoutMs: number;
    identity: string;
  }) {
    this.#env = options.env;
    this.#defaultUrl = options.defaultUrl;
    this.#core = options.core;
    this.#apiTimeoutMs = options.apiTimeoutMs;
    this.#identity = options.identity;
  }

  /** Makes `limit` the live limit; writes only when Redis may not hold it yet. */
  async ensureLimit(target: RedisTarget, activityArn: string, limit: number): Promise<void> {
    const key = `${targetKey(target)}\n${activityArn}`;
    if (this.#limits.get(key) === limit) return;
    await writeLimit(await this.#connection(target), activityArn, limit);
    this.#limits.set(key, limit);
  }

  figures(target: RedisTarget, activityArn: string): TaskFigures | undefined {
    const stats = this.#figures.get(`${targetKey(target)}\n${activityArn}`);
    if (stats === undefined) return undefined;
    return {
      inFlight: stats.inFlight,
      succeeded: stats.succeeded,
      failed: stats.failed,
      ...(stats.lastTaskTime !== undefined && { lastTaskTime: stats.lastTaskTime }),
    };
  }

  problem(target: RedisTarget): string | undefined {
    const entry = this.#entries.get(targetKey(target));
    if (entry === undefined) return "not connected yet";
    if (entry.problem !== undefined) return entry.problem;
    if (entry.connection !== undefined && !entry.connection.ready) {
      return `Redis is unreachable (${entry.connection.problem ?? "not connected"})`;
    }
    return undefined;
  }

  async deleteState(target: RedisTarget, activityArn: string): Promise<void> {
    const connection = await this.#connection(target);
    if (!connection.ready) throw new Error(connection.problem ?? "Redis is not connected");
    await deleteSourceState(connection, activityArn);
    this.#limits.delete(`${targetKey(target)}\n${activityArn}`);
    this.#figures.delete(`${targetKey(target)}\n${activityArn}`);
  }

  /**
   * Reads the figures of every source (one pipeline per Redis) and writes back limits Redis lost.
   * Returns the keys of the sources to reconcile: those whose figures changed, and all those of a
   * Redis that went down or came back since the last collect. Nothing else tells reconcile that a
   * Redis went away (no Kubernetes object changes), so SemaphoreHealthy would stay True until an
   * unrelated event; and one that comes back would wait for the work queue's grown backoff.
   */
  async collect(sources: readonly CollectedSource[]): Promise<string[]> {
    const byTarget = new Map<string, CollectedSource[]>();
    for (const source of sources) {
      const key = targetKey(source.target);
      byTarget.set(key, [...(byTarget.get(key) ?? []), source]);
    }
    const changed: string[] = [];
    await Promise.all(
      [...byTarget.values()].map(async (group) => {
        const target = group[0]?.target;
        if (target === undefined) return;
        // Judged as reconcile judges it (problem()), after this round's use of the connection.
        const health = (): void => {
          const key = targetKey(target);
          const down = this.problem(target) !== undefined;
          // Unseen counts as up: a needless reconcile is harmless, a Redis that went down before
          // the first look and queued nothing is not.
          if ((this.#down.get(key) ?? false) !== down) {
            changed.push(...group.map((source) => source.key));
          }
          this.#down.set(key, down);
        };
        let stats: Map<string, SourceStats>;
        try {
          const connection = await this.#connection(target);
          if (!connection.ready) {
            health();
            return;
          }
          stats = await readSourceStats(
            connection,
            group.map((source) => source.activityArn),
          );
        } catch (error) {
          health();
          this.#log.debug("could not read task figures", { error: describeError(error) });
          return;
        }
        health();
        for (const source of group) {
          const figures = stats.get(source.activityArn);
          if (figures === undefined) continue;
          const figuresKey = `${targetKey(target)}\n${source.activityArn}`;
          if (!sameFigures(this.#figures.get(figuresKey), figures)) changed.push(source.key);
          this.#figures.set(figuresKey, figures);
          if (figures.limit !== source.limit) {
            // Lost (Redis lost its data) or changed behind our back: write it again.
            this.#limits.delete(figuresKey);
            await this.ensureLimit(target, source.activityArn, source.limit).catch((error: unknown) => {
              this.#log.warn("could not write a limit again", {
                source: source.key,
                error: describeError(error),
              });
            });
          }
        }
      }),
    );
    return [...new Set(changed)];
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.#entries.values()].map((entry) => entry.connection?.close() ?? Promise.resolve()),
    );
    this.#entries.clear();
  }

  /** The connection to a Redis, opened on first use (with the source's password Secret, if any). */
  async #connection(target: RedisTarget): Promise<RedisConnection> {
    const key = targetKey(target);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = {};
      this.#entries.set(key, entry);
    }
    // #open sets entry.connection before the connection is ready: a use that comes while another
    // is still opening it waits for that opening too (else its first command fails at once, as
    // the client queues nothing offline).
    if (entry.connection !== undefined && entry.opening === undefined) return entry.connection;
    const opening = entry.opening ?? this.#open(entry, target);
    entry.opening = opening;
    try {
      await opening;
    } finally {
      entry.opening = undefined;
    }
    if (entry.connection === undefined) throw new Error(entry.problem ?? "Redis connection not opened");
    return entry.connection;
  }

  async #open(entry: Entry, target: RedisTarget): Promise<void> {
    // The SFN_REDIS_* variables (password, Sentinels, cluster mode) describe the operator's own Redis;
    // a source's own Redis is described by its URL and its password Secret only.
    const own = target.url === this.#defaultUrl && target.passwordSecret === undefined;
    const options = redisOptionsFromEnv(target.url, own ? this.#env : {});
    if (target.passwordSecret !== undefined) {
      const { namespace, name, key } = target.passwordSecret;
      try {
        const secret = await withTimeout(`read Secret ${namespace}/${name}`, this.#apiTimeoutMs, (call) =>
          this.#core.readNamespacedSecret({ namespace, name }, call),
        );
        const value = secret.data?.[key];
        if (value === undefined) {
          entry.problem = `Secret ${namespace}/${name} has no key ${JSON.stringify(key)} (spec.redis.passwordSecretRef)`;
          throw new Error(entry.problem);
        }
        options.password = Buffer.from(value, "base64").toString("utf8");
      } catch (error) {
        // The chart grants Secrets `get` only when asked (rbac.sourceRedisSecrets): say so.
        const forbidden = error instanceof ApiException && error.code === 403;
        entry.problem ??= `cannot read Secret ${namespace}/${name} for the Redis password: ${describeApiError(error)}${
          forbidden
            ? " (the operator may read Secrets only when installed with the chart value rbac.sourceRedisSecrets=true)"
            : ""
        }`;
        throw error;
      }
    }
    entry.problem = undefined;
    const connection = new RedisConnection({ ...options, connectionName: `sfn-operator:${this.#identity}` });
    entry.connection = connection;
    // The first command waits for the connection (a little): the client queues nothing offline.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, FIRST_CONNECT_WAIT_MS);
      const off = connection.onReady(done);
      if (connection.ready) done();
      function done(): void {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }
}

/** One connection per Redis URL and password source. */
function targetKey(target: RedisTarget): string {
  const secret = target.passwordSecret;
  return secret ? `${target.url}\n${secret.namespace}/${secret.name}/${secret.key}` : target.url;
}

function sameFigures(a: SourceStats | undefined, b: SourceStats): boolean {
  return (
    a !== undefined &&
    a.inFlight === b.inFlight &&
    a.succeeded === b.succeeded &&
    a.failed === b.failed &&
    a.lastTaskTime === b.lastTaskTime
  );
}
