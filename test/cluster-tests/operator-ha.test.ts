/**
 * The operator's high availability and robustness, against the real control plane with real
 * operator processes (the CLI, with the ServiceAccount token of exactly the RBAC it ships):
 * two processes and one leader; the leader killed (SIGKILL) or stopped (SIGTERM) and the standby
 * taking over; the API server restarted under a running operator; an operator restarted over a
 * settled cluster writing nothing; an operator whose ServiceAccount lacks a rule failing visibly.
 *
 * Each test has its own Lease (SFN_LEASE_NAME) and its own namespace of sources, and its operators
 * watch only that namespace (SFN_WATCH_NAMESPACES): a test never inherits another's leader, and
 * sources left by other tests cannot make writes that a test counts. Timings are the fixture's
 * (lease 4 s, renew deadline 3 s, retry period 0.5 s) unless a test says otherwise; the bounds
 * asserted on takeovers are the protocol's figure plus a margin for a loaded 2-core machine, each
 * explained where it is asserted.
 */
import {
  KubeConfig,
  type V1Deployment,
  type V1Lease,
  type V1PolicyRule,
  Watch,
} from "@kubernetes/client-node";
import { expect } from "chai";
import type { Context } from "mocha";
import { rbacObjects } from "../../src/operator/rbac.ts";
import type { LocalCluster } from "../support/cluster.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import {
  getSource,
  OperatorFixture,
  type OperatorProcess,
  patchSpec,
  service,
  source,
  waitForCondition,
} from "../support/operator.ts";
import { apply, eventually, getJson } from "./helpers.ts";

/** The fixture's election timings (test/support/operator.ts), for the bounds below. */
const LEASE_MS = 4_000;
const RETRY_MS = 500;
/** The elector's call timeout: renew deadline (3 s) / 2. */
const CALL_TIMEOUT_MS = 1_500;

