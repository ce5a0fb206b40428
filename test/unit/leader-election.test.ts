/**
 * The leader elector's invariants (src/operator/leader-election.ts), each attacked with a fake Lease
 * API that enforces resourceVersion like the API server (409 on a stale write) and a fake clock, so
 * every duration is exact. The last part proves the per-call timeout of kube-call.ts aborts a real
 * client-node request.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  ApiException,
  type ConfigurationOptions,
  CoordinationV1Api,
  type CoordinationV1ApiCreateNamespacedLeaseRequest,
  type CoordinationV1ApiReadNamespacedLeaseRequest,
  type CoordinationV1ApiReplaceNamespacedLeaseRequest,
  KubeConfig,
  type RequestContext,
  type V1Lease,
  type V1LeaseSpec,
} from "@kubernetes/client-node";
import { expect } from "chai";
import { Registry } from "prom-client";
import { createLeaderGauge } from "../../src/observability/metrics.ts";
import { KubeCallTimeoutError, withTimeout } from "../../src/operator/kube-call.ts";
import {
  type Clock,
  type ElectionEnd,
  electionSettings,
  LeaderElector,
  type LeaderElectorOptions,
  type LeaseApi,
} from "../../src/operator/leader-election.ts";

const NS = "ops";
const NAME = "sfn-operator-leader";
const WALL_ORIGIN = Date.UTC(2026, 0, 1);

/** Lets every pending promise continuation run (the fakes answer through microtasks only). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

class FakeClock implements Clock {
  #now = 0;
  #nextId = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }
  wallNow(): Date {
    return new Date(WALL_ORIGIN + this.#now);
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.#nextId += 1;
    this.#timers.set(this.#nextId, { at: this.#now + Math.max(0, ms), fn });
    return this.#nextId;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Moves time forward to `at`, firing due timers in order and letting their continuations run. */
  async advanceTo(at: number): Promise<void> {
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= at && (!next || entry[1].at < next[1].at)) next = entry;
      }
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
      await settle();
    }
    this.#now = Math.max(this.#now, at);
    await settle();
  }
}

type Op = "read" | "create" | "replace";

/** An in-memory Lease API: one Lease, resourceVersion checked on every replace, failures on demand. */
class FakeLeaseApi implements LeaseApi {
  lease: V1Lease | undefined;
  #version = 0;
  /** Every call: its operation, the answer's status, and the holder it wrote (writes). */
  readonly calls: Array<{ op: Op; status: number; holder?: string }> = [];
  /** When set, every call fails with this status, or never answers ("hang") until aborted. */
  failure: number | "hang" | undefined;
  /** Calls aborted by their signal (the per-call timeout reached the request). */
  aborted = 0;
  /** When set, writes wait for it (to line up two candidates on the same version). */
  writeGate: Promise<void> | undefined;
  /** When set, every call answers this late (on `clock`). */
  delay: { ms: number; clock: FakeClock } | undefined;

  get writes() {
    return this.calls.filter((c) => c.op !== "read");
  }

  /** Another writer (kubectl, a skewed peer) replaces the spec. */
  writeBehindBack(spec: V1LeaseSpec): void {
    if (!this.lease) throw new Error("no Lease");
    this.#store({ ...this.lease, spec });
  }

  async readNamespacedLease(
    param: CoordinationV1ApiReadNamespacedLeaseRequest,
    options?: ConfigurationOptions,
  ): Promise<V1Lease> {
    this.#checkTarget(param);
    await this.#answer("read", options);
    if (!this.lease) return this.#fail("read", 404, "not found");
    this.calls.push({ op: "read", status: 200 });
    return structuredClone(this.lease);
  }

  async createNamespacedLease(
    param: CoordinationV1ApiCreateNamespacedLeaseRequest,
    options?: ConfigurationOptions,
  ): Promise<V1Lease> {
    await this.#answer("create", options);
    await this.writeGate;
    if (param.namespace !== NS || param.body.metadata?.name !== NAME) throw new Error("wrong Lease");
    if (this.lease) return this.#fail("create", 409, "already exists");
    this.calls.push({ op: "create", status: 201, holder: param.body.spec?.holderIdentity ?? "" });
    return this.#store(param.body);
  }

