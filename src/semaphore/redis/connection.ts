/**
 * The process's connections to Redis: one for commands, one for pub/sub (a subscribed connection
 * cannot run other commands), shared by every semaphore of the process.
 *
 * Commands fail fast while Redis is unreachable (no offline queue, a command timeout) so that the
 * semaphore notices and fails closed instead of piling up calls; ioredis reconnects by itself, and
 * `ready`/`down` listeners let the semaphores resume.
 */
import { createHash } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { describeError, getLogger } from "../../observability/logger.ts";
import { COMMAND_TIMEOUT_MS } from "./limits.ts";

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). Host and port are ignored with sentinels. */
  url: string;
  /** Overrides the URL's password (kept out of URLs and process listings: SFN_REDIS_PASSWORD). */
  password?: string;
  /** Sentinel addresses; with them, `sentinelMaster` names the monitored master. */
  sentinels?: Array<{ host: string; port: number }>;
  sentinelMaster?: string;
  /** Connection name shown by CLIENT LIST. */
  connectionName?: string;
  /** Called for every Redis error (for metrics). */
  onError?: (operation: string, error: unknown) => void;
}

/** Connection options from the environment, as documented in the README. */
export function redisOptionsFromEnv(url: string, env: NodeJS.ProcessEnv): RedisConnectionOptions {
  const options: RedisConnectionOptions = { url };
  if (env.SFN_REDIS_PASSWORD) options.password = env.SFN_REDIS_PASSWORD;
  if (env.SFN_REDIS_SENTINELS) {
    options.sentinels = env.SFN_REDIS_SENTINELS.split(",").map((entry) => {
      const [host, port] = entry.trim().split(":");
      if (!host || !port || !Number.isInteger(Number(port))) {
        throw new Error(`SFN_REDIS_SENTINELS: "${entry}" is not host:port`);
      }
      return { host, port: Number(port) };
    });
    options.sentinelMaster = env.SFN_REDIS_SENTINEL_MASTER ?? "mymaster";
  }
  return options;
}

/** Redact the password of a Redis URL for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<invalid url>";
  }
}

type Listener = () => void;
type MessageListener = (message: string) => void;

export class RedisConnection {
  readonly client: Redis;
  readonly subscriber: Redis;
  readonly #onError: RedisConnectionOptions["onError"];
  readonly #readyListeners = new Set<Listener>();
  readonly #downListeners = new Set<Listener>();
  readonly #channels = new Map<string, Set<MessageListener>>();
  #ready = false;
  #lastError: string | undefined;
  #closed = false;

  constructor(options: RedisConnectionOptions) {
    this.#onError = options.onError;
    const log = getLogger("redis", { url: redactRedisUrl(options.url) });
    const base: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      // Reconnect quickly and steadily: the semaphore is closed while Redis is away.
      retryStrategy: (times) => Math.min(100 * times, 1000),
      ...(options.password ? { password: options.password } : {}),
      ...(options.connectionName ? { connectionName: options.connectionName } : {}),
      ...(options.sentinels ? { sentinels: options.sentinels, name: options.sentinelMaster } : {}),
    };
    this.client = options.sentinels ? new Redis(base) : new Redis(options.url, base);
    // The subscriber keeps an offline queue so subscriptions made before it connects are sent.
    const subscriberOptions = { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null };
    this.subscriber = options.sentinels
      ? new Redis(subscriberOptions)
      : new Redis(options.url, subscriberOptions);

    this.client.on("ready", () => {
      const wasDown = !this.#ready;
      this.#ready = true;
      this.#lastError = undefined;
      if (wasDown) log.info("connected to Redis");
      for (const listener of this.#readyListeners) listener();
    });
    this.client.on("close", () => this.#markDown("connection closed"));
    for (const [name, connection] of [
      ["commands", this.client],
      ["pubsub", this.subscriber],
    ] as const) {
      connection.on("error", (error: unknown) => {
        this.#lastError = describeError(error);
        this.#onError?.(`connection:${name}`, error);
        log.debug("Redis connection error", { connection: name, error: this.#lastError });
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
   * returns the unsubscribe function.
   */
  subscribe(channel: string, listener: MessageListener): () => void {
    let listeners = this.#channels.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.#channels.set(channel, listeners);
      this.subscriber.subscribe(channel).catch((error: unknown) => this.#onError?.("subscribe", error));
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && !this.#closed) {
        this.#channels.delete(channel);
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

  #markDown(reason: string): void {
    if (!this.#ready || this.#closed) return;
    this.#ready = false;
    this.#lastError ??= reason;
    getLogger("redis").warn("lost the connection to Redis; not taking new tasks until it is back", {
      error: this.#lastError,
    });
    for (const listener of this.#downListeners) listener();
  }
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

  async run(client: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return client.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}
