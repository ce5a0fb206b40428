/**
 * Leader election of the operator on a `coordination.k8s.io/v1` Lease, with client-go's semantics
 * (`tools/leaderelection`: LeaseLock, tryAcquireOrRenew, release on shutdown).
 *
 * Hand-written because there is no sound npm library for it on client-node 2.x (the one npm package
 * for Lease election, @codedependant/kubernetes-leader-election 1.0.1, is built on client-node 1.x),
 * and because the protocol is only a few rules, written down here so that each line below can be
 * checked against them rather than trusted.
 *
 * Invariants:
 * 1. Expiry is judged on this process's monotonic clock only. A Lease held by another identity may be
 *    taken only when its whole record (spec) has stayed unchanged for max(record's
 *    leaseDurationSeconds, our leaseDuration) since this process first saw that record. The times
 *    written in the Lease are for humans: they are never compared with our clock (clock skew).
 * 2. Every write is a create, or a replace carrying the resourceVersion of the Lease we read or wrote
 *    last. Of two candidates writing on the same version, the API server accepts exactly one (the
 *    other gets 409 and has not acquired).
 * 3. We lead only after a successful write naming our identity, and leading ends, at the latest,
 *    `renewDeadline` after the START of the last successful write. A timer enforces it, so a hung
 *    call cannot stretch it. Leading also ends as soon as a read shows another holder (or no holder,
 *    or no Lease), and on stop()/release(). "Ends" means: the signal given to onStartedLeading is
 *    aborted and onStoppedLeading has run, synchronously, before anything else (such as release's
 *    write).
 * 4. Why 1 and 3 are safe together: a candidate first sees a renewal after the leader sent it, so it
 *    cannot take over before `leaseDuration` after the send, while the leader stopped `renewDeadline`
 *    after it. `leaseDuration - renewDeadline` is the margin for clock-rate differences and for the
 *    leader's work to notice its aborted signal.
 * 5. release() writes an empty holder (leaseDurationSeconds 1) only on a version that names us as the
 *    holder (409 -> read again, and write only if we are still the holder), and only after leading
 *    ended. A process that never held the Lease writes nothing.
 * 6. An elector runs once: run() resolves with why it ended and the elector is not reused. A leader
 *    that lost the Lease exits; the Deployment restarts it as a candidate.
 *
 * As in client-go, a Lease that names our own identity is renewed at once, without waiting: a
 * restarted container of the same pod goes on. So `identity` must be unique per process (the pod name).
 *
 * Deliberate differences from client-go, each on the safe side: expiry waits for the longer of the
 * record's and our own lease duration (client-go: the record's); the renew deadline counts from the
 * start of the last successful write and is enforced by a timer (client-go: a polling loop bounded by
 * a context); a leader seeing another holder stops at once instead of at the renew deadline; a leader
 * whose Lease was deleted stops instead of re-creating it; the written leaseDurationSeconds is rounded
 * up, never down; no jitter on the retry period (candidates in lockstep still have exactly one
 * winner, by 2).
 */
import {
  ApiException,
  type ConfigurationOptions,
  type CoordinationV1Api,
  type V1Lease,
  V1MicroTime,
} from "@kubernetes/client-node";
import type { Gauge } from "prom-client";
import { describeError, getLogger, type Logger } from "../observability/logger.ts";
import { type Timers, withTimeout } from "./kube-call.ts";

/** The three Lease calls the elector makes (a fake implements them in tests). */
export type LeaseApi = Pick<
  CoordinationV1Api,
  "readNamespacedLease" | "createNamespacedLease" | "replaceNamespacedLease"
>;