  async replaceNamespacedLease(
    param: CoordinationV1ApiReplaceNamespacedLeaseRequest,
    options?: ConfigurationOptions,
  ): Promise<V1Lease> {
    this.#checkTarget(param);
    await this.#answer("replace", options);
    await this.writeGate;
    const version = param.body.metadata?.resourceVersion;
    if (version === undefined) throw new Error("test failure: a write without resourceVersion");
    if (!this.lease) return this.#fail("replace", 404, "not found");
    if (version !== this.lease.metadata?.resourceVersion) return this.#fail("replace", 409, "conflict");
    this.calls.push({ op: "replace", status: 200, holder: param.body.spec?.holderIdentity ?? "" });
    return this.#store(param.body);
  }

  #checkTarget(param: { name: string; namespace: string }): void {
    if (param.name !== NAME || param.namespace !== NS) throw new Error("wrong Lease");
  }

  /** Like the API server: a new resourceVersion, and the body as JSON (times become strings). */
  #store(body: V1Lease): V1Lease {
    this.#version += 1;
    const stored = JSON.parse(JSON.stringify(body)) as V1Lease;
    stored.metadata = {
      ...stored.metadata,
      name: NAME,
      namespace: NS,
      resourceVersion: String(this.#version),
    };
    this.lease = stored;
    return structuredClone(stored);
  }

  #fail(op: Op, status: number, message: string): never {
    this.calls.push({ op, status });
    throw new ApiException(status, message, { message }, {});
  }

  /** Applies `failure`; the signal comes from the per-call middleware, as fetch would get it. */
  async #answer(op: Op, options: ConfigurationOptions | undefined): Promise<void> {
    const delay = this.delay;
    if (delay) await new Promise<void>((resolve) => delay.clock.setTimeout(resolve, delay.ms));
    if (this.failure === undefined) return;
    if (this.failure !== "hang") this.#fail(op, this.failure, "injected failure");
    let signal: AbortSignal | undefined;
    const context = { setSignal: (s: AbortSignal) => (signal = s) } as unknown as RequestContext;
    await options?.middleware?.[0]?.pre(context).toPromise();
    if (!signal) throw new Error("test failure: no AbortSignal on the request");
    const aborted = signal;
    await new Promise((_, reject) =>
      aborted.addEventListener("abort", () => {
        this.aborted += 1;
        reject(aborted.reason);
      }),
    );
  }
}

/** An elector plus a record of what its callbacks saw. */
interface Candidate {
  elector: LeaderElector;
  clock: FakeClock;
  events: string[];
  signals: AbortSignal[];
  run: Promise<ElectionEnd>;
  ended: ElectionEnd | undefined;
}

const SHORT = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, callTimeoutMs: 400 };

function candidate(
  api: FakeLeaseApi,
  clock: FakeClock,
  identity: string,
  extra: Partial<LeaderElectorOptions> = {},
): Candidate {
  const events: string[] = [];
  const signals: AbortSignal[] = [];
  const elector = new LeaderElector({
    api,
    clock,
    namespace: NS,
    name: NAME,
    identity,
    ...SHORT,
    onStartedLeading: (signal) => {
      events.push(`started@${clock.now()}`);
      signals.push(signal);
    },
    onStoppedLeading: () => events.push(`stopped@${clock.now()}`),
    onNewLeader: (leader) => events.push(`leader:${leader}`),
    ...extra,
  });
  const c: Candidate = { elector, clock, events, signals, run: elector.run(), ended: undefined };
  void c.run.then((end) => {
    c.ended = end;
  });
  return c;
}

/** A Lease held by `holder`, as another process wrote it (its times from its own, skewed clock). */
function foreignSpec(holder: string, renewTime: string, transitions = 4): V1LeaseSpec {
  return {
    holderIdentity: holder,
    leaseDurationSeconds: 3,
    leaseTransitions: transitions,
    acquireTime: "2000-01-01T00:00:00.000000Z" as unknown as V1LeaseSpec["acquireTime"],
    renewTime: renewTime as unknown as V1LeaseSpec["renewTime"],
  };
}

function apiWithLease(spec: V1LeaseSpec): FakeLeaseApi {
  const api = new FakeLeaseApi();
  api.lease = { metadata: { name: NAME, namespace: NS, resourceVersion: "0" }, spec };
  return api;
}

