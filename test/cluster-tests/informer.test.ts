/**
 * The resilient informer against the real API server: adds, updates and deletes delivered with a
 * label selector; the periodic relist re-delivers every object and repairs what a watch missed; and
 * after the API server restarts (client-node's informer stops for good on the connection error) it
 * restarts by itself and catches up with what changed while it was away.
 */
import { CoreV1Api, KubeConfig, type V1ConfigMap } from "@kubernetes/client-node";
import { expect } from "chai";
import { Registry } from "prom-client";
import { ControllerMetrics } from "../../src/operator/controller-metrics.ts";
import { type InformerOptions, ResilientInformer } from "../../src/operator/informer.ts";
import { signalOptions } from "../../src/operator/kube-call.ts";
import type { LocalCluster } from "../support/cluster.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import { createNamespace, eventually } from "./helpers.ts";

/** What the handlers saw, in order. */
class Recorder {
  readonly changes: V1ConfigMap[] = [];
  readonly deletes: V1ConfigMap[] = [];
  readonly onChange = (object: V1ConfigMap): void => {
    this.changes.push(object);
  };
  readonly onDelete = (object: V1ConfigMap): void => {
    this.deletes.push(object);
  };

  changed(name: string): V1ConfigMap[] {
    return this.changes.filter((o) => o.metadata?.name === name);
  }

  deleted(name: string): boolean {
    return this.deletes.some((o) => o.metadata?.name === name);
  }
}

const names = (objects: V1ConfigMap[]): string[] => objects.map((o) => o.metadata?.name ?? "").sort();

