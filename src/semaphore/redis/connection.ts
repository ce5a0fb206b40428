/**
 * The process's connections to Redis: one for commands, one for pub/sub (a subscribed connection
 * cannot run other commands), shared by every semaphore of the process. Plain Redis, Redis Sentinel
 * or Redis Cluster (ioredis `Cluster` for both connections: it follows MOVED/ASK, discovers the
 * nodes from the one in the URL, and routes each script call by the slot of its keys, which the
 * semaphore's hash tag keeps in one slot per activity).
 *
 * Commands fail fast while Redis is unreachable (no offline queue, a command timeout) so that the
 * semaphore notices and fails closed instead of piling up calls; ioredis reconnects by itself, and
 * `ready`/`down` listeners let the semaphores resume.
 */
import { createHash } from "node:crypto";
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { ConfigError, isRedisClusterUrl } from "../../api/fields.ts";
import { describeError, getLogger } from "../../observability/logger.ts";
import { COMMAND_TIMEOUT_MS } from "./limits.ts";
import { formatRedisProblem, redisSettingsFromEnv } from "./settings.ts";

/** The client the semaphore's scripts run on: a plain (or Sentinel) connection, or a cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). Host and port are ignored with
   * sentinels. In cluster mode (`redis+cluster://`, `rediss+cluster://`, or `cluster: true`), the
   * address of one node or of the configuration/discovery endpoint; the others are discovered.
   */
  url: string;
  /** Overrides the URL's password (kept out of URLs and process listings: SFN_REDIS_PASSWORD). */
  password?: string;
  /** Redis Cluster, whatever the URL's scheme (SFN_REDIS_CLUSTER=true); a `+cluster` scheme implies it. */
  cluster?: boolean;
  /** Sentinel addresses; with them, `sentinelMaster` names the monitored master. */
  sentinels?: Array<{ host: string; port: number }>;
  sentinelMaster?: string;
  /** Connection name shown by CLIENT LIST. */
  connectionName?: string;
  /** Called for every Redis error (for metrics). */
  onError?: (operation: string, error: unknown) => void;
}

/**
 * Connection options from the environment, as documented in the README. Throws ConfigError listing
 * every problem (the commands check the same settings earlier, with their other configuration).
 */
export function redisOptionsFromEnv(url: string, env: NodeJS.ProcessEnv): RedisConnectionOptions {
  const { settings, problems } = redisSettingsFromEnv(url, env, "Redis URL");
  if (problems.length > 0) throw new ConfigError(problems.map(formatRedisProblem));
  const options: RedisConnectionOptions = { url };
  if (settings.password) options.password = settings.password;
  if (settings.cluster) options.cluster = true;
  if (settings.sentinels) {
    options.sentinels = settings.sentinels;
    options.sentinelMaster = settings.sentinelMaster ?? "mymaster";
  }
  return options;
}

/** Redact the password of a Redis URL for logs and messages, wherever the URL carries it. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    if (parsed.searchParams.has("password")) parsed.searchParams.set("password", "***");
    return parsed.toString();
  } catch {
    return "<invalid url>";
  }
}

/** Whether the options choose Redis Cluster (by the flag or by the URL's scheme). */
export function isClusterMode(options: Pick<RedisConnectionOptions, "url" | "cluster">): boolean {
  return options.cluster === true || isRedisClusterUrl(options.url);
}

type Listener = () => void;
type MessageListener = (message: string) => void;

/** Reconnect quickly and steadily: the semaphore is closed while Redis is away. */
const retryDelay = (times: number): number => Math.min(100 * times, 1000);

export class RedisConnection {
  readonly client: RedisClient;
  readonly subscriber: RedisClient;
  readonly cluster: boolean;
  readonly #onError: RedisConnectionOptions["onError"];
  readonly #readyListeners = new Set<Listener>();
  readonly #downListeners = new Set<Listener>();
  readonly #channels = new Map<string, Set<MessageListener>>();
  /** The SUBSCRIBE of each channel in `#channels`, settled once Redis confirmed it. */
  readonly #subscriptions = new Map<string, Promise<unknown>>();
  /** Cluster mode: node connections of `client` that were lost and have not come back yet. */
  readonly #downNodes = new Set<Redis>();
  /** Cluster mode: lost nodes being asked whether they serve their slots again. */
  readonly #confirming = new Set<Redis>();
  #ready = false;
  #lastError: string | undefined;
  #closed = false;

