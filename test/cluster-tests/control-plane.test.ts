/**
 * Proof that the test control plane behaves like a real cluster where operators need it to: the
 * pinned release serves the API, Deployments get Ready pods (controller-manager, scheduler, kwok),
 * CRDs are served with their schema and defaults, garbage collection follows owner references, and
 * RBAC refuses a ServiceAccount what its Role does not allow.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect } from "chai";
import { helmBin, pinnedVersions } from "../support/cluster.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import { kubectl } from "../support/cluster-kubectl.ts";
import { apply, createNamespace, eventually, getJson } from "./helpers.ts";

interface ObjectList<T> {
  items: T[];
}

interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

describe("test control plane", () => {
  it("serves the pinned Kubernetes release", async function () {
    const cluster = testCluster();
    if (cluster.kind !== "local") this.skip();
    const { stdout } = await cluster.kubectl(["get", "--raw", "/version"]);
    const version = JSON.parse(stdout) as { gitVersion: string; major: string; minor: string };
    const pinned = pinnedVersions().KUBE_VERSION ?? "";
    expect(version.gitVersion).to.equal(pinned);
    expect(`v${version.major}.${version.minor}`).to.equal(pinned.split(".").slice(0, 2).join("."));
  });

  it("runs a Deployment's pods to Ready on the kwok node, and deleting it collects them", async () => {
    const cluster = testCluster();
    const ns = await createNamespace(cluster, "deploy");
    const labels = { app: "web" };
    await apply(cluster, [
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web", namespace: ns },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            // Never pulled: kwok fakes the kubelet.
            spec: { containers: [{ name: "web", image: "registry.k8s.io/pause:3.10" }] },
          },
        },
      },
    ]);
    await cluster.kubectl(["rollout", "status", "deployment/web", "-n", ns, "--timeout=90s"], {
      timeoutMs: 100_000,
    });
    const pods = await getJson<ObjectList<Pod>>(cluster, ["pods", "-n", ns, "-l", "app=web"]);
    expect(pods?.items).to.have.length(3);
    for (const pod of pods?.items ?? []) {
      expect(pod.spec.nodeName, pod.metadata.name).to.equal("kwok-node-0");
      expect(pod.status.phase).to.equal("Running");
      expect(pod.status.conditions?.find((c) => c.type === "Ready")?.status).to.equal("True");
    }

    // Deployment -> ReplicaSet -> Pods: all three go by owner references.
    await cluster.kubectl(["delete", "deployment", "web", "-n", ns, "--wait=false"]);
    await eventually("ReplicaSets and pods collected", async () => {
      const [replicaSets, remaining] = await Promise.all([
        getJson<ObjectList<unknown>>(cluster, ["replicasets", "-n", ns]),
        getJson<ObjectList<unknown>>(cluster, ["pods", "-n", ns]),
      ]);
      return replicaSets?.items.length === 0 && remaining?.items.length === 0;
    });
  });

  it("serves a CRD applied with kubectl apply, with its schema, defaults and status subresource", async () => {
    const cluster = testCluster();
    const ns = await createNamespace(cluster, "crd");
    await apply(cluster, [
      {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: "widgets.test.sfn-operator.dev" },
        spec: {
          group: "test.sfn-operator.dev",
          scope: "Namespaced",
          names: { kind: "Widget", plural: "widgets", singular: "widget", shortNames: ["wdg"] },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              subresources: { status: {} },
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  properties: {
                    spec: {
                      type: "object",
                      required: ["size"],
                      properties: {
                        size: { type: "integer", minimum: 1 },
                        color: { type: "string", default: "blue" },
                      },
                    },
                    status: { type: "object", properties: { ready: { type: "boolean" } } },
                  },
                },
              },
            },
          ],
        },
      },
    ]);
    await cluster.kubectl([
      "wait",
      "--for=condition=Established",
      "crd/widgets.test.sfn-operator.dev",
      "--timeout=30s",
    ]);
    // Discovery of a new CRD can lag Established by a moment for a fresh kubectl cache: retry.
    await eventually("Widget created", async () => {
      await apply(
        cluster,
        [
          {
            apiVersion: "test.sfn-operator.dev/v1",
            kind: "Widget",
            metadata: { name: "w", namespace: ns },
            spec: { size: 2 },
          },
        ],
        ["--server-side", "--field-manager=cluster-test"],
      );
      return true;
    });
    const widget = await getJson<{ spec: { size: number; color: string }; status?: unknown }>(cluster, [
      "wdg",
      "w",
      "-n",
      ns,
    ]);
    expect(widget?.spec).to.deep.equal({ size: 2, color: "blue" }, "default applied by the API server");

    // The schema is enforced...
    const invalid = await cluster.kubectl(["apply", "-f", "-"], {
      allowFailure: true,
      input: JSON.stringify({
        apiVersion: "test.sfn-operator.dev/v1",
        kind: "Widget",
        metadata: { name: "bad", namespace: ns },
        spec: { size: 0 },
      }),
    });
    expect(invalid.code).to.not.equal(0);
    expect(invalid.stderr).to.match(/spec\.size.*should be greater than or equal to 1/);

    // ...and status is only written through the status subresource.
    await cluster.kubectl(["patch", "wdg", "w", "-n", ns, "--type=merge", "-p", '{"status":{"ready":true}}']);
    expect((await getJson<{ status?: unknown }>(cluster, ["wdg", "w", "-n", ns]))?.status).to.equal(
      undefined,
    );
    await cluster.kubectl([
      "patch",
      "wdg",
      "w",
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"ready":true}}',
    ]);
    expect((await getJson<{ status?: unknown }>(cluster, ["wdg", "w", "-n", ns]))?.status).to.deep.equal({
      ready: true,
    });
  });

  it("garbage-collects the dependents of a deleted owner", async () => {
    const cluster = testCluster();
    const ns = await createNamespace(cluster, "gc");
    await apply(cluster, [
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "owner", namespace: ns } },
    ]);
    const owner = await getJson<{ metadata: { uid: string } }>(cluster, ["configmap", "owner", "-n", ns]);
    const ownerReferences = [
      { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner?.metadata.uid },
    ];
    await apply(cluster, [
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "dependent-a", namespace: ns, ownerReferences },
      },
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "dependent-b", namespace: ns, ownerReferences },
      },
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "bystander", namespace: ns } },
    ]);
    await cluster.kubectl(["delete", "configmap", "owner", "-n", ns]);
    await eventually("dependents collected", async () => {
      const [a, b] = await Promise.all([
        getJson(cluster, ["configmap", "dependent-a", "-n", ns]),
        getJson(cluster, ["configmap", "dependent-b", "-n", ns]),
      ]);
      return a === undefined && b === undefined;
    });
    expect(await getJson(cluster, ["configmap", "bystander", "-n", ns])).to.not.equal(undefined);
  });

  it("refuses a ServiceAccount's kubeconfig what its Role does not allow", async () => {
    const cluster = testCluster();
    const ns = await createNamespace(cluster, "rbac");
    const other = await createNamespace(cluster, "rbac-other");
    await apply(cluster, [
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "reader", namespace: ns } },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "configmap-reader", namespace: ns },
        rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "reader", namespace: ns },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "configmap-reader" },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace: ns }],
      },
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "visible", namespace: ns }, data: { a: "1" } },
    ]);
    const saKubeconfig = await cluster.serviceAccountKubeconfig(ns, "reader");
    const asReader = (args: string[]) => kubectl(saKubeconfig, args, { allowFailure: true });

    const whoami = await asReader(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    expect(whoami.stdout).to.equal(`system:serviceaccount:${ns}:reader`);
    const allowed = await asReader(["get", "configmap", "visible", "-n", ns, "-o", "jsonpath={.data.a}"]);
    expect(allowed.code, allowed.stderr).to.equal(0);
    expect(allowed.stdout).to.equal("1");

    const refused: string[][] = [
      ["get", "secrets", "-n", ns],
      ["create", "configmap", "new", "-n", ns],
      ["delete", "configmap", "visible", "-n", ns],
      ["get", "configmaps", "-n", other],
      ["get", "nodes"],
    ];
    for (const args of refused) {
      const result = await asReader(args);
      expect(result.code, `kubectl ${args.join(" ")}`).to.not.equal(0);
      expect(result.stderr, `kubectl ${args.join(" ")}`).to.match(/Forbidden|forbidden/);
    }
  });

  it("answers helm, built by test/cluster/build.sh", async () => {
    const cluster = testCluster();
    const { stdout } = await promisify(execFile)(helmBin(), ["list", "--all-namespaces", "-o", "json"], {
      env: { ...process.env, KUBECONFIG: cluster.kubeconfig },
    });
    expect(JSON.parse(stdout)).to.deep.equal([]);
  });
});