/** The sum of every series of a metric family in a /metrics text (0 when it has none). */
function sumOf(metrics: string, name: string): number {
  let sum = 0;
  for (const line of metrics.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

async function readyz(operator: OperatorProcess): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${operator.metricsPort}/readyz`);
  await response.text();
  return response.status;
}

/** Whether the process leads; false while it cannot answer (not listening yet, or gone). */
async function leads(operator: OperatorProcess): Promise<boolean> {
  return operator.isLeader().catch(() => false);
}

describe("operator: two processes, takeovers, API server restart, restart without writes", function () {
  this.timeout(240_000);
  let fixture: OperatorFixture;

  before(async function () {
    this.timeout(120_000);
    fixture = await OperatorFixture.start(testCluster());
  });

  afterEach(async function (this: Context) {
    if (this.currentTest?.state === "failed") console.error(fixture.outputs(200));
    await fixture.stopOperators();
  });

  after(async () => {
    await fixture?.close();
  });

  /** A namespace of sources and the environment of operators that elect on their own Lease there. */
  async function scope(prefix: string): Promise<{ namespace: string; env: NodeJS.ProcessEnv }> {
    const namespace = await fixture.sourceNamespace(prefix);
    // The Lease lives in the operator's namespace; one per test, named after the test's namespace.
    return { namespace, env: { SFN_LEASE_NAME: `lease-${namespace}`, SFN_WATCH_NAMESPACES: namespace } };
  }

  function lease(env: NodeJS.ProcessEnv): Promise<V1Lease | undefined> {
    return getJson<V1Lease>(testCluster(), ["lease", "-n", fixture.namespace, env.SFN_LEASE_NAME ?? ""]);
  }

  function deployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    return getJson<V1Deployment>(testCluster(), ["deployment", "-n", namespace, `${name}-poller`]);
  }

  /** A Service and a source of `maxConcurrency` (one loop per poller: replicas = maxConcurrency). */
  async function createSource(namespace: string, name: string, maxConcurrency = 1): Promise<void> {
    await apply(testCluster(), [
      service(namespace, "target-svc"),
      source(namespace, name, {
        // Unique per namespace: one activity has one source per Redis (ActivityInUse).
        activityName: `${namespace}-${name}`,
        target: { service: "target-svc", path: "/step" },
        maxConcurrency,
      }),
    ]);
  }

  async function setLimit(namespace: string, name: string, maxConcurrency: number): Promise<void> {
    await patchSpec(testCluster(), namespace, name, { maxConcurrency });
  }

  function replicas(namespace: string, name: string, wanted: number, timeoutMs = 60_000) {
    return eventually(
      `${namespace}/${name}-poller with ${wanted} replicas`,
      async () => {
        const current = await deployment(namespace, name);
        return current?.spec?.replicas === wanted ? current : undefined;
      },
      timeoutMs,
    );
  }

  /** The one leader of `operators`, once one leads and every other answers as a standby. */
  function theLeader(operators: OperatorProcess[], timeoutMs = 60_000): Promise<OperatorProcess> {
    return eventually(
      "exactly one leader",
      async () => {
        const states = await Promise.all(operators.map((operator) => operator.isLeader()));
        const leaders = operators.filter((_, index) => states[index]);
        return leaders.length === 1 ? leaders[0] : undefined;
      },
      timeoutMs,
    );
  }

  /** Polls `operator` until it leads; returns performance.now() of the first poll that saw it lead. */
  async function whenLeading(operator: OperatorProcess, timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (await leads(operator)) return performance.now();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${operator.identity} did not lead within ${timeoutMs} ms`);
  }

  /** Two operators, the leader found, and the standby seen to know it (it read the Lease). */
  async function pair(env: NodeJS.ProcessEnv, names: [string, string]) {
    const a = await fixture.startOperator({ identity: names[0], env });
    const b = await fixture.startOperator({ identity: names[1], env });
    const leader = await theLeader([a, b]);
    const standby = leader === a ? b : a;
    await standby.cli.waitForLog((record) => record.message === "another process leads", 30_000);
    return { leader, standby };
  }

  /**
   * Waits until `operator` has reconciled at least `atLeast` times and its count has not moved for
   * 3 s, which covers three reads of the task figures (SFN_STATUS_INTERVAL 1 s), each of which may
   * queue the sources whose figures it sees for the first time. Bounded: 90 s.
   */
  async function settled(operator: OperatorProcess, atLeast: number): Promise<void> {
    let last = -1;
    let stableSince = performance.now();
    await eventually(
      `the reconcile count of ${operator.identity} to settle`,
      async () => {
        const count = sumOf(await operator.metrics(), "sfn_operator_reconcile_total");
        const now = performance.now();
        if (count !== last) {
          last = count;
          stableSince = now;
        }
        return count >= atLeast && now - stableSince >= 3_000;
      },
      90_000,
    );
  }

  it("two processes: exactly one leads (metric and Lease), only it writes, both are ready", async () => {
    const cluster = testCluster();
    const { namespace, env } = await scope("ha-two");
    const { leader, standby } = await pair(env, ["two-a", "two-b"]);

    // Sample both gauges while the source is created and changed: never two leaders, never a change.
    let sampling = true;
    const samples: string[] = [];
    const sampler = (async () => {
      while (sampling) {
        const states = await Promise.all([leads(leader), leads(standby)]);
        samples.push(states.map((state) => (state ? "L" : "-")).join(""));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    try {
      expect((await lease(env))?.spec?.holderIdentity).to.equal(leader.identity);
      expect(await readyz(leader), "the leader's /readyz").to.equal(200);
      expect(await readyz(standby), "the standby's /readyz (a standby is healthy)").to.equal(200);

      await createSource(namespace, "work", 2);
      await replicas(namespace, "work", 2);
      await waitForCondition(cluster, namespace, "work", "Ready", "True");
      await setLimit(namespace, "work", 3);
      await replicas(namespace, "work", 3);
      await eventually("status of generation 2", async () => {
        const status = (await getSource(cluster, namespace, "work"))?.status;
        return status?.observedGeneration === 2 && status.desiredPollers === 3;
      });
    } finally {
      sampling = false;
      await sampler;
    }
    expect(new Set(samples), "leadership samples (leader, standby)").to.deep.equal(new Set(["L-"]));
    // Not vacuous: sampled at least once during the changes (how often depends on the machine's speed).
    expect(samples.length).to.be.at.least(1);

    // The same counters read on both: the leader's prove they count; the standby's are all 0.
    const leaderWrites = await leader.writes();
    expect(leaderWrites.finalizers, "leader: finalizer writes").to.be.at.least(1);
    expect(leaderWrites.deployments, "leader: Deployment applies").to.be.at.least(2);
    expect(leaderWrites.status, "leader: status writes").to.be.at.least(1);
    expect(await standby.writes(), "the standby's writes").to.deep.equal({
      finalizers: 0,
      deployments: 0,
      status: 0,
    });
    expect(sumOf(await standby.metrics(), "sfn_operator_reconcile_total"), "standby reconciles").to.equal(0);
    expect(sumOf(await leader.metrics(), "sfn_operator_reconcile_total"), "leader reconciles").to.be.above(0);
    expect((await lease(env))?.spec?.holderIdentity).to.equal(leader.identity);

    // A standby stopped (SIGTERM) exits 0 and leaves the Lease alone: it never held it.
    const renewedBefore = (await lease(env))?.metadata?.resourceVersion;
    expect(await standby.cli.stop(), "how the standby exited").to.deep.equal({ code: 0, signal: null });
    expect(standby.cli.logs().some((record) => record.message === "released the Lease")).to.equal(false);
    await eventually("a renewal by the leader after the standby's exit", async () => {
      const current = await lease(env);
      return (
        current?.metadata?.resourceVersion !== renewedBefore &&
        current?.spec?.holderIdentity === leader.identity
      );
    });
    expect(await leader.isLeader()).to.equal(true);
  });

  it("SIGKILL of the leader: the standby takes over after the lease duration and reconciles what changed", async () => {
    const cluster = testCluster();
    const { namespace, env } = await scope("ha-kill");
    await createSource(namespace, "work", 1);
    const { leader, standby } = await pair(env, ["kill-a", "kill-b"]);
    await waitForCondition(cluster, namespace, "work", "Ready", "True");

    const killedAt = performance.now();
    leader.cli.child.kill("SIGKILL");
    // A change while nobody leads: only the new leader can reconcile it.
    await setLimit(namespace, "work", 2);
    const tookOverAt = await whenLeading(standby, 60_000);
    const takeoverMs = tookOverAt - killedAt;
    console.log(`      takeover after SIGKILL: ${Math.round(takeoverMs)} ms (lease ${LEASE_MS} ms)`);
    expect((await leader.cli.exited).signal).to.equal("SIGKILL");

    // Lower bound, the protocol's safety: the standby's clock on the last record started when it
    // read that record, no earlier than the leader sent it, and the leader sent its last renewal at
    // most a retry period and one call before the kill. Taking over sooner would mean two leaders.
    expect(takeoverMs, "takeover after SIGKILL (ms)").to.be.at.least(LEASE_MS - RETRY_MS - CALL_TIMEOUT_MS);
    // Upper bound: the lease duration, then the standby's next attempt (a retry period) and its read
    // and write; 6 s more covers a loaded 2-core machine (the write, our 50 ms polling of /metrics,
    // and the event loops of three node processes and the control plane competing for the cores).
    expect(takeoverMs, "takeover after SIGKILL (ms)").to.be.below(LEASE_MS + 6_000);

    expect((await lease(env))?.spec?.holderIdentity).to.equal(standby.identity);
    await replicas(namespace, "work", 2);
    await eventually("status of generation 2", async () => {
      const status = (await getSource(cluster, namespace, "work"))?.status;
      return status?.observedGeneration === 2 && status.desiredPollers === 2;
    });
    expect((await standby.writes()).deployments, "the new leader's Deployment applies").to.be.at.least(1);
  });

  it("SIGTERM of the leader: it exits 0 releasing the Lease, and the standby takes over at once", async () => {
    const cluster = testCluster();
    const { namespace, env } = await scope("ha-term");
    await createSource(namespace, "work", 1);
    const { leader, standby } = await pair(env, ["term-a", "term-b"]);
    await waitForCondition(cluster, namespace, "work", "Ready", "True");

    // Every version of the Lease, as the API server's watch delivers them (each one, in order): the
    // released version is short-lived (the standby takes it within a retry period), so a read after
    // the fact could miss it.
    const holders: string[] = [];
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cluster.kubeconfig);
    const watch = await new Watch(kubeConfig).watch(
      `/apis/coordination.k8s.io/v1/namespaces/${fixture.namespace}/leases`,
      { fieldSelector: `metadata.name=${env.SFN_LEASE_NAME}` },
      (_phase, object: V1Lease) => {
        holders.push(object.spec?.holderIdentity ?? "");
      },
      () => {},
    );
    try {
      await eventually("the Lease from the watch", async () => holders.length > 0, 10_000);

      const stoppedAt = performance.now();
      leader.cli.child.kill("SIGTERM");
      const tookOverAt = await whenLeading(standby, 60_000);
      const handoverMs = tookOverAt - stoppedAt;
      console.log(`      takeover after SIGTERM: ${Math.round(handoverMs)} ms (lease ${LEASE_MS} ms)`);
      expect(await leader.cli.exited, "how the leader exited").to.deep.equal({ code: 0, signal: null });
      expect(leader.cli.logs().some((record) => record.message === "released the Lease")).to.equal(true);
      await eventually(
        "the standby's acquisition in the watch",
        async () => holders.at(-1) === standby.identity,
      );

      // The leader's renewals, then exactly one released version, then the standby's.
      const changes = holders.filter((holder, index) => index === 0 || holder !== holders[index - 1]);
      expect(changes, "holders of the Lease in order").to.deep.equal([leader.identity, "", standby.identity]);
      // The handover needs no expiry: the leader stops (finishing its reconciles in flight, stopping
      // its informers, one write to release) and the standby takes the empty Lease at its next
      // attempt, a retry period later. 3 s for the leader's shutdown and the standby's write on a
      // loaded machine; the lease duration (4 s) is not needed: no expiry is waited for.
      expect(handoverMs, "takeover after SIGTERM (ms)").to.be.below(3_000 + RETRY_MS);
    } finally {
      watch.abort();
    }

    await setLimit(namespace, "work", 2);
    await replicas(namespace, "work", 2);
    expect((await standby.writes()).deployments, "the new leader's Deployment applies").to.be.at.least(1);
  });

  it("API server restart: the same process recovers its watches and reconciles what changed", async function () {
    const cluster = testCluster();
    if (cluster.kind !== "local") this.skip();
    const { namespace, env } = await scope("ha-api");
    // A leader that cannot renew for the renew deadline exits by design (exit 1: the Deployment
    // restarts it as a candidate), and with the fixture's 3 s any restart of the API server would
    // cost the Lease: what is tested here is the same process riding out an outage. So a renew
    // deadline longer than the outage (stopping takes up to 5 s, starting again 5 to 20 s on a
    // loaded machine), with leader election still on, so that the elector rides it out too. No
    // periodic relist within the test (10 minutes): the watches' recovery must do the catching up.
    const operator = await fixture.startOperator({
      identity: "api-a",
      env: {
        ...env,
        SFN_LEASE_DURATION: "90s",
        SFN_RENEW_DEADLINE: "60s",
        SFN_RETRY_PERIOD: "1s",
        SFN_RESYNC_PERIOD: "10m",
      },
    });
    await createSource(namespace, "scaled", 1);
    await createSource(namespace, "repaired", 1);
    await waitForCondition(cluster, namespace, "scaled", "Ready", "True");
    await waitForCondition(cluster, namespace, "repaired", "Ready", "True");
    expect(await operator.isLeader()).to.equal(true);
    const pid = operator.cli.child.pid;
    const repairedBefore = await deployment(namespace, "repaired");
    const restartsBefore = sumOf(await operator.metrics(), "sfn_operator_informer_restarts_total");

    await (cluster as LocalCluster).restartApiServer();
    // What changed "meanwhile": nothing can change while the API server is down, so right after.
    await createSource(namespace, "created", 2);
    await setLimit(namespace, "scaled", 3);
    await cluster.kubectl(["delete", "deployment", "-n", namespace, "repaired-poller", "--wait=true"]);

    // The informers restart with a backoff of up to 30 s after a run of failures: 90 s each.
    await replicas(namespace, "created", 2, 90_000);
    await replicas(namespace, "scaled", 3, 90_000);
    const repaired = await eventually(
      "repaired-poller put back",
      async () => {
        const current = await deployment(namespace, "repaired");
        return current && current.metadata?.uid !== repairedBefore?.metadata?.uid ? current : undefined;
      },
      90_000,
    );
    expect(repaired.spec?.replicas).to.equal(1);
    await waitForCondition(cluster, namespace, "created", "Ready", "True", undefined, 90_000);

    expect(operator.cli.child.exitCode, "the operator exited").to.equal(null);
    expect(operator.cli.child.signalCode).to.equal(null);
    expect(operator.cli.child.pid).to.equal(pid);
    expect(await operator.isLeader(), "still the leader").to.equal(true);
    expect(
      sumOf(await operator.metrics(), "sfn_operator_informer_restarts_total"),
      "informer restarts (the watches did break)",
    ).to.be.above(restartsBefore);
  });

  it("an operator restarted over settled sources converges without writing anything", async () => {
    const cluster = testCluster();
    const { namespace, env } = await scope("ha-restart");
    const names = ["s1", "s2", "s3", "s4", "s5"];
    const first = await fixture.startOperator({ identity: "restart-a", env });
    for (const [index, name] of names.entries()) await createSource(namespace, name, index + 1);
    for (const [index, name] of names.entries()) {
      await eventually(`${name} Ready with all its pollers`, async () => {
        const status = (await getSource(cluster, namespace, name))?.status;
        const ready = status?.conditions?.find((condition) => condition.type === "Ready");
        return ready?.status === "True" && status?.pollers === `${index + 1}/${index + 1}`;
      });
    }
    // Its own last writes done (statuses that follow the pods), so that the next has nothing left.
    await settled(first, names.length);
    expect(await first.cli.stop(), "the first operator's exit").to.deep.equal({ code: 0, signal: null });

    /** The sources' statuses and every object's resourceVersion. */
    const snapshot = async () => {
      const list = await getJson<{
        items: Array<{ kind: string; metadata: { name: string; resourceVersion: string }; status?: unknown }>;
      }>(cluster, ["stepfunctionsources,deployments", "-n", namespace]);
      const items = list?.items ?? [];
      return {
        statuses: Object.fromEntries(
          items
            .filter((item) => item.kind === "StepFunctionSource")
            .map((item) => [item.metadata.name, item.status]),
        ),
        versions: Object.fromEntries(
          items.map((item) => [`${item.kind}/${item.metadata.name}`, item.metadata.resourceVersion]),
        ),
      };
    };
    const before = await snapshot();
    expect(Object.keys(before.versions)).to.have.length(2 * names.length);

    const second = await fixture.startOperator({ identity: "restart-b", env });
    await second.cli.waitForLog((record) => record.message === "caches synced; reconciling", 60_000);
    await settled(second, names.length);
    expect(await second.isLeader()).to.equal(true);
    // The same state (the statuses first: their diff says what a write would have changed), no
    // object changed at all, and no write sent, not even one the API server found to change nothing.
    const after = await snapshot();
    expect(after.statuses, "the sources' statuses").to.deep.equal(before.statuses);
    expect(after.versions, "resourceVersions of the sources and Deployments").to.deep.equal(before.versions);
    expect(await second.writes(), "writes of the restarted operator").to.deep.equal({
      finalizers: 0,
      deployments: 0,
      status: 0,
    });
    // Nor an event: nothing changed, so no condition made a transition (events are not in writes).
    const events = await getJson<{ items: Array<{ reportingInstance?: string; reason: string }> }>(cluster, [
      "events",
      "-n",
      namespace,
    ]);
    const own = (events?.items ?? []).filter((event) => event.reportingInstance === second.identity);
    expect(
      own.map((event) => event.reason),
      "events of the restarted operator",
    ).to.deep.equal([]);
    const firstEvents = (events?.items ?? []).filter((event) => event.reportingInstance === first.identity);
    expect(firstEvents.length, "events of the first operator (the check sees events)").to.be.above(0);
  });

  it("an operator whose ServiceAccount lacks a rule fails visibly", async () => {
    const cluster = testCluster();
    const { namespace, env } = await scope("ha-rbac");
    // The shipped rules for one watched namespace, less the Deployments rule: a chart that forgot it.
    const account = "limited";
    const objects = rbacObjects({
      name: `limited-${namespace}`,
      namespace: fixture.namespace,
      serviceAccount: account,
      watchNamespaces: [namespace],
    }) as Array<{ kind: string; rules?: V1PolicyRule[] }>;
    for (const object of objects) {
      if (
        object.kind === "Role" &&
        object.rules?.some((rule) => rule.resources?.includes("stepfunctionsources"))
      )
        object.rules = object.rules.filter((rule) => !rule.resources?.includes("deployments"));
    }
    await apply(cluster, [
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: account, namespace: fixture.namespace } },
      ...objects,
    ]);
    const kubeconfig = await cluster.serviceAccountKubeconfig(fixture.namespace, account);
    await createSource(namespace, "work", 1);
    // The caches must fill within 4 API timeouts: 2 s keeps the test short (8 s).
    const operator = await fixture.startOperator({
      identity: "rbac-a",
      env: { ...env, KUBECONFIG: kubeconfig, SFN_API_TIMEOUT: "2s" },
    });
    // The informer's warning names what is forbidden, at once (not only "HTTP 403").
    await operator.cli.waitForLog(
      (record) =>
        record.message === "list/watch failed: restarting" &&
        String(record.informer).startsWith("deployments/") &&
        /deployments\.apps is forbidden: .* cannot list resource "deployments"/.test(String(record.error)),
      30_000,
    );
    // Then the leader does not sit on the Lease doing nothing: it exits 1, saying why, and hands the
    // Lease over. Bounded by the 8 s of the sync deadline plus a stop; 60 s on a loaded machine.
    const exited = await Promise.race([
      operator.cli.exited,
      new Promise<"running">((resolve) => setTimeout(resolve, 60_000, "running")),
    ]);
    expect(exited, "how the operator ended").to.deep.equal({ code: 1, signal: null });
    const failure = operator.cli.logs().find((record) => record.message === "the controller could not start");
    expect(String(failure?.error), "the error logged").to.match(
      /caches did not fill within 8 s .*deployments\/ha-rbac-\w+ \(HTTP 403: deployments\.apps is forbidden/,
    );
    expect((await lease(env))?.spec?.holderIdentity, "the Lease after the exit").to.equal("");
    // It wrote nothing before it gave up: reconciling starts only once every cache is full.
    expect((await getSource(cluster, namespace, "work"))?.metadata.finalizers ?? []).to.deep.equal([]);
  });

  it("a leader whose Lease another holder took stops at once and exits 1, leaving the Lease", async () => {
    const cluster = testCluster();
    const { namespace, env } = await scope("ha-lost");
    await createSource(namespace, "work", 1);
    const operator = await fixture.startOperator({ identity: "lost-a", env });
    await waitForCondition(cluster, namespace, "work", "Ready", "True");
    expect(await operator.isLeader()).to.equal(true);

    // Another writer names itself the holder (as a process that judged the Lease expired would).
    await cluster.kubectl([
      "patch",
      "lease",
      "-n",
      fixture.namespace,
      env.SFN_LEASE_NAME ?? "",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { holderIdentity: "intruder" } }),
    ]);
    // Its next renewal (a retry period) gets 409, reads the Lease and sees the other holder; 30 s
    // bounds the stop on a loaded machine.
    const exited = await Promise.race([
      operator.cli.exited,
      new Promise<"running">((resolve) => setTimeout(resolve, 30_000, "running")),
    ]);
    expect(exited, "how the operator ended").to.deep.equal({ code: 1, signal: null });
    const messages = operator.cli.logs().map((record) => record.message);
    expect(messages).to.include("lost the Lease: exiting to restart as a candidate");
    const stopped = operator.cli
      .logs()
      .find((record) => record.message === "stopped leading" && record.reason);
    expect(String(stopped?.reason), "why it stopped leading").to.equal("the Lease now names intruder");
    expect(messages).to.not.include("released the Lease");
    expect((await lease(env))?.spec?.holderIdentity, "the Lease: not released over the new holder").to.equal(
      "intruder",
    );
  });
});