  constructor(options: RedisConnectionOptions) {
    this.#onError = options.onError;
    const log = getLogger("redis", { url: redactRedisUrl(options.url) });
    this.cluster = isClusterMode(options);
    const base: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      retryStrategy: retryDelay,
      ...(options.password ? { password: options.password } : {}),
      ...(options.connectionName ? { connectionName: options.connectionName } : {}),
      ...(options.sentinels ? sentinelOptions(options) : {}),
    };
    if (this.cluster) {
      this.client = new Cluster(...clusterArguments(options, false));
      // The subscriber keeps an offline queue so subscriptions made before it connects are sent.
      this.subscriber = new Cluster(...clusterArguments(options, true));
      this.#watchNodes(this.client);
    } else {
      this.client = options.sentinels ? new Redis(base) : new Redis(options.url, base);
      // The subscriber keeps an offline queue so subscriptions made before it connects are sent.
      const subscriberOptions = { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null };
      this.subscriber = options.sentinels
        ? new Redis(subscriberOptions)
        : new Redis(options.url, subscriberOptions);
    }

    this.client.on("ready", () => this.#markReady(log));
    this.client.on("close", () => this.#markDown("connection closed"));
    for (const [name, connection] of [
      ["commands", this.client],
      ["pubsub", this.subscriber],
    ] as const) {
      connection.on("error", (error: unknown) => {
        // A cluster that cannot be reached at all says so without the why; its last node's error has it.
        const nodeError = (error as { lastNodeError?: unknown } | null)?.lastNodeError;
        this.#lastError = `${describeError(error)}${nodeError ? ` (${describeError(nodeError)})` : ""}`;
        this.#onError?.(`connection:${name}`, error);
        log.debug("Redis connection error", { connection: name, error: this.#lastError });
      });
    }
    if (this.client instanceof Cluster) {
      // Errors of single nodes (refused connections, failed slot refreshes) come this way.
      this.client.on("node error", (error: unknown, node: unknown) => {
        this.#lastError = `${typeof node === "string" ? `${node}: ` : ""}${describeError(error)}`;
        this.#onError?.("connection:commands", error);
        log.debug("Redis Cluster node error", { node, error: describeError(error) });
      });
    }
    this.subscriber.on("message", (channel: string, message: string) => {
      for (const listener of this.#channels.get(channel) ?? []) listener(message);
    });
    this.subscriber.on("ready", () => {
      // A release published while the subscriber was away is lost: let everyone re-check.
      for (const listeners of this.#channels.values()) for (const listener of listeners) listener("");
    });
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Why Redis is not usable, when it is not. */
  get problem(): string | undefined {
    return this.#ready ? undefined : `Redis unreachable${this.#lastError ? `: ${this.#lastError}` : ""}`;
  }

  onReady(listener: Listener): () => void {
    this.#readyListeners.add(listener);
    return () => this.#readyListeners.delete(listener);
  }

  onDown(listener: Listener): () => void {
    this.#downListeners.add(listener);
    return () => this.#downListeners.delete(listener);
  }

  /**
   * Calls `listener` for every message on `channel` (and with "" after the subscriber reconnects);
   * returns the unsubscribe function. `onSubscribed` is called once Redis has confirmed the
   * subscription (at once if it already had): a message published before then is not delivered, so
   * a caller that must not miss one reads what it stands for again then.
   */
  subscribe(channel: string, listener: MessageListener, onSubscribed?: () => void): () => void {
    let listeners = this.#channels.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.#channels.set(channel, listeners);
      const confirmed = this.subscriber.subscribe(channel);
      this.#subscriptions.set(channel, confirmed);
      confirmed.catch((error: unknown) => this.#onError?.("subscribe", error));
    }
    if (onSubscribed) {
      this.#subscriptions.get(channel)?.then(
        () => onSubscribed(),
        () => {},
      );
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && !this.#closed) {
        this.#channels.delete(channel);
        this.#subscriptions.delete(channel);
        this.subscriber.unsubscribe(channel).catch((error: unknown) => this.#onError?.("unsubscribe", error));
      }
    };
  }

  /** Records a failed command (for metrics and /readyz). */
  recordError(operation: string, error: unknown): void {
    this.#lastError = describeError(error);
    this.#onError?.(operation, error);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  /**
   * The client is usable: tell the semaphores (they re-register their leases at once; a Redis that
   * restarted, failed over or lost its data holds new grants back meanwhile, see scripts.ts "Data
   * loss"). In cluster mode, only once every node connection that was lost is back (or left the
   * cluster's slot map).
   */
  #markReady(log: ReturnType<typeof getLogger>): void {
    if (this.#closed || this.client.status !== "ready" || this.#downNodes.size > 0) return;
    const wasDown = !this.#ready;
    this.#ready = true;
    this.#lastError = undefined;
    if (wasDown) {
      log.info("connected to Redis", this.cluster ? { cluster: true } : {});
      void this.#checkEviction(log);
    }
    for (const listener of this.#readyListeners) listener();
  }

  /**
   * Warns when Redis may evict the semaphore's keys: its leases (keys with a TTL, which `volatile-*`
   * policies evict first) could vanish while their tasks run and the epoch stays, and nothing would
   * hold new grants back (scripts.ts "Data loss"). Only `noeviction`, or no `maxmemory`, is safe.
   * Asked of every master in cluster mode. Errors are ignored: managed Redis often forbids CONFIG
   * (ElastiCache shows the policy in its parameter groups only).
   */
  async #checkEviction(log: ReturnType<typeof getLogger>): Promise<void> {
    const nodes = this.client instanceof Cluster ? this.client.nodes("master") : [this.client];
    for (const node of nodes) {
      try {
        const reply = (await node.call("CONFIG", "GET", "maxmemory*")) as unknown;
        if (!Array.isArray(reply)) continue;
        const config = new Map<string, string>();
        for (let i = 0; i + 1 < reply.length; i += 2) config.set(String(reply[i]), String(reply[i + 1]));
        const policy = config.get("maxmemory-policy");
        const maxmemory = config.get("maxmemory");
        if (policy === undefined || policy === "noeviction" || maxmemory === "0") continue;
        log.warn(
          `Redis may evict keys (maxmemory-policy ${policy}): the semaphore's leases could vanish while their tasks run and maxConcurrency be exceeded; use maxmemory-policy noeviction for the semaphore's Redis`,
          { node: `${node.options.host}:${node.options.port}`, maxmemoryPolicy: policy, maxmemory },
        );
      } catch {
        // CONFIG forbidden or renamed, or the node went away: nothing to say.
      }
    }
  }

  #markDown(reason: string): void {
    if (!this.#ready || this.#closed) return;
    this.#ready = false;
    this.#lastError ??= reason;
    getLogger("redis").warn("lost the connection to Redis; not taking new tasks until it is back", {
      error: this.#lastError,
    });
    for (const listener of this.#downListeners) listener();
  }

  /**
   * Cluster mode: a cluster stays "ready" while one of its nodes is lost, so each node connection is
   * watched. Losing one fails the whole process closed until it is back (Redis Cluster itself refuses
   * every slot once a master is marked failed, by default), and its return counts as a reconnect: a
   * master restarted comes back empty or with expired leases, and the semaphores' reconnect path
   * (re-register leases at once, within the window the restarted master opens: scripts.ts "Data
   * loss") is what keeps the limit then (see `#whenServing` for when a node counts as back). Node
   * connections reconnect by themselves (`clusterNodeRetryStrategy`) so that their return is seen;
   * ioredis's default drops them and only reconnects when a command happens to need the node.
   */
  #watchNodes(cluster: Cluster): void {
    const log = getLogger("redis");
    const removed = new WeakSet<Redis>();
    const name = (node: Redis): string => `${node.options.host}:${node.options.port}`;
    cluster.on("+node", (node: Redis) => {
      node.on("close", () => {
        // "end" means ioredis closed it on purpose (the node left the slot map, or we are closing).
        if (this.#closed || removed.has(node) || node.status === "end") return;
        if (!this.#downNodes.has(node)) log.debug("lost a Redis Cluster node", { node: name(node) });
        this.#downNodes.add(node);
        this.#lastError ??= `cluster node ${name(node)} unreachable`;
        this.#markDown(`cluster node ${name(node)} unreachable`);
      });
      node.on("ready", () => {
        if (this.#downNodes.has(node)) void this.#whenServing(node);
      });
    });
    cluster.on("-node", (node: Redis) => {
      removed.add(node);
      if (this.#downNodes.delete(node)) this.#markReady(log);
    });
    // After a slot map refresh, a lost node that no longer serves any slot (a failed-over master) is
    // no longer waited for. ioredis drops it from its pool, but a connection dropped while it was
    // reconnecting never says so with "-node" (it closes without a new "close" or "end").
    cluster.on("refresh", () => {
      const current = new Set(cluster.nodes("all"));
      let pruned = false;
      for (const node of this.#downNodes) {
        if (!current.has(node)) {
          removed.add(node);
          this.#downNodes.delete(node);
          pruned = true;
        }
      }
      if (pruned) this.#markReady(log);
    });
  }

  /**
   * A node that was lost is back once it serves its slots again, not when it accepts connections: a
   * restarted master answers CLUSTERDOWN until it has rejoined. Counting it back earlier would send
   * the semaphores' lease re-registration (and their waiters' acquisitions) while it still fails.
   * Asked every 200 ms while the connection stays up.
   */
  async #whenServing(node: Redis): Promise<void> {
    if (this.#confirming.has(node)) return;
    this.#confirming.add(node);
    try {
      while (!this.#closed && this.#downNodes.has(node) && node.status === "ready") {
        try {
          const info = String(await node.call("CLUSTER", "INFO"));
          if (/^cluster_state:ok\b/m.test(info)) {
            this.#downNodes.delete(node);
            this.#markReady(getLogger("redis"));
            return;
          }
        } catch (error) {
          this.#lastError = describeError(error);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      this.#confirming.delete(node);
    }
  }
}

/**
 * With Sentinels the master's address comes from them, so ioredis is given no URL: what else the URL
 * says (database, ACL user, password) is passed as options, or it would be silently dropped.
 */
export function sentinelOptions(options: RedisConnectionOptions): RedisOptions {
  const url = new URL(options.url);
  const db = Number(url.pathname.replace(/^\//, "") || "0");
  const username = decodeURIComponent(url.username);
  const password = options.password ?? decodeURIComponent(url.password);
  return {
    sentinels: options.sentinels ?? [],
    name: options.sentinelMaster ?? "mymaster",
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
  };
}

/**
 * `new Cluster(...)` arguments for the URL: its host and port seed the node discovery; credentials
 * and TLS apply to every node. For commands, no offline queue (fail fast, as in plain mode); for the
 * subscriber, an offline queue (subscriptions made before it connects are sent when it does).
 */
export function clusterArguments(
  options: RedisConnectionOptions,
  subscriber: boolean,
): [Array<{ host: string; port: number }>, ClusterOptions] {
  const url = new URL(options.url);
  const tls = url.protocol === "rediss:" || url.protocol === "rediss+cluster:";
  const username = decodeURIComponent(url.username);
  const password = options.password ?? decodeURIComponent(url.password);
  const redisOptions: ClusterOptions["redisOptions"] = {
    // As in plain mode: commands fail within 2 s; the subscriber waits as long as it takes.
    ...(subscriber ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 1, commandTimeout: 2000 }),
    connectTimeout: 2000,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
    ...(tls ? { tls: {} } : {}),
  };
  const clusterOptions: ClusterOptions = {
    redisOptions,
    enableOfflineQueue: subscriber,
    clusterRetryStrategy: retryDelay,
    clusterNodeRetryStrategy: retryDelay,
    // Notices failovers and resharding while no command is sent (the semaphores send none while
    // failing closed, and MOVED replies are what otherwise refreshes the slot map).
    slotsRefreshInterval: 5000,
    slotsRefreshTimeout: 2000,
    // As ioredis documents for ElastiCache with TLS: keep host names, which the certificates name,
    // instead of resolving them to addresses.
    ...(tls
      ? {
          dnsLookup: (address: string, callback: (error: null, address: string) => void) =>
            callback(null, address),
        }
      : {}),
  };
  // `new URL` keeps the brackets of an IPv6 literal, which a socket address must not have.
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return [[{ host, port: url.port ? Number(url.port) : 6379 }], clusterOptions];
}

/**
 * A Lua script called by its SHA (one round trip), loaded on first use or after a Redis restart
 * (NOSCRIPT). ioredis's defineCommand does the same but adds untyped methods to the client.
 */
export class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash("sha1").update(source).digest("hex");
  }

  /**
   * On a cluster, EVALSHA and EVAL go to the master of the keys' slot (ioredis reads the keys from the
   * numkeys argument), and a node that has not seen the script yet answers NOSCRIPT: each node loads
   * it on first use.
   */
  async run(client: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return client.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}