describe("leader election", () => {
  const running: Candidate[] = [];
  afterEach(async () => {
    for (const c of running.splice(0)) {
      const stopped = c.elector.stop();
      await c.clock.advanceTo(c.clock.now() + 60_000); // lets a hung call time out
      await stopped;
    }
  });
  function track(c: Candidate): Candidate {
    running.push(c);
    return c;
  }

  describe("options", () => {
    it("defaults to client-go's 15 s / 10 s / 2 s and a call timeout of half the renew deadline", () => {
      expect(electionSettings({})).to.deep.equal({
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
        callTimeoutMs: 5_000,
      });
    });

    it("refuses leaseDuration <= renewDeadline", () => {
      expect(() => electionSettings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).to.throw(
        /leaseDurationMs \(10000\) must be greater than renewDeadlineMs \(10000\)/,
      );
    });

    it("refuses renewDeadline <= 1.2 x retryPeriod", () => {
      expect(() => electionSettings({ renewDeadlineMs: 2400, retryPeriodMs: 2000 })).to.throw(
        /renewDeadlineMs \(2400\) must be greater than 1.2 x retryPeriodMs \(2000\)/,
      );
      expect(() => electionSettings({ renewDeadlineMs: 2401, retryPeriodMs: 2000 })).not.to.throw();
    });

    it("refuses non-positive durations, a call timeout above the renew deadline and empty names", () => {
      expect(() => electionSettings({ retryPeriodMs: 0 })).to.throw(/retryPeriodMs must be a positive/);
      expect(() => electionSettings({ leaseDurationMs: Number.NaN })).to.throw(/leaseDurationMs must be/);
      expect(() => electionSettings({ callTimeoutMs: 10_001 })).to.throw(/callTimeoutMs \(10001\) must not/);
      const api = new FakeLeaseApi();
      expect(
        () => new LeaderElector({ api, namespace: NS, name: NAME, identity: "", onStartedLeading: () => {} }),
      ).to.throw(/identity must not be empty/);
      expect(
        () =>
          new LeaderElector({
            api,
            namespace: NS,
            name: NAME,
            identity: "a",
            leaseDurationMs: 5000,
            renewDeadlineMs: 6000,
            onStartedLeading: () => {},
          }),
      ).to.throw(/leaseDurationMs \(5000\) must be greater/);
    });
  });

  it("creates a missing Lease and leads at once; the gauge says so", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const registry = new Registry();
    const gauge = createLeaderGauge(registry);
    const a = track(candidate(api, clock, "a", { leaderGauge: gauge }));
    await clock.advanceTo(0);
    expect(a.elector.isLeader).to.equal(true);
    expect(a.events).to.deep.equal(["leader:a", "started@0"]);
    expect(api.lease?.spec).to.include({ holderIdentity: "a", leaseDurationSeconds: 3, leaseTransitions: 0 });
    expect(String(api.lease?.spec?.renewTime)).to.equal("2026-01-01T00:00:00.000000Z");
    expect(await registry.getSingleMetricAsString("sfn_operator_leader")).to.include(
      'sfn_operator_leader{identity="a"} 1',
    );
    // Renews every retryPeriod with one write on the version it wrote last (no read needed).
    await clock.advanceTo(2000);
    expect(api.calls.map((c) => c.op)).to.deep.equal(["read", "create", ...Array(4).fill("replace")]);
    expect(String(api.lease?.spec?.renewTime)).to.equal("2026-01-01T00:00:02.000000Z");
    expect(api.lease?.spec?.acquireTime).to.equal("2026-01-01T00:00:00.000000Z");
    await a.elector.stop();
    expect(await registry.getSingleMetricAsString("sfn_operator_leader")).to.include(
      'sfn_operator_leader{identity="a"} 0',
    );
  });

  it("never takes a Lease that is being renewed, however old its renewTime (skewed clocks)", async () => {
    const clock = new FakeClock();
    // The holder's clock is 26 years behind: its renewTime looks ancient, yet it renews.
    const api = apiWithLease(foreignSpec("b", "2000-01-01T00:00:00.000000Z"));
    const a = track(candidate(api, clock, "a"));
    for (let t = 0; t <= 10 * SHORT.leaseDurationMs; t += 1000) {
      api.writeBehindBack(foreignSpec("b", new Date(Date.UTC(2000, 0, 1) + t).toISOString()));
      await clock.advanceTo(t);
      expect(a.elector.isLeader, `leading at ${t} ms`).to.equal(false);
    }
    expect(api.writes).to.deep.equal([]);
    expect(a.events).to.deep.equal(["leader:b"]);
    expect(a.elector.leader).to.equal("b");
  });

  it("takes an unchanged Lease after exactly leaseDuration on its own clock, not before", async () => {
    const clock = new FakeClock();
    // The holder's clock is 74 years ahead: by its timestamps the Lease is valid for ages.
    const api = apiWithLease(foreignSpec("b", "2100-01-01T00:00:00.000000Z"));
    const a = track(candidate(api, clock, "a", { retryPeriodMs: 1000, renewDeadlineMs: 2000 }));
    await clock.advanceTo(2999);
    expect(a.elector.isLeader).to.equal(false);
    expect(api.writes).to.deep.equal([]);
    await clock.advanceTo(3000);
    expect(a.elector.isLeader).to.equal(true);
    expect(a.events).to.deep.equal(["leader:b", "leader:a", "started@3000"]);
    expect(api.lease?.spec).to.include({ holderIdentity: "a", leaseTransitions: 5 });
  });

  it("counts leaseDuration from the last change it saw, not from its first look", async () => {
    const clock = new FakeClock();
    const api = apiWithLease(foreignSpec("b", "2100-01-01T00:00:00.000000Z"));
    const a = track(candidate(api, clock, "a", { retryPeriodMs: 1000, renewDeadlineMs: 2000 }));
    await clock.advanceTo(1500);
    api.writeBehindBack(foreignSpec("b", "2100-01-01T00:00:01.000000Z")); // b's last renewal
    await clock.advanceTo(4999); // seen changed at 2000: not before 5000
    expect(a.elector.isLeader).to.equal(false);
    await clock.advanceTo(5000);
    expect(a.elector.isLeader).to.equal(true);
  });

  it("waits for the longer of the record's leaseDurationSeconds and its own", async () => {
    const clock = new FakeClock();
    const api = apiWithLease({ ...foreignSpec("b", "2100-01-01T00:00:00.000000Z"), leaseDurationSeconds: 7 });
    const a = track(candidate(api, clock, "a"));
    await clock.advanceTo(6999);
    expect(a.elector.isLeader).to.equal(false);
    await clock.advanceTo(7000);
    expect(a.elector.isLeader).to.equal(true);
  });

  it("two candidates writing on the same resourceVersion: exactly one wins, and stays the only one", async () => {
    const clock = new FakeClock();
    const api = apiWithLease({ holderIdentity: "", leaseDurationSeconds: 1, leaseTransitions: 2 });
    let openGate: () => void = () => {};
    api.writeGate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const a = track(candidate(api, clock, "a"));
    const b = track(candidate(api, clock, "b"));
    await clock.advanceTo(0);
    expect(api.calls).to.deep.equal([
      { op: "read", status: 200 },
      { op: "read", status: 200 },
    ]);
    openGate();
    await clock.advanceTo(0);
    const writes = api.calls.filter((c) => c.op === "replace");
    expect(writes.map((w) => w.status).sort()).to.deep.equal([200, 409]);
    const leaders = () => [a, b].filter((c) => c.elector.isLeader);
    expect(leaders()).to.have.length(1);
    const winner = leaders()[0];
    expect(api.lease?.spec?.holderIdentity).to.equal(winner === a ? "a" : "b");
    expect(api.lease?.spec?.leaseTransitions).to.equal(3);
    for (let t = 500; t <= 20_000; t += 500) {
      await clock.advanceTo(t);
      expect(leaders(), `at ${t} ms`).to.deep.equal([winner]);
    }
  });

  it("a leader whose renewals fail stops at renewDeadline after its last successful renewal", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a", { leaseDurationMs: 4000 }));
    await clock.advanceTo(1000); // renewals at 500 and 1000 succeed
    api.failure = 500;
    await clock.advanceTo(2999);
    expect(a.elector.isLeader).to.equal(true);
    expect(a.signals[0]?.aborted).to.equal(false);
    await clock.advanceTo(3000);
    expect(a.elector.isLeader).to.equal(false);
    expect(a.signals[0]?.aborted).to.equal(true);
    expect(a.events).to.deep.equal(["leader:a", "started@0", "stopped@3000"]);
    expect(a.ended).to.equal("lost");
    // It stops trying: the process exits and restarts as a candidate.
    const calls = api.calls.length;
    await clock.advanceTo(10_000);
    expect(api.calls.length).to.equal(calls);
  });

  it("a leader whose renewals hang stops at renewDeadline; each call is aborted at its timeout", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a", { leaseDurationMs: 4000, callTimeoutMs: 1500 }));
    await clock.advanceTo(1000);
    api.failure = "hang";
    await clock.advanceTo(2999);
    expect(a.elector.isLeader).to.equal(true);
    await clock.advanceTo(3000); // the renewal started at 1500 still hangs: the timer decides
    expect(a.events).to.deep.equal(["leader:a", "started@0", "stopped@3000"]);
    expect(a.ended).to.equal("lost");
    await clock.advanceTo(3100);
    expect(api.aborted).to.equal(1); // the hung renewal was aborted at 1500 + 1500
  });

  it("counts the renew deadline from the start of the last successful write, not its answer", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a", { leaseDurationMs: 4000 }));
    await clock.advanceTo(0);
    api.delay = { ms: 300, clock }; // the renewal sent at 500 is answered at 800
    await clock.advanceTo(800);
    expect(api.lease?.spec?.renewTime).to.equal("2026-01-01T00:00:00.500000Z");
    api.failure = 500;
    await clock.advanceTo(2499);
    expect(a.elector.isLeader).to.equal(true);
    await clock.advanceTo(2500);
    expect(a.events).to.deep.equal(["leader:a", "started@0", "stopped@2500"]);
  });

  it("an acquisition slower than renewDeadline does not start leading", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    api.delay = { ms: 1100, clock }; // read + create: 2200 ms > renewDeadline
    const a = track(candidate(api, clock, "a", { callTimeoutMs: 2000 }));
    await clock.advanceTo(2200);
    expect(api.lease?.spec?.holderIdentity).to.equal("a"); // written, but too late to act on
    expect(a.elector.isLeader).to.equal(false);
    api.delay = undefined;
    await clock.advanceTo(2700); // the next attempt renews its own record in time
    expect(a.events).to.deep.equal(["leader:a", "started@2700"]);
  });

  it("a renewal that succeeds only after the deadline does not extend leading", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    // callTimeout = renewDeadline: one slow call can outlast the deadline.
    const a = track(candidate(api, clock, "a", { callTimeoutMs: 2000 }));
    await clock.advanceTo(0);
    api.delay = { ms: 1800, clock }; // the renewal sent at 500 succeeds at 2300
    await clock.advanceTo(1999);
    expect(a.elector.isLeader).to.equal(true);
    await clock.advanceTo(2000);
    expect(a.elector.isLeader).to.equal(false);
    expect(a.ended).to.equal("lost"); // at once, though its renewal is still on its way
    await clock.advanceTo(2300);
    expect(api.lease?.spec?.renewTime).to.equal("2026-01-01T00:00:00.500000Z"); // it did succeed...
    await clock.advanceTo(10_000);
    expect(a.events).to.deep.equal(["leader:a", "started@0", "stopped@2000"]); // ...and changed nothing
    expect(api.calls.length).to.equal(3);
  });

  it("a leader stops at once when the Lease names another holder (edited behind its back)", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a"));
    await clock.advanceTo(1000);
    api.writeBehindBack(foreignSpec("intruder", "2026-01-01T00:00:01.000000Z"));
    await clock.advanceTo(1500); // its next renewal gets 409, reads, sees the intruder
    expect(a.events).to.deep.equal(["leader:a", "started@0", "leader:intruder", "stopped@1500"]);
    expect(a.ended).to.equal("lost");
    expect(api.lease?.spec?.holderIdentity).to.equal("intruder");
  });

  it("a leader stops at once when its Lease is deleted, and does not re-create it", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a"));
    await clock.advanceTo(1000);
    api.lease = undefined;
    await clock.advanceTo(1500);
    expect(a.events).to.deep.equal(["leader:a", "started@0", "stopped@1500"]);
    expect(a.ended).to.equal("lost");
    await clock.advanceTo(5000);
    expect(api.lease).to.equal(undefined);
  });

  it("release() ends leading first, then lets a standby take over at its next attempt", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a"));
    await clock.advanceTo(100);
    const b = track(candidate(api, clock, "b"));
    await clock.advanceTo(1000);
    expect(b.elector.isLeader).to.equal(false);

    let writesWhenStopped = -1;
    a.events.push = (...items: string[]) => {
      if (items.some((e) => e.startsWith("stopped"))) writesWhenStopped = api.writes.length;
      return Array.prototype.push.apply(a.events, items);
    };
    const writesBefore = api.writes.length;
    expect(await a.elector.release()).to.equal(true);
    expect(writesWhenStopped).to.equal(writesBefore); // stopped before the releasing write
    expect(a.ended).to.equal("released");
    expect(api.lease?.spec).to.include({ holderIdentity: "", leaseDurationSeconds: 1, leaseTransitions: 0 });

    await clock.advanceTo(1100); // b's next attempt, far below leaseDuration
    expect(b.elector.isLeader).to.equal(true);
    expect(api.lease?.spec).to.include({ holderIdentity: "b", leaseTransitions: 1 });
  });

  it("release() by a process that does not hold the Lease writes nothing", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a"));
    const b = track(candidate(api, clock, "b"));
    await clock.advanceTo(1000);
    const writes = api.writes.length;
    expect(await b.elector.release()).to.equal(false);
    expect(api.writes.length).to.equal(writes);
    expect(b.events).to.deep.equal(["leader:a"]); // never led, so never "stopped"
    await clock.advanceTo(2000);
    expect(a.elector.isLeader).to.equal(true);
    expect(api.lease?.spec?.holderIdentity).to.equal("a");
  });

  it("release() after losing the Lease to another writer leaves the new holder alone", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a"));
    await clock.advanceTo(1000);
    api.writeBehindBack(foreignSpec("c", "2026-01-01T00:00:01.000000Z"));
    expect(await a.elector.release()).to.equal(false);
    expect(api.lease?.spec?.holderIdentity).to.equal("c");
    expect(api.calls.slice(-2)).to.deep.equal([
      { op: "replace", status: 409 },
      { op: "read", status: 200 },
    ]);
  });

  it("a leader that stops without releasing (a crash) is replaced after leaseDuration", async () => {
    const clock = new FakeClock();
    const api = new FakeLeaseApi();
    const a = track(candidate(api, clock, "a"));
    const b = track(candidate(api, clock, "b"));
    await clock.advanceTo(1000); // a's last renewal; b sees it at 1000
    await a.elector.stop();
    expect(a.ended).to.equal("stopped");
    expect(api.lease?.spec?.holderIdentity).to.equal("a");
    await clock.advanceTo(3999);
    expect(b.elector.isLeader).to.equal(false);
    await clock.advanceTo(4000);
    expect(b.elector.isLeader).to.equal(true);
  });
});

describe("kube-call withTimeout", () => {
  it("aborts a real client-node request at the timeout (the server sees the connection close)", async () => {
    let closed = 0;
    let userAgent = "";
    const server = http.createServer((request) => {
      userAgent = String(request.headers["user-agent"]);
      request.socket.on("close", () => {
        closed += 1;
      });
      // never answers
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: "u" }],
        contexts: [{ name: "x", cluster: "c", user: "u" }],
        currentContext: "x",
      });
      const api = kc.makeApiClient(CoordinationV1Api);
      const error = await withTimeout("read Lease x/y", 200, (options) =>
        api.readNamespacedLease({ name: "y", namespace: "x" }, options),
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(KubeCallTimeoutError);
      expect(String(error)).to.include("read Lease x/y: no answer from the API server within 200 ms");
      const deadline = Date.now() + 5000;
      while (closed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(closed).to.equal(1);
      expect(userAgent).to.match(/kubernetes-client-javascript/); // the client's own middleware still ran
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("passes the answer through when it comes in time", async () => {
    expect(await withTimeout("x", 1000, async () => 42)).to.equal(42);
  });
});