describe("resilient informer (real API server)", () => {
  let kubeConfig: KubeConfig;
  let core: CoreV1Api;
  const informers: Array<ResilientInformer<V1ConfigMap>> = [];

  before(() => {
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(testCluster().kubeconfig);
    core = kubeConfig.makeApiClient(CoreV1Api);
  });

  afterEach(async () => {
    await Promise.all(informers.splice(0).map((informer) => informer.stop()));
  });

  const label = { "sfn-test/informer": "yes" };
  const selector = "sfn-test/informer=yes";

  const create = (namespace: string, name: string, labels: Record<string, string> = label) =>
    core.createNamespacedConfigMap({ namespace, body: { metadata: { name, labels }, data: { v: "1" } } });

  const remove = (namespace: string, name: string) => core.deleteNamespacedConfigMap({ namespace, name });

  /** An informer on the ConfigMaps of `namespace` that carry the test label. */
  function namespacedInformer(
    namespace: string,
    recorder: Recorder,
    options: Partial<InformerOptions<V1ConfigMap>> = {},
  ): ResilientInformer<V1ConfigMap> {
    const informer = new ResilientInformer<V1ConfigMap>({
      name: `configmaps-${namespace}`,
      kubeConfig,
      watchPath: `/api/v1/namespaces/${namespace}/configmaps`,
      list: ({ labelSelector, signal }) =>
        core.listNamespacedConfigMap({ namespace, labelSelector }, signalOptions(signal)),
      labelSelector: selector,
      onChange: recorder.onChange,
      onDelete: recorder.onDelete,
      ...options,
    });
    informers.push(informer);
    return informer;
  }

  it("delivers adds, updates and deletes of the objects its label selector matches", async () => {
    const cluster = testCluster();
    const ns = await createNamespace(cluster, "informer");
    await create(ns, "before");
    const recorder = new Recorder();
    const informer = namespacedInformer(ns, recorder);
    informer.start();
    expect(await informer.waitForSync()).to.equal(true);
    expect(informer.hasSynced()).to.equal(true);
    expect(names(informer.list(ns))).to.deep.equal(["before"]);
    expect(informer.get(ns, "before")?.kind, "list items get the kind watch events have").to.equal(
      "ConfigMap",
    );
    expect(names(recorder.changes)).to.deep.equal(["before"]);

    await create(ns, "unlabelled", {});
    await create(ns, "a");
    await eventually("the add of a", async () => recorder.changed("a").length === 1, 30_000);

    const a = await core.readNamespacedConfigMap({ namespace: ns, name: "a" });
    await core.replaceNamespacedConfigMap({ namespace: ns, name: "a", body: { ...a, data: { v: "2" } } });
    await eventually("the update of a", async () => recorder.changed("a").at(-1)?.data?.v === "2", 30_000);
    expect(informer.get(ns, "a")?.data?.v).to.equal("2");

    await remove(ns, "a");
    await eventually("the delete of a", async () => recorder.deleted("a"), 30_000);
    expect(informer.get(ns, "a")).to.equal(undefined);
    // The unlabelled ConfigMap (and the namespace's kube-root-ca.crt) never came through.
    expect(names(informer.list())).to.deep.equal(["before"]);
    expect(recorder.changed("unlabelled")).to.deep.equal([]);
    expect(recorder.changes.map((o) => o.metadata?.name)).to.deep.equal(["before", "a", "a"]);
  });

  it("relists periodically: re-delivers every object and repairs what the watch missed (all namespaces)", async () => {
    const cluster = testCluster();
    const ns = await createNamespace(cluster, "relist");
    const relistLabel = { "sfn-test/relist": ns };
    await create(ns, "kept", relistLabel);
    await create(ns, "hidden", relistLabel);
    let lists = 0;
    const recorder = new Recorder();
    const metrics = new ControllerMetrics(new Registry());
    const informer = new ResilientInformer<V1ConfigMap>({
      name: "configmaps-all",
      kubeConfig,
      watchPath: "/api/v1/configmaps",
      list: async ({ labelSelector, signal }) => {
        const list = await core.listConfigMapForAllNamespaces({ labelSelector }, signalOptions(signal));
        lists += 1;
        if (lists === 1) {
          // The first list "misses" an object that exists and reports one that does not: events that
          // never come on the watch, which only a relist can repair.
          list.items = list.items.filter((o) => o.metadata?.name !== "hidden");
          list.items.push({ metadata: { namespace: ns, name: "ghost", resourceVersion: "1" } });
        }
        return list;
      },
      labelSelector: `sfn-test/relist=${ns}`,
      onChange: recorder.onChange,
      onDelete: recorder.onDelete,
      relistIntervalMs: 1_000,
      metrics,
    });
    informers.push(informer);
    informer.start();
    expect(await informer.waitForSync()).to.equal(true);
    expect(names(informer.list())).to.deep.equal(["ghost", "kept"]);

    await eventually("a relist", async () => informer.relists >= 1 && lists >= 2, 30_000);
    await eventually("the relist's delivery", async () => recorder.changed("hidden").length > 0, 30_000);
    expect(recorder.deleted("ghost")).to.equal(true);
    expect(names(informer.list(ns))).to.deep.equal(["hidden", "kept"]);
    // "kept" never changed, and was delivered again all the same.
    const kept = recorder.changed("kept");
    expect(kept.length).to.be.at.least(2);
    expect(new Set(kept.map((o) => o.metadata?.resourceVersion)).size).to.equal(1);
    const relists = (await metrics.registry.getSingleMetric("sfn_operator_informer_relists_total")?.get())
      ?.values[0]?.value;
    expect(relists).to.be.at.least(1);
  });

  it("gives a list that hangs a deadline of its own, and restarts", async () => {
    const cluster = testCluster();
    const ns = await createNamespace(cluster, "deadline");
    await create(ns, "a");
    const recorder = new Recorder();
    let lists = 0;
    let firstSignal: AbortSignal | undefined;
    const informer = namespacedInformer(ns, recorder, {
      list: ({ labelSelector, signal }) => {
        lists += 1;
        if (lists === 1) {
          // An API server that accepted the request and never answers.
          firstSignal = signal;
          return new Promise(() => {});
        }
        return core.listNamespacedConfigMap({ namespace: ns, labelSelector }, signalOptions(signal));
      },
      listTimeoutMs: 300,
      restartBaseMs: 50,
    });
    informer.start();
    expect(await informer.waitForSync()).to.equal(true);
    expect(lists).to.equal(2);
    expect(firstSignal?.aborted, "the hung call was told to give up").to.equal(true);
    expect(informer.restarts).to.equal(1);
    expect(names(informer.list(ns))).to.deep.equal(["a"]);
  });

  it("signalOptions aborts a client-node request", async () => {
    const controller = new AbortController();
    controller.abort(new Error("given up"));
    let failure: unknown;
    try {
      await core.listNamespace({}, signalOptions(controller.signal));
    } catch (error) {
      failure = error;
    }
    expect(failure).to.be.instanceOf(Error);
    expect((failure as Error).message).to.equal("given up");
  });

  it("restarts by itself after the API server restarts, and catches up with what changed meanwhile", async function () {
    const cluster = testCluster();
    if (cluster.kind !== "local") this.skip();
    const local = cluster as LocalCluster;
    const ns = await createNamespace(cluster, "restart");
    for (const name of ["keep", "doomed", "deleted-after"]) await create(ns, name);
    const recorder = new Recorder();
    const metrics = new ControllerMetrics(new Registry());
    const informer = namespacedInformer(ns, recorder, {
      // Short restart delays keep the test short; no periodic relist may do the catching up.
      restartBaseMs: 250,
      restartCapMs: 1_000,
      relistIntervalMs: 30 * 60_000,
      metrics,
    });
    informer.start();
    expect(await informer.waitForSync()).to.equal(true);
    expect(names(informer.list(ns))).to.deep.equal(["deleted-after", "doomed", "keep"]);

    // SIGKILL: the open watch breaks with a connection error (and no graceful drain to wait for).
    await local.stopApiServer({ kill: true });
    // While the API server is down, delete "doomed" in etcd itself (no API server to ask).
    const key = Buffer.from(`/registry/configmaps/${ns}/doomed`).toString("base64");
    const response = await fetch(`${local.etcdUrl}/v3/kv/deleterange`, {
      method: "POST",
      body: JSON.stringify({ key }),
    });
    expect(((await response.json()) as { deleted?: string }).deleted).to.equal("1");
    expect(recorder.deleted("doomed")).to.equal(false);
    await local.startApiServer();
    // Right after it is back: possibly before the informer has restarted.
    await create(ns, "born-after");
    await remove(ns, "deleted-after");

    await eventually(
      "the informer to catch up",
      async () =>
        recorder.deleted("doomed") && recorder.deleted("deleted-after") && !!informer.get(ns, "born-after"),
      60_000,
    );
    expect(names(informer.list(ns))).to.deep.equal(["born-after", "keep"]);
    expect(informer.restarts).to.be.at.least(1);
    expect(informer.relists).to.equal(0);
    const restarts = (await metrics.registry.getSingleMetric("sfn_operator_informer_restarts_total")?.get())
      ?.values[0]?.value;
    expect(restarts).to.be.at.least(1);
  });
});