/** Time as the elector sees it (a fake clock in tests). */
export interface Clock extends Timers {
  /** Monotonic milliseconds: all durations are measured on this. */
  now(): number;
  /** Wall time, only written into the Lease for people to read. */
  wallNow(): Date;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => new Date(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface LeaderElectorOptions {
  api: LeaseApi;
  namespace: string;
  name: string;
  /** Unique per process (the pod name). */
  identity: string;
  /** How long a candidate waits on an unchanged record before taking the Lease. Default 15 s. */
  leaseDurationMs?: number;
  /** A leader stops when it could not renew for this long. Default 10 s. */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
  /** Timeout of each API call. Default renewDeadline / 2. */
  callTimeoutMs?: number;
  /** Called when this process starts leading; `signal` aborts when it stops. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once when this process stops leading (never for a process that did not lead). */
  onStoppedLeading?: () => void;
  /** Called when a different holder is observed (including this process itself). */
  onNewLeader?: (identity: string) => void;
  /** Set to 1 while leading, else 0 (see createLeaderGauge in src/observability/metrics.ts). */
  leaderGauge?: Gauge<"identity">;
  clock?: Clock;
}

/** Why run() ended. */
export type ElectionEnd =
  | "lost" // leading ended without being asked: renew deadline passed, another holder, Lease deleted
  | "released" // release() was called
  | "stopped"; // stop() was called

interface Settings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  callTimeoutMs: number;
}

/** Checks client-go's rule leaseDuration > renewDeadline > 1.2 x retryPeriod, and the call timeout. */
export function electionSettings(options: Partial<Settings>): Settings {
  const leaseDurationMs = options.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  const callTimeoutMs = options.callTimeoutMs ?? Math.floor(renewDeadlineMs / 2);
  const all = { leaseDurationMs, renewDeadlineMs, retryPeriodMs, callTimeoutMs };
  for (const [key, value] of Object.entries(all)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`leader election: ${key} must be a positive number of milliseconds, got ${value}`);
    }
  }
  if (!(leaseDurationMs > renewDeadlineMs)) {
    throw new Error(
      `leader election: leaseDurationMs (${leaseDurationMs}) must be greater than renewDeadlineMs (${renewDeadlineMs})`,
    );
  }
  if (!(renewDeadlineMs > 1.2 * retryPeriodMs)) {
    throw new Error(
      `leader election: renewDeadlineMs (${renewDeadlineMs}) must be greater than 1.2 x retryPeriodMs (${retryPeriodMs}), that is ${1.2 * retryPeriodMs}`,
    );
  }
  if (callTimeoutMs > renewDeadlineMs) {
    throw new Error(
      `leader election: callTimeoutMs (${callTimeoutMs}) must not exceed renewDeadlineMs (${renewDeadlineMs})`,
    );
  }
  return all;
}

/** What one attempt to acquire or renew found. */
type Attempt =
  | { kind: "held" } // our write naming us succeeded
  | { kind: "notHeld" } // held by another, unexpired; or our write lost a race (409); or a call failed
  | { kind: "lost"; reason: string }; // while leading: the Lease names someone else, or is gone

type LeaseSpec = NonNullable<V1Lease["spec"]>;

function isStatus(error: unknown, code: number): boolean {
  return error instanceof ApiException && error.code === code;
}

/** The record compared for change (invariant 1): the whole spec, in a fixed order. */
function recordKey(spec: LeaseSpec | undefined): string {
  return JSON.stringify([
    spec?.holderIdentity ?? "",
    spec?.leaseDurationSeconds ?? null,
    spec?.leaseTransitions ?? null,
    spec?.acquireTime ?? null,
    spec?.renewTime ?? null,
    spec?.preferredHolder ?? null,
    spec?.strategy ?? null,
  ]);
}

export class LeaderElector {
  readonly #api: LeaseApi;
  readonly #namespace: string;
  readonly #name: string;
  readonly #identity: string;
  readonly #settings: Settings;
  readonly #clock: Clock;
  readonly #options: LeaderElectorOptions;
  readonly #log: Logger;

