/**
 * The leader elector (src/operator/leader-election.ts) against the real API server: two electors in
 * this process on one Lease. Exactly one leads; release() hands over at the standby's next attempt; a
 * leader that stops renewing without releasing (a crash) is replaced after about the lease duration;
 * a Lease whose holder is changed by another writer makes the old leader stop. Short durations
 * (3 s / 2 s / 0.5 s) keep the test quick; the exact timing rules are in the unit tests.
 */
import { randomBytes } from "node:crypto";
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { expect } from "chai";
import { type ElectionEnd, LeaderElector } from "../../src/operator/leader-election.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import { createNamespace, eventually } from "./helpers.ts";

const SHORT = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, callTimeoutMs: 1000 };

interface Elector {
  identity: string;
  elector: LeaderElector;
  leading: boolean;
  startedAt: number | undefined;
  stoppedLeading: boolean;
  end: ElectionEnd | undefined;
}

describe("leader election on a Lease of the real API server", () => {
  let api: CoordinationV1Api;
  let namespace: string;
  const electors: Elector[] = [];
  /** How many electors led at the same time, at most, during the test: must never exceed 1. */
  let leadingNow = 0;
  let mostAtOnce = 0;

  before(async () => {
    const cluster = testCluster();
    namespace = await createNamespace(cluster, "leader");
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    api = kc.makeApiClient(CoordinationV1Api);
  });

  beforeEach(() => {
    leadingNow = 0;
    mostAtOnce = 0;
  });

  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.elector.stop()));
    expect(mostAtOnce, "electors leading at the same time").to.be.at.most(1);
  });

  function start(lease: string, name: string, settings: Partial<typeof SHORT> = {}): Elector {
    const e: Elector = {
      identity: `${name}-${randomBytes(3).toString("hex")}`,
      elector: undefined as unknown as LeaderElector,
      leading: false,
      startedAt: undefined,
      stoppedLeading: false,
      end: undefined,
    };
    e.elector = new LeaderElector({
      api,
      namespace,
      name: lease,
      identity: e.identity,
      ...SHORT,
      ...settings,
      onStartedLeading: () => {
        e.leading = true;
        e.startedAt = performance.now();
        leadingNow += 1;
        mostAtOnce = Math.max(mostAtOnce, leadingNow);
      },
      onStoppedLeading: () => {
        e.leading = false;
        e.stoppedLeading = true;
        leadingNow -= 1;
      },
    });
    void e.elector.run().then((end) => {
      e.end = end;
    });
    electors.push(e);
    return e;
  }

  async function holder(lease: string): Promise<string | undefined> {
    const found = await api.readNamespacedLease({ name: lease, namespace });
    return found.spec?.holderIdentity;
  }

  /** Waits until the Lease has been renewed `times` more times (its renewTime changed). */
  async function renewals(lease: string, times: number): Promise<void> {
    let last = "";
    let seen = -1;
    await eventually(`${times} renewals of Lease ${lease}`, async () => {
      const found = await api.readNamespacedLease({ name: lease, namespace });
      const renewTime = String(found.spec?.renewTime);
      if (renewTime !== last) {
        last = renewTime;
        seen += 1;
      }
      return seen >= times;
    });
  }

  it("exactly one of two candidates leads, and the Lease names it", async () => {
    const a = start("one", "a");
    const b = start("one", "b");
    const leader = await eventually("a leader", async () => [a, b].find((e) => e.leading));
    await renewals("one", 6); // a few seconds of renewing: the other must stay a standby
    expect([a, b].filter((e) => e.leading)).to.deep.equal([leader]);
    expect(await holder("one")).to.equal(leader.identity);
    expect([a, b].filter((e) => e.startedAt !== undefined)).to.have.length(1);
  });

  it("release() hands the Lease over at the standby's next attempt, long before it could expire", async () => {
    // A long lease: a handover by expiry would take at least 10 s.
    const settings = { leaseDurationMs: 10_000, renewDeadlineMs: 5_000, retryPeriodMs: 500 };
    const a = start("two", "a", settings);
    await eventually("a to lead", async () => a.leading);
    const b = start("two", "b", settings);
    await renewals("two", 2);
    expect(b.leading).to.equal(false);

    const released = performance.now();
    expect(await a.elector.release()).to.equal(true);
    expect(a.end).to.equal("released");
    expect(a.stoppedLeading).to.equal(true);
    await eventually("b to lead", async () => b.leading, 20_000);
    const handover = (b.startedAt ?? 0) - released;
    expect(handover, "handover after release (ms)").to.be.below(settings.leaseDurationMs);
    const lease = await api.readNamespacedLease({ name: "two", namespace });
    expect(lease.spec?.holderIdentity).to.equal(b.identity);
    expect(lease.spec?.leaseTransitions).to.equal(1);
  });

  it("a leader that stops renewing without releasing (a crash) is replaced after about the lease duration", async () => {
    const a = start("three", "a");
    await eventually("a to lead", async () => a.leading);
    const b = start("three", "b");
    await renewals("three", 2);

    const crashed = performance.now();
    await a.elector.stop(); // no release: the Lease still names a
    expect(await holder("three")).to.equal(a.identity);
    await eventually("b to lead", async () => b.leading, 30_000);
    const takeover = (b.startedAt ?? 0) - crashed;
    // b's clock started on a's last renewal, which a sent at most a retry period and a call before
    // stopping: taking over sooner would break the protocol.
    expect(takeover, "takeover after the crash (ms)").to.be.at.least(
      SHORT.leaseDurationMs - SHORT.retryPeriodMs - SHORT.callTimeoutMs,
    );
    expect(await holder("three")).to.equal(b.identity);
  });

  it("a Lease whose holder another writer changed makes the old leader stop", async () => {
    const a = start("four", "a");
    await eventually("a to lead", async () => a.leading);
    await renewals("four", 1);

    const lease = await api.readNamespacedLease({ name: "four", namespace });
    await api.replaceNamespacedLease({
      name: "four",
      namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: "intruder" } },
    });
    await eventually("a to stop leading", async () => a.end === "lost");
    expect(a.stoppedLeading).to.equal(true);
    expect(a.leading).to.equal(false);
    expect(await holder("four")).to.equal("intruder");
  });
});