  /** The Lease as last read or written by us: its resourceVersion is what our next write carries. */
  #lease: V1Lease | undefined;
  /** The record last seen and when (our clock) we first saw it. */
  #observed: { key: string; holder: string; at: number } | undefined;
  #reportedLeader = "";
  /** Present exactly while leading; deadlineAt is on our clock. */
  #leading: { controller: AbortController; deadlineAt: number; deadlineTimer: unknown } | undefined;
  #end: ElectionEnd | undefined;
  /** What run() returns: settles as soon as the election ends, even with a call still in flight. */
  readonly #ended: Promise<ElectionEnd>;
  #resolveEnded: (end: ElectionEnd) => void = () => {};
  /** The loop itself: ends after its call in flight, if any, answered or timed out. */
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: LeaderElectorOptions) {
    for (const key of ["namespace", "name", "identity"] as const) {
      if (!options[key]) throw new Error(`leader election: ${key} must not be empty`);
    }
    this.#settings = electionSettings(options);
    this.#options = options;
    this.#api = options.api;
    this.#namespace = options.namespace;
    this.#name = options.name;
    this.#identity = options.identity;
    this.#clock = options.clock ?? systemClock;
    this.#log = getLogger("leader-election", {
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
    options.leaderGauge?.set({ identity: this.#identity }, 0);
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get isLeader(): boolean {
    return this.#leading !== undefined;
  }

  /** The holder in the record last seen ("" when none or not seen yet). */
  get leader(): string {
    return this.#observed?.holder ?? "";
  }

  /**
   * Runs the election: tries to acquire every retryPeriod; once leading, renews every retryPeriod.
   * Resolves as soon as leading ends on its own ("lost": the caller should exit; onStoppedLeading has
   * run) or when stop()/release() is called.
   */
  run(): Promise<ElectionEnd> {
    if (this.#loop) throw new Error("leader election: run() may be called once");
    this.#loop = this.#runLoop();
    return this.#ended;
  }

  /**
   * Ends the election without releasing (a crash, as seen by the others). Resolves when the loop has
   * stopped: its call in flight, if any, answered or timed out (callTimeoutMs).
   */
  async stop(): Promise<void> {
    this.#finish("stopped", "stop requested");
    await this.#loop;
  }

  /**
   * Ends the election and, if this process still holds the Lease, hands it over: an empty holder with
   * leaseDurationSeconds 1, so a standby takes over at its next attempt. Leading ends before the
   * write. Resolves true when the Lease was released by this call.
   */
  async release(): Promise<boolean> {
    this.#finish("released", "release requested");
    await this.#loop;
    let lease = this.#lease;
    for (let attempt = 0; attempt < 3 && lease?.spec?.holderIdentity === this.#identity; attempt += 1) {
      const now = new V1MicroTime(this.#clock.wallNow().getTime());
      const spec: LeaseSpec = {
        holderIdentity: "",
        leaseDurationSeconds: 1,
        leaseTransitions: lease.spec.leaseTransitions ?? 0,
        acquireTime: now,
        renewTime: now,
      };
      try {
        this.#lease = await this.#replace(lease, spec);
        this.#log.info("released the Lease");
        return true;
      } catch (error) {
        if (!isStatus(error, 409)) {
          this.#log.warn("could not release the Lease", { error: describeError(error) });
          return false;
        }
      }
      // Someone wrote since: read again and release only if the Lease still names us.
      try {
        lease = await this.#call("read", (o) =>
          this.#api.readNamespacedLease({ name: this.#name, namespace: this.#namespace }, o),
        );
        this.#lease = lease;
      } catch (error) {
        this.#log.warn("could not release the Lease", { error: describeError(error) });
        return false;
      }
    }
    return false;
  }

  async #runLoop(): Promise<void> {
    this.#log.info("candidate for leadership", this.#settings);
    while (this.#end === undefined) {
      const start = this.#clock.now();
      const attempt = await this.#attempt();
      if (this.#end !== undefined) break; // ended while the attempt ran (deadline, stop, release)
      // The deadline timer may not have had its turn yet: never act on a passed deadline.
      if (this.#leading && this.#clock.now() >= this.#leading.deadlineAt)
        this.#finish("lost", this.#deadlineReason());
      else if (attempt.kind === "lost") this.#finish("lost", attempt.reason);
      else if (attempt.kind === "held" && this.#clock.now() - start < this.#settings.renewDeadlineMs) {
        if (this.#leading) this.#armDeadline(start);
        else this.#startLeading(start);
      }
      // A renewal that failed (or an acquisition that took longer than renewDeadline) changes nothing:
      // the deadline timer decides.
      await this.#sleep(this.#settings.retryPeriodMs);
    }
  }

  /** One try to acquire (candidate) or renew (leader): client-go's tryAcquireOrRenew. */
  async #attempt(): Promise<Attempt> {
    // Fast path: the leader renews on the version it wrote last, one request per period. A 409 means
    // someone else wrote: read below to learn who.
    if (this.#leading && this.#lease) {
      try {
        this.#lease = await this.#replace(this.#lease, this.#nextSpec(this.#lease.spec));
        this.#observe(this.#lease.spec);
        return { kind: "held" };
      } catch (error) {
        if (isStatus(error, 404)) return { kind: "lost", reason: "the Lease was deleted" };
        if (!isStatus(error, 409)) return this.#failed("renew", error);
      }
    }

    let lease: V1Lease;
    try {
      lease = await this.#call("read", (o) =>
        this.#api.readNamespacedLease({ name: this.#name, namespace: this.#namespace }, o),
      );
    } catch (error) {
      if (!isStatus(error, 404)) return this.#failed("read", error);
      if (this.#leading) return { kind: "lost", reason: "the Lease was deleted" };
      return this.#create();
    }
    this.#lease = lease;
    this.#observe(lease.spec);

    const holder = lease.spec?.holderIdentity ?? "";
    if (holder !== this.#identity) {
      if (this.#leading) return { kind: "lost", reason: `the Lease now names ${holder || "no holder"}` };
      if (holder !== "" && !this.#expired(lease.spec)) return { kind: "notHeld" };
    }
    try {
      this.#lease = await this.#replace(lease, this.#nextSpec(lease.spec));
      this.#observe(this.#lease.spec);
      return { kind: "held" };
    } catch (error) {
      if (isStatus(error, 409)) return { kind: "notHeld" }; // another writer won this version
      return this.#failed("write", error);
    }
  }

  async #create(): Promise<Attempt> {
    const now = new V1MicroTime(this.#clock.wallNow().getTime());
    const body: V1Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.#name, namespace: this.#namespace },
      spec: {
        holderIdentity: this.#identity,
        leaseDurationSeconds: Math.ceil(this.#settings.leaseDurationMs / 1000),
        leaseTransitions: 0,
        acquireTime: now,
        renewTime: now,
      },
    };
    try {
      this.#lease = await this.#call("create", (o) =>
        this.#api.createNamespacedLease({ namespace: this.#namespace, body }, o),
      );
      this.#observe(this.#lease.spec);
      return { kind: "held" };
    } catch (error) {
      if (isStatus(error, 409)) return { kind: "notHeld" }; // another candidate created it first
      return this.#failed("create", error);
    }
  }

  /** The record we write to acquire or renew: transitions count changes of holder. */
  #nextSpec(current: LeaseSpec | undefined): LeaseSpec {
    const now = new V1MicroTime(this.#clock.wallNow().getTime());
    const ours = current?.holderIdentity === this.#identity;
    return {
      holderIdentity: this.#identity,
      leaseDurationSeconds: Math.ceil(this.#settings.leaseDurationMs / 1000),
      acquireTime: ours ? (current?.acquireTime ?? now) : now,
      renewTime: now,
      leaseTransitions: (current?.leaseTransitions ?? 0) + (ours ? 0 : 1),
    };
  }

  /** A replace carrying `lease`'s resourceVersion (invariant 2). */
  #replace(lease: V1Lease, spec: LeaseSpec): Promise<V1Lease> {
    const body: V1Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: lease.metadata,
      spec,
    };
    return this.#call("replace", (o) =>
      this.#api.replaceNamespacedLease({ name: this.#name, namespace: this.#namespace, body }, o),
    );
  }

  #call<T>(verb: string, call: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
    const what = `${verb} Lease ${this.#namespace}/${this.#name}`;
    return withTimeout(what, this.#settings.callTimeoutMs, call, this.#clock);
  }

  #failed(verb: string, error: unknown): Attempt {
    this.#log.warn(`could not ${verb} the Lease`, { error: describeError(error), leading: this.isLeader });
    return { kind: "notHeld" };
  }

  /** Records a newly seen record and when we first saw it (invariant 1). */
  #observe(spec: LeaseSpec | undefined): void {
    const key = recordKey(spec);
    if (this.#observed?.key === key) return;
    const holder = spec?.holderIdentity ?? "";
    this.#observed = { key, holder, at: this.#clock.now() };
    if (holder !== "" && holder !== this.#reportedLeader) {
      this.#reportedLeader = holder;
      this.#log.info("new leader observed", { leader: holder });
      try {
        this.#options.onNewLeader?.(holder);
      } catch (error) {
        this.#log.error("onNewLeader failed", { error: describeError(error) });
      }
    }
  }

  /** Whether the record seen has stayed unchanged, on our clock, for the longer of both durations. */
  #expired(spec: LeaseSpec | undefined): boolean {
    if (!this.#observed) return false;
    const recordMs = (spec?.leaseDurationSeconds ?? 0) * 1000;
    return this.#clock.now() - this.#observed.at >= Math.max(this.#settings.leaseDurationMs, recordMs);
  }

  #startLeading(writeStart: number): void {
    const controller = new AbortController();
    this.#leading = { controller, deadlineAt: Number.POSITIVE_INFINITY, deadlineTimer: undefined };
    this.#armDeadline(writeStart);
    this.#options.leaderGauge?.set({ identity: this.#identity }, 1);
    this.#log.info("became the leader", { transitions: this.#lease?.spec?.leaseTransitions });
    try {
      const started = this.#options.onStartedLeading(controller.signal);
      Promise.resolve(started).catch((error: unknown) => {
        this.#log.error("onStartedLeading failed", { error: describeError(error) });
      });
    } catch (error) {
      this.#log.error("onStartedLeading failed", { error: describeError(error) });
    }
  }

  /** Leading ends renewDeadline after the start of the last successful write (invariant 3). */
  #armDeadline(writeStart: number): void {
    const leading = this.#leading;
    if (!leading) return;
    this.#clock.clearTimeout(leading.deadlineTimer);
    leading.deadlineAt = writeStart + this.#settings.renewDeadlineMs;
    leading.deadlineTimer = this.#clock.setTimeout(
      () => this.#finish("lost", this.#deadlineReason()),
      leading.deadlineAt - this.#clock.now(),
    );
  }

  #deadlineReason(): string {
    return `no successful renewal within renewDeadline (${this.#settings.renewDeadlineMs} ms)`;
  }

  /** Ends the election (first call wins) and leading, if leading (invariant 3's "ends"). */
  #finish(end: ElectionEnd, reason: string): void {
    this.#end ??= end;
    this.#wake?.();
    const leading = this.#leading;
    if (!leading) {
      this.#resolveEnded(this.#end);
      return;
    }
    this.#leading = undefined;
    this.#clock.clearTimeout(leading.deadlineTimer);
    leading.controller.abort(new Error(`stopped leading: ${reason}`));
    this.#options.leaderGauge?.set({ identity: this.#identity }, 0);
    this.#log.log(end === "lost" ? "warn" : "info", "stopped leading", { reason });
    try {
      this.#options.onStoppedLeading?.();
    } catch (error) {
      this.#log.error("onStoppedLeading failed", { error: describeError(error) });
    }
    this.#resolveEnded(this.#end);
  }

  /** Waits `ms`, or less when the election ends. */
  #sleep(ms: number): Promise<void> {
    if (this.#end !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        this.#clock.clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
