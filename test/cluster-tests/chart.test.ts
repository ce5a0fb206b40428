/**
 * The Helm chart (charts/sfn-operator) with the real helm binary (helmBin(), built by
 * test/cluster/build.sh) and the test API server: `helm lint --strict`; `helm template` with the
 * default values and with every values file of ci/; bad values refused with a message that names the
 * value; every rendering accepted by `kubectl apply --dry-run=server` (the API server's own validation,
 * which catches what lint does not); the RBAC it renders is exactly src/operator/rbac.ts's; the
 * Deployment's security settings; and the operator's environment, read back by the operator's own
 * settings parser, is valid and carries every value.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1PolicyRule,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import { expect } from "chai";
import YAML from "yaml";
import { CHART_DIR } from "../../scripts/chart-files.ts";
import { rbacObjects } from "../../src/operator/rbac.ts";
import { OPERATOR_SETTINGS, operatorSettingsFrom } from "../../src/operator/settings.ts";
import type { TestCluster } from "../support/cluster.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import { type HelmResult, runHelm } from "../support/helm.ts";
import { apply, createNamespace, getJson } from "./helpers.ts";

const CHART = fileURLToPath(new URL(`../../${CHART_DIR}`, import.meta.url));
const CI_FILES = readdirSync(path.join(CHART, "ci"))
  .filter((file) => file.endsWith(".yaml"))
  .sort();
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** The one value without a default. */
const REDIS = { redis: { url: "redis://redis.redis.svc:6379" } };
const RELEASE = "sfn-operator";
const NAMESPACE = "sfn-system";

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

let scratch = "";

/** Runs helm with its own config, cache and data folders (nothing from the user's home). */
function helm(args: string[], options: { kubeconfig?: string } = {}): Promise<HelmResult> {
  return runHelm(args, { home: scratch, kubeconfig: options.kubeconfig });
}

let valuesFiles = 0;
/** `-f <file>` arguments for values given as objects (JSON is YAML). */
function valuesArgs(values: readonly object[]): string[] {
  return values.flatMap((object) => {
    valuesFiles += 1;
    const file = path.join(scratch, `values-${valuesFiles}.json`);
    writeFileSync(file, JSON.stringify(object));
    return ["-f", file];
  });
}

function ciFile(file: string): string {
  return path.join(CHART, "ci", file);
}

/** `helm template`; rejects with helm's message when it fails. */
async function template(
  args: string[],
  options: { release?: string; namespace?: string } = {},
): Promise<K8sObject[]> {
  const result = await helm([
    "template",
    options.release ?? RELEASE,
    CHART,
    "--namespace",
    options.namespace ?? NAMESPACE,
    ...args,
  ]);
  if (result.code !== 0) throw new Error(`helm template ${args.join(" ")}: ${result.stderr}`);
  return YAML.parseAllDocuments(result.stdout)
    .map((document) => document.toJS() as K8sObject | null)
    .filter((object): object is K8sObject => object !== null);
}

function render(...values: object[]): Promise<K8sObject[]> {
  return template(valuesArgs(values));
}

function one<T = K8sObject>(objects: readonly K8sObject[], kind: string, name?: string): T {
  const found = objects.filter((object) => object.kind === kind && (!name || object.metadata.name === name));
  expect(found, `${kind} ${name ?? ""}`).to.have.length(1);
  return found[0] as T;
}

function operatorDeployment(objects: readonly K8sObject[]): V1Deployment {
  return one<V1Deployment>(
    objects.filter((object) => object.metadata.labels?.["app.kubernetes.io/component"] === "operator"),
    "Deployment",
  );
}

function operatorContainer(objects: readonly K8sObject[]): V1Container {
  const container = operatorDeployment(objects).spec?.template.spec?.containers[0];
  if (container === undefined) throw new Error("no container");
  return container;
}

/**
 * The operator container's environment as the kubelet would give it: values as they are, the
 * downward API filled in, a Secret's key as a stand-in text.
 */
function containerEnv(container: V1Container, namespace = NAMESPACE): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) env[variable.name] = envValue(variable, namespace);
  return env;
}

function envValue(variable: V1EnvVar, namespace: string): string {
  if (variable.value !== undefined) return variable.value;
  const field = variable.valueFrom?.fieldRef?.fieldPath;
  if (field === "metadata.name") return `${RELEASE}-6d5f7b9c4-x2x7q`;
  if (field === "metadata.namespace") return namespace;
  if (variable.valueFrom?.secretKeyRef) return "s3cret";
  throw new Error(`no value for ${variable.name}`);
}

/** The operator's settings parsed from the rendered environment, as `sfn-operator operator` parses it. */
function parsedSettings(objects: readonly K8sObject[]) {
  const env = containerEnv(operatorContainer(objects));
  const values = Object.fromEntries(OPERATOR_SETTINGS.map((setting) => [setting.env, env[setting.env]]));
  return { env, ...operatorSettingsFrom(values, env) };
}

/** A CRD for a Prometheus Operator kind that accepts any object (the test API server has none). */
function looseCrd(kind: string, plural: string): object {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: "monitoring.coreos.com",
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      scope: "Namespaced",
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  };
}

const MONITORING_KINDS: Array<[kind: string, plural: string]> = [
  ["ServiceMonitor", "servicemonitors"],
  ["PodMonitor", "podmonitors"],
  ["PrometheusRule", "prometheusrules"],
];

/** Creates the monitoring.coreos.com CRDs that do not exist yet; returns the names of those it created. */
async function installMonitoringCrds(cluster: TestCluster): Promise<string[]> {
  const created: string[] = [];
  for (const [kind, plural] of MONITORING_KINDS) {
    const name = `${plural}.monitoring.coreos.com`;
    if (await getJson(cluster, ["crd", name])) continue;
    await apply(cluster, [looseCrd(kind, plural)]);
    created.push(name);
  }
  for (const name of created) {
    await cluster.kubectl(["wait", "--for=condition=Established", `crd/${name}`, "--timeout=60s"], {
      timeoutMs: 70_000,
    });
  }
  return created;
}

describe("the Helm chart (charts/sfn-operator)", () => {
  before(() => {
    scratch = mkdtempSync(path.join(tmpdir(), "sfn-chart-"));
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  describe("lint and render", () => {
    it("passes `helm lint --strict` with the default values (and redis.url) and with every ci/ file", async () => {
      for (const args of [valuesArgs([REDIS]), ...CI_FILES.map((file) => ["-f", ciFile(file)])]) {
        const result = await helm(["lint", "--strict", CHART, ...args]);
        expect(
          result.code,
          `helm lint --strict ${args.join(" ")}\n${result.stdout}${result.stderr}`,
        ).to.equal(0);
        expect(result.stdout).to.contain("0 chart(s) failed");
      }
    });

    it("has ci/ files for the main set-ups", () => {
      expect(CI_FILES).to.include.members([
        "default-values.yaml",
        "watch-namespaces-values.yaml",
        "ha-2-replicas-values.yaml",
        "redis-tls-values.yaml",
        "redis-sentinel-values.yaml",
        "monitoring-all-values.yaml",
        "bundled-redis-values.yaml",
      ]);
    });

    it("renders the operator's objects with the default values (and redis.url)", async () => {
      const objects = await render(REDIS);
      expect(
        objects.map((object) => `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`),
      ).to.have.members([
        "PodDisruptionBudget/sfn-system/sfn-operator",
        "ServiceAccount/sfn-system/sfn-operator",
        "ClusterRole//sfn-operator",
        "ClusterRoleBinding//sfn-operator",
        "Role/sfn-system/sfn-operator",
        "RoleBinding/sfn-system/sfn-operator",
        "Service/sfn-system/sfn-operator-metrics",
        "Deployment/sfn-system/sfn-operator",
      ]);
      for (const object of objects) {
        expect(object.metadata.labels?.["app.kubernetes.io/instance"], object.kind).to.equal(RELEASE);
        expect(object.metadata.labels?.["app.kubernetes.io/version"], object.kind).to.equal(PACKAGE_VERSION);
      }
      // The image is the chart's appVersion, for the operator and the pollers.
      const container = operatorContainer(objects);
      expect(container.image).to.equal(`ghcr.io/sfn-operator/sfn-operator:${PACKAGE_VERSION}`);
      expect(containerEnv(container).SFN_POLLER_IMAGE).to.equal(container.image);
      expect(container.args).to.deep.equal(["operator"]);
    });

    for (const file of CI_FILES) {
      it(`renders ci/${file}`, async () => {
        const objects = await template(["-f", ciFile(file)]);
        expect(objects.length).to.be.greaterThan(5);
        for (const object of objects) {
          expect(object.apiVersion, JSON.stringify(object.metadata)).to.be.a("string");
          expect(object.metadata.name, object.kind).to.match(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
          if (!["ClusterRole", "ClusterRoleBinding"].includes(object.kind)) {
            expect(object.metadata.namespace, `${object.kind} ${object.metadata.name}`).to.be.a("string");
          }
        }
        // Whatever the values, the operator's environment is one the operator accepts.
        const { problems } = parsedSettings(objects);
        expect(problems).to.deep.equal([]);
      });
    }

    it("shows what to do next after `helm install`: apply an example, kubectl get sfs, kubectl wait", async () => {
      const cluster = testCluster();
      const result = await helm(
        ["install", RELEASE, CHART, "--namespace", NAMESPACE, "--dry-run=client", ...valuesArgs([REDIS])],
        { kubeconfig: cluster.kubeconfig },
      );
      expect(result.code, result.stderr).to.equal(0);
      const notes = result.stdout.slice(result.stdout.indexOf("NOTES:"));
      expect(notes).to.contain("kubectl create namespace demo");
      expect(notes).to.contain("kubectl apply -n demo -f examples/");
      expect(notes).to.contain("kubectl get sfs -n demo");
      expect(notes).to.contain("kubectl wait -n demo --for=condition=Ready sfs/sum");
      expect(notes).to.contain("kubectl apply --server-side -f");

      // With the pollers' ServiceAccount in a namespace (which must exist), the examples go there.
      const listed = await helm(
        [
          "install",
          RELEASE,
          CHART,
          "--namespace",
          NAMESPACE,
          "--dry-run=client",
          ...valuesArgs([REDIS, { pollers: { serviceAccount: { namespaces: ["team-c"] } } }]),
        ],
        { kubeconfig: cluster.kubeconfig },
      );
      const listedNotes = listed.stdout.slice(listed.stdout.indexOf("NOTES:"));
      expect(listedNotes).to.contain("kubectl apply -n team-c -f examples/");
      expect(listedNotes).to.not.contain("kubectl create namespace");
    });
  });

  describe("bad values", () => {
    /** What is wrong, the values (over REDIS unless `redis` says otherwise), and what helm must say. */
    const BAD: Array<[what: string, values: object, message: RegExp, withoutRedis?: boolean]> = [
      ["replicaCount as a word", { replicaCount: "two" }, /at '\/replicaCount': got string, want integer/],
      ["an unknown top-level value", { replicas: 2 }, /additional properties 'replicas' not allowed/],
      [
        "a misspelt nested value",
        { leaderElection: { enable: false } },
        /at '\/leaderElection': additional properties 'enable' not allowed/,
      ],
      [
        "an unknown pull policy",
        { image: { pullPolicy: "Sometimes" } },
        /at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/,
      ],
      ["an unknown log level", { logLevel: "verbose" }, /at '\/logLevel': value must be one of/],
      ["an unknown pollers' log level", { pollers: { logLevel: "trace" } }, /at '\/pollers\/logLevel'/],
      [
        "a namespace that is not a name",
        { watchNamespaces: ["Team_A"] },
        /at '\/watchNamespaces\/0': 'Team_A' does not match pattern/,
      ],
      ["a namespace twice", { watchNamespaces: ["team-a", "team-a"] }, /at '\/watchNamespaces': items at/],
      [
        "an http:// Redis URL",
        { redis: { url: "http://redis:6379" } },
        /at '\/redis\/url': 'http:\/\/redis:6379'/,
      ],
      [
        "a duration without a unit",
        { leaderElection: { leaseDuration: "15" } },
        /at '\/leaderElection\/leaseDuration': '15' does not match pattern/,
      ],
      ["a region with spaces", { aws: { region: "eu west 1" } }, /at '\/aws\/region'/],
      ["an endpoint that is not a URL", { aws: { endpointUrl: "states.local" } }, /at '\/aws\/endpointUrl'/],
      ["0 workers", { workers: 0 }, /at '\/workers': minimum: got 0, want 1/],
      [
        "a sentinel without a port",
        { redis: { url: "redis://mymaster:6379", sentinel: { enabled: true, sentinels: ["sentinel"] } } },
        /at '\/redis\/sentinel\/sentinels\/0': 'sentinel' does not match pattern/,
      ],
      [
        "a quantity that is not one",
        { resources: { limits: { memory: "lots" } } },
        /at '\/resources\/limits\/memory': 'lots' does not match pattern/,
      ],
      [
        "a token shorter than the API server allows",
        { serviceAccountToken: { expirationSeconds: 60 } },
        /at '\/serviceAccountToken\/expirationSeconds': minimum: got 60, want 600/,
      ],
      [
        "a Prometheus interval without a unit",
        { metrics: { serviceMonitor: { interval: "30" } } },
        /at '\/metrics\/serviceMonitor\/interval'/,
      ],
      [
        "a PDB of words",
        { podDisruptionBudget: { maxUnavailable: "half" } },
        /at '\/podDisruptionBudget\/maxUnavailable'/,
      ],
      [
        "an extra variable without a name",
        { extraEnv: [{ value: "x" }] },
        /at '\/extraEnv\/0': missing property 'name'/,
      ],
      [
        "a poller image digest that is not one",
        { pollers: { image: { digest: "latest" } } },
        /at '\/pollers\/image\/digest'/,
      ],
      // Rules between values: the templates' checks (templates/_helpers.tpl).
      [
        "two replicas without leader election",
        { replicaCount: 2, leaderElection: { enabled: false } },
        /replicaCount is 2 but leaderElection.enabled is false/,
      ],
      ["no Redis at all", {}, /redis.url is required: .*or set redis.enabled=true/, true],
      [
        "a password in the Redis URL",
        { redis: { url: "redis://:s3cret@redis:6379" } },
        /redis.url must not contain a password: .*redis.existingSecret.name/,
      ],
      [
        "TLS with a redis:// URL",
        { redis: { tls: { enabled: true } } },
        /redis.tls.enabled is true but redis.url "redis:\/\/redis.redis.svc:6379" is not a rediss:\/\//,
      ],
      [
        "a CA for a redis:// URL",
        { redis: { tls: { caSecret: { name: "redis-ca" } } } },
        /redis.tls.caSecret.name is set but redis.url "redis:\/\/redis.redis.svc:6379" is not a rediss:\/\//,
      ],
      [
        "a Redis CA and another NODE_EXTRA_CA_CERTS",
        {
          redis: { url: "rediss://redis:6379", tls: { enabled: true, caSecret: { name: "redis-ca" } } },
          extraEnv: [{ name: "NODE_EXTRA_CA_CERTS", value: "/etc/proxy-ca.pem" }],
        },
        /extraEnv sets NODE_EXTRA_CA_CERTS and redis.tls.caSecret.name sets it too/,
      ],
      [
        "Sentinel without sentinels",
        { redis: { sentinel: { enabled: true } } },
        /redis.sentinel.enabled is true but redis.sentinel.sentinels is empty/,
      ],
      [
        "a renew deadline not below the lease duration (the operator would refuse to start)",
        { leaderElection: { renewDeadline: "20s" } },
        /renewDeadline \(20s\) must be less than leaseDuration \(15s\)/,
      ],
      [
        "a renew deadline not above 1.2 x the retry period",
        { leaderElection: { renewDeadline: "10s", retryPeriod: "9s" } },
        /and more than 1.2 x retryPeriod \(9s\)/,
      ],
      [
        "a Redis password in the URL's query (ioredis reads it; pollers get the URL in plain text)",
        { redis: { url: "redis://redis:6379/0?password=hunter2" } },
        /redis.url must not contain a password/,
      ],
      [
        "no operator ServiceAccount: create false without a name (would bind the default one)",
        { serviceAccount: { create: false } },
        /serviceAccount.create is false but serviceAccount.name is empty/,
      ],
      [
        "Sentinel with TLS (a rediss:// URL)",
        { redis: { url: "rediss://mymaster:6379", sentinel: { enabled: true, sentinels: ["s:26379"] } } },
        /redis.sentinel.enabled cannot be used with TLS/,
      ],
      [
        "Sentinel with redis.tls.enabled",
        {
          redis: {
            url: "redis://mymaster:6379",
            tls: { enabled: true },
            sentinel: { enabled: true, sentinels: ["s:26379"] },
          },
        },
        /redis.tls.enabled is true but redis.url .* is not a rediss:/,
      ],
      [
        "Sentinel with Redis Cluster",
        { redis: { cluster: true, sentinel: { enabled: true, sentinels: ["s:26379"] } } },
        /redis.sentinel.enabled cannot be used with Redis Cluster/,
      ],
      [
        "the bundled Redis and a URL",
        { redis: { enabled: true } },
        /redis.enabled and redis.url are both set/,
      ],
      [
        "the bundled Redis with TLS",
        { redis: { enabled: true, tls: { enabled: true } } },
        /redis.enabled runs a single-node Redis without TLS, Sentinel or cluster mode/,
        true,
      ],
      [
        "a pollers' ServiceAccount to create without a name",
        { pollers: { serviceAccount: { create: true, name: "" } } },
        /pollers.serviceAccount.name is empty but pollers.serviceAccount.create is true/,
      ],
      [
        "a ServiceMonitor without the Service",
        { metrics: { service: { enabled: false }, serviceMonitor: { enabled: true } } },
        /metrics.serviceMonitor.enabled needs metrics.service.enabled/,
      ],
    ];

    for (const [what, values, message, withoutRedis] of BAD) {
      it(`refuses ${what}`, async () => {
        const result = await helm([
          "template",
          RELEASE,
          CHART,
          ...valuesArgs(withoutRedis ? [values] : [REDIS, values]),
        ]);
        expect(result.code, `helm template accepted ${JSON.stringify(values)}`).to.not.equal(0);
        expect(result.stderr).to.match(message);
      });
    }

    it("refuses them at `helm install` too, before anything reaches the cluster", async () => {
      const cluster = testCluster();
      const result = await helm(
        [
          "install",
          RELEASE,
          CHART,
          "--namespace",
          NAMESPACE,
          "--dry-run=server",
          ...valuesArgs([REDIS, { replicaCount: "two" }]),
        ],
        { kubeconfig: cluster.kubeconfig },
      );
      expect(result.code).to.not.equal(0);
      expect(result.stderr).to.match(/values don't meet the specifications of the schema/);
      expect(result.stderr).to.match(/at '\/replicaCount': got string, want integer/);
    });
  });

  describe("against the API server", () => {
    let createdCrds: string[] = [];
    let releaseNamespace = "";

    before(async function () {
      this.timeout(120_000);
      const cluster = testCluster();
      createdCrds = await installMonitoringCrds(cluster);
      releaseNamespace = await createNamespace(cluster, "chart");
      // The namespaces the ci/ files watch: fixed names, so created if missing and left in place.
      const watched = new Set<string>();
      for (const file of CI_FILES) {
        const values = YAML.parse(readFileSync(ciFile(file), "utf8")) as {
          watchNamespaces?: string[];
          pollers?: { serviceAccount?: { namespaces?: string[] } };
        };
        for (const namespace of [
          ...(values.watchNamespaces ?? []),
          ...(values.pollers?.serviceAccount?.namespaces ?? []),
        ]) {
          watched.add(namespace);
        }
      }
      await apply(
        cluster,
        [...watched].map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } })),
      );
    });

    after(async function () {
      this.timeout(60_000);
      const cluster = testCluster();
      if (releaseNamespace) await cluster.kubectl(["delete", "namespace", releaseNamespace, "--wait=false"]);
      for (const name of createdCrds) await cluster.kubectl(["delete", "crd", name, "--wait=false"]);
    });

    // Helm allows release names of 53 characters: every name the chart derives must still be valid.
    const LONG_RELEASE = "a-release-name-of-fifty-three-characters-for-names-xy";
    for (const [label, args, release] of [
      ["the default values", () => valuesArgs([REDIS])],
      ...CI_FILES.map((file) => [`ci/${file}`, () => ["-f", ciFile(file)]] as const),
      [
        `a ${LONG_RELEASE.length}-character release name with everything on`,
        () => [
          "-f",
          ciFile("monitoring-all-values.yaml"),
          ...valuesArgs([{ redis: { url: "", enabled: true } }]),
        ],
        LONG_RELEASE,
      ],
    ] as Array<[string, () => string[], string?]>) {
      it(`has every object of ${label} accepted by kubectl apply --dry-run=server`, async () => {
        const cluster = testCluster();
        const objects = await template(args(), {
          namespace: releaseNamespace,
          ...(release !== undefined && { release }),
        });
        const { code, stdout, stderr } = await cluster.kubectl(
          ["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
          { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }), allowFailure: true },
        );
        expect(code, stderr).to.equal(0);
        expect(stdout.trim().split("\n")).to.have.length(objects.length);
        for (const line of stdout.trim().split("\n")) expect(line).to.contain("(server dry run)");
      });
    }
  });

  describe("RBAC", () => {
    interface RbacObject extends K8sObject {
      rules?: V1PolicyRule[];
    }

    /** The RBAC objects of a rendering, without the chart's labels, in a stable order. */
    function rbacOf(objects: readonly K8sObject[]): RbacObject[] {
      return objects
        .filter((object) => object.apiVersion === "rbac.authorization.k8s.io/v1")
        .map((object) => {
          const { labels: _labels, ...metadata } = object.metadata;
          return { ...object, metadata } as RbacObject;
        })
        .sort(byPlace);
    }

    function byPlace(a: K8sObject, b: K8sObject): number {
      const place = (object: K8sObject) =>
        `${object.kind}/${object.metadata.namespace}/${object.metadata.name}`;
      return place(a).localeCompare(place(b));
    }

    for (const [watchNamespaces, sourceRedisSecrets] of [
      [[], false],
      [["team-a", "team-b"], false],
      [[], true],
      [["team-a", "team-b"], true],
    ] as Array<[string[], boolean]>) {
      const label = `${watchNamespaces.length === 0 ? "every namespace" : `watchNamespaces ${watchNamespaces}`}${
        sourceRedisSecrets ? ", with rbac.sourceRedisSecrets" : ""
      }`;
      it(`is exactly rbacObjects() of src/operator/rbac.ts, serving ${label}`, async () => {
        const rendered = rbacOf(await render(REDIS, { watchNamespaces, rbac: { sourceRedisSecrets } }));
        const expected = (
          rbacObjects({
            name: RELEASE,
            namespace: NAMESPACE,
            serviceAccount: RELEASE,
            watchNamespaces,
            optIn: sourceRedisSecrets ? ["sourceRedisSecrets"] : [],
          }) as K8sObject[]
        ).sort(byPlace);
        expect(rendered).to.deep.equal(expected);

        // Leases only in the release namespace; everything else only where sources are watched.
        for (const role of rendered.filter((object) => object.kind.endsWith("Role"))) {
          const leases = (role.rules ?? []).some((rule) => rule.resources?.includes("leases"));
          const inOwn =
            role.kind === "Role" && role.metadata.namespace === NAMESPACE && role.metadata.name === RELEASE;
          expect(leases, `${role.kind} ${role.metadata.namespace}/${role.metadata.name}`).to.equal(inOwn);
        }
        expect(JSON.stringify(rendered).includes('"secrets"'), "Secrets only when opted in").to.equal(
          sourceRedisSecrets,
        );
        const clusterWide = rendered.filter((object) => object.kind.startsWith("Cluster"));
        expect(clusterWide.length > 0).to.equal(watchNamespaces.length === 0);
      });
    }

    it("binds the ServiceAccount the Deployment runs as", async () => {
      const objects = await render(REDIS, { serviceAccount: { name: "sfn-controller" } });
      const serviceAccount = operatorDeployment(objects).spec?.template.spec?.serviceAccountName;
      expect(serviceAccount).to.equal("sfn-controller");
      for (const binding of objects.filter((object) => object.kind.endsWith("Binding"))) {
        expect(binding.subjects).to.deep.equal([
          { kind: "ServiceAccount", name: "sfn-controller", namespace: NAMESPACE },
        ]);
      }
    });

    it("names the pollers' ServiceAccount only where it exists: a pod cannot start without it", async () => {
      const accountsOf = (objects: readonly K8sObject[]) =>
        objects
          .filter((object) => object.kind === "ServiceAccount" && object.metadata.name !== RELEASE)
          .map((object) => `${object.metadata.namespace}/${object.metadata.name}`);
      const cases: Array<[values: object, accounts: string[], env: string | undefined]> = [
        // Every namespace watched: the chart cannot create it everywhere, so pollers use `default`.
        [{}, [], undefined],
        [
          { pollers: { serviceAccount: { namespaces: ["demo", "team-c"] } } },
          ["demo/sfn-poller", "team-c/sfn-poller"],
          "sfn-poller",
        ],
        [
          { watchNamespaces: ["team-a"], pollers: { serviceAccount: { namespaces: ["team-a", "demo"] } } },
          ["team-a/sfn-poller", "demo/sfn-poller"],
          "sfn-poller",
        ],
        // The user's own, in every namespace; or each namespace's default.
        [{ pollers: { serviceAccount: { create: false, name: "pollers" } } }, [], "pollers"],
        [
          { watchNamespaces: ["team-a"], pollers: { serviceAccount: { create: false, name: "" } } },
          [],
          undefined,
        ],
      ];
      for (const [values, accounts, env] of cases) {
        const objects = await render(REDIS, values);
        expect(accountsOf(objects), JSON.stringify(values)).to.deep.equal(accounts);
        expect(
          containerEnv(operatorContainer(objects)).SFN_POLLER_SERVICE_ACCOUNT,
          JSON.stringify(values),
        ).to.equal(env);
      }
    });

    it("gives the pollers a ServiceAccount in each watched namespace, with no token and no Role", async () => {
      const objects = await render(REDIS, {
        watchNamespaces: ["team-a", "team-b"],
        pollers: {
          serviceAccount: {
            annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/pollers" },
            labels: { team: "payments" },
          },
        },
      });
      const pollers = objects.filter(
        (object): object is K8sObject & V1ServiceAccount =>
          object.kind === "ServiceAccount" && object.metadata.name === "sfn-poller",
      );
      expect(pollers.map((account) => account.metadata.namespace)).to.deep.equal(["team-a", "team-b"]);
      for (const account of pollers) {
        expect(account.automountServiceAccountToken).to.equal(false);
        expect(account.metadata.annotations).to.deep.equal({
          "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/pollers",
        });
        expect(account.metadata.labels?.team).to.equal("payments");
      }
      const subjects = objects.flatMap(
        (object) => (object.subjects as Array<{ name: string }> | undefined) ?? [],
      );
      expect(subjects.map((subject) => subject.name)).to.not.include("sfn-poller");
    });
  });

  describe("the operator's Deployment", () => {
    it("runs as a non-root user with a read-only root file system, no capabilities and seccomp", async () => {
      const objects = await render(REDIS);
      const pod = operatorDeployment(objects).spec?.template.spec;
      expect(pod?.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 });
      expect(pod?.securityContext?.seccompProfile).to.deep.equal({ type: "RuntimeDefault" });
      const container = operatorContainer(objects);
      expect(container.securityContext).to.deep.equal({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        runAsUser: 1000,
        capabilities: { drop: ["ALL"] },
      });
      expect(container.volumeMounts).to.deep.include({ name: "tmp", mountPath: "/tmp" });
      expect(pod?.volumes).to.deep.include({ name: "tmp", emptyDir: { sizeLimit: "64Mi" } });
    });

    it("mounts a short-lived ServiceAccount token in its container only, never the automounted one", async () => {
      const objects = await render(REDIS);
      const pod = operatorDeployment(objects).spec?.template.spec;
      expect(pod?.automountServiceAccountToken).to.equal(false);
      const account = one<V1ServiceAccount>(objects, "ServiceAccount", RELEASE);
      expect(account.automountServiceAccountToken).to.equal(false);
      const volume = pod?.volumes?.find((candidate) => candidate.name === "kube-api-access");
      expect(volume?.projected?.sources).to.deep.equal([
        { serviceAccountToken: { path: "token", expirationSeconds: 3600 } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        {
          downwardAPI: {
            items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
          },
        },
      ]);
      expect(operatorContainer(objects).volumeMounts).to.deep.include({
        name: "kube-api-access",
        mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
        readOnly: true,
      });
    });

    it("probes /healthz and /readyz on the metrics port 9090, and names itself through the downward API", async () => {
      const objects = await render(REDIS);
      const container = operatorContainer(objects);
      expect(container.ports).to.deep.equal([{ name: "metrics", containerPort: 9090, protocol: "TCP" }]);
      expect(container.livenessProbe?.httpGet).to.deep.equal({ path: "/healthz", port: "metrics" });
      expect(container.readinessProbe?.httpGet).to.deep.equal({ path: "/readyz", port: "metrics" });
      const env = container.env ?? [];
      expect(env).to.deep.include({
        name: "POD_NAME",
        valueFrom: { fieldRef: { fieldPath: "metadata.name" } },
      });
      expect(env).to.deep.include({
        name: "POD_NAMESPACE",
        valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
      });
      expect(containerEnv(container).SFN_METRICS_PORT).to.equal("9090");
      expect(container.resources?.requests).to.have.keys("cpu", "memory");
      expect(container.resources?.limits).to.have.keys("memory");
    });

    it("has a PodDisruptionBudget that never blocks a drain, and spreads 2 replicas over nodes", async () => {
      const single = await render(REDIS);
      expect(one(single, "PodDisruptionBudget").spec).to.deep.include({ maxUnavailable: 1 });
      expect(operatorDeployment(single).spec?.template.spec?.topologySpreadConstraints).to.equal(undefined);
      const ha = await template(["-f", ciFile("ha-2-replicas-values.yaml")]);
      const deployment = operatorDeployment(ha);
      expect(deployment.spec?.replicas).to.equal(2);
      expect(deployment.spec?.template.spec?.priorityClassName).to.equal("system-cluster-critical");
      expect(deployment.spec?.template.spec?.topologySpreadConstraints).to.deep.equal([
        {
          maxSkew: 1,
          topologyKey: "kubernetes.io/hostname",
          whenUnsatisfiable: "ScheduleAnyway",
          labelSelector: { matchLabels: deployment.spec?.selector.matchLabels },
        },
      ]);
      expect(containerEnv(operatorContainer(ha)).SFN_LEADER_ELECT).to.equal("true");
      expect(deployment.spec?.strategy).to.deep.equal({
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
      });
    });

    it("never runs two operators at once without leader election", async () => {
      const objects = await render(REDIS, { leaderElection: { enabled: false } });
      expect(operatorDeployment(objects).spec?.strategy).to.deep.equal({ type: "Recreate" });
      expect(containerEnv(operatorContainer(objects)).SFN_LEADER_ELECT).to.equal("false");
    });

    it("sets every operator setting from the values, and the operator accepts them", async () => {
      const objects = await template(["-f", ciFile("all-settings-values.yaml")]);
      const { env, settings, problems } = parsedSettings(objects);
      expect(problems).to.deep.equal([]);
      for (const setting of OPERATOR_SETTINGS) expect(env, setting.env).to.have.property(setting.env);
      expect(settings?.namespace).to.equal(NAMESPACE);
      expect(settings?.watchNamespaces).to.deep.equal(["team-a"]);
      expect(settings?.workers).to.equal(8);
      expect(settings?.resyncPeriodMs).to.equal(600_000);
      expect(settings?.statusIntervalMs).to.equal(10_000);
      expect(settings?.apiTimeoutMs).to.equal(20_000);
      expect(settings?.leaderElection).to.deep.include({
        enabled: true,
        leaseName: "sfn-leader",
        identity: `${RELEASE}-6d5f7b9c4-x2x7q`,
      });
      expect(settings?.poller).to.deep.include({
        image:
          "registry.example.com/platform/sfn-poller@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        imagePullPolicy: "IfNotPresent",
        serviceAccountName: "pollers",
        region: "eu-west-1",
        awsEndpointUrl: "https://vpce-0123.states.eu-west-1.vpce.amazonaws.com",
        redisUrl: "rediss://redis.redis.svc:6380/2",
        logLevel: "warn",
      });
      expect(settings?.poller.resources).to.deep.equal({
        requests: { cpu: "100m", memory: "128Mi" },
        limits: { memory: "512Mi" },
      });
      expect(settings?.poller.redisPasswordSecret).to.deep.equal({ name: "team-redis", key: "pw" });
      // The key defaults to redis.tls.caSecret's.
      expect(settings?.poller.redisCaSecret).to.deep.equal({ name: "team-redis-ca", key: "ca.pem" });
      expect(settings?.poller.redisEnv).to.deep.equal({ SFN_REDIS_LEASE_TTL: "30s" });
      // pollers.proxy none: the operator's HTTPS_PROXY (extraEnv) stays its own.
      expect(env.SFN_POLLER_PROXY).to.equal("none");
      expect(settings?.poller.proxyEnv).to.deep.equal({});
      expect(env).to.include({
        AWS_REGION: "eu-west-1",
        AWS_ENDPOINT_URL_SFN: "https://states.eu-west-1.amazonaws.com",
        SFN_LOG_LEVEL: "debug",
        SFN_LOG_FORMAT: "text",
        SFN_REDIS_PASSWORD: "s3cret",
        NODE_EXTRA_CA_CERTS: "/etc/sfn-operator/redis-ca/ca.pem",
        NODE_OPTIONS: "--max-old-space-size=300",
      });
      const container = operatorContainer(objects);
      expect(container.image).to.equal("registry.example.com/platform/sfn-operator:0.1.0-rc.1");
      expect(
        container.env?.find((variable) => variable.name === "SFN_REDIS_PASSWORD")?.valueFrom,
      ).to.deep.equal({
        secretKeyRef: { name: "redis-auth", key: "password" },
      });
    });

    it("gives the defaults the operator documents when nothing is set", async () => {
      const { env, settings, problems } = parsedSettings(await render(REDIS));
      expect(problems).to.deep.equal([]);
      const optional = [
        "SFN_POLLER_SERVICE_ACCOUNT",
        "SFN_POLLER_REDIS_CA_SECRET",
        "SFN_WATCH_NAMESPACES",
        "SFN_REGION",
        "SFN_POLLER_AWS_ENDPOINT_URL",
        "SFN_POLLER_REDIS_PASSWORD_SECRET",
      ];
      // What the chart sets on its own account; every other setting it sets is the operator's default.
      const chartOwn: Record<string, string> = {
        SFN_POLLER_IMAGE: `ghcr.io/sfn-operator/sfn-operator:${PACKAGE_VERSION}`,
        SFN_REDIS_URL: REDIS.redis.url,
        SFN_NAMESPACE: NAMESPACE,
      };
      for (const setting of OPERATOR_SETTINGS) {
        expect(env[setting.env] !== undefined, setting.env).to.equal(!optional.includes(setting.env));
        if (optional.includes(setting.env) || setting.env === "SFN_POLLER_RESOURCES") continue;
        expect(env[setting.env], setting.env).to.equal(chartOwn[setting.env] ?? setting.default);
      }
      expect(JSON.parse(env.SFN_POLLER_RESOURCES ?? "")).to.deep.equal(
        JSON.parse(
          OPERATOR_SETTINGS.find((setting) => setting.env === "SFN_POLLER_RESOURCES")?.default ?? "",
        ),
      );
      // Every namespace watched: no ServiceAccount the chart could create everywhere (see RBAC).
      expect(settings?.poller.serviceAccountName).to.equal(undefined);
      expect(settings?.leaderElection.leaseName).to.equal(RELEASE);
    });
  });

  describe("Redis", () => {
    it("passes TLS with a CA from a Secret, a password and the lease TTL to the operator", async () => {
      const objects = await template(["-f", ciFile("redis-tls-values.yaml")]);
      const { env, problems } = parsedSettings(objects);
      expect(problems).to.deep.equal([]);
      expect(env).to.include({
        SFN_REDIS_URL: "rediss://redis.redis.svc:6380",
        SFN_REDIS_LEASE_TTL: "20s",
        SFN_POLLER_REDIS_PASSWORD_SECRET: "redis-auth:password",
        SFN_POLLER_REDIS_CA_SECRET: "redis-ca:ca.crt",
        NODE_EXTRA_CA_CERTS: "/etc/sfn-operator/redis-ca/ca.crt",
      });
      const pod = operatorDeployment(objects).spec?.template.spec;
      expect(pod?.volumes).to.deep.include({
        name: "redis-ca",
        secret: { secretName: "redis-ca", items: [{ key: "ca.crt", path: "ca.crt" }] },
      });
      expect(operatorContainer(objects).volumeMounts).to.deep.include({
        name: "redis-ca",
        mountPath: "/etc/sfn-operator/redis-ca",
        readOnly: true,
      });
    });

    it("passes Sentinel, a password and the lease TTL to the operator", async () => {
      const objects = await template(["-f", ciFile("redis-sentinel-values.yaml")]);
      const { env, problems } = parsedSettings(objects);
      expect(problems).to.deep.equal([]);
      expect(env).to.include({
        SFN_REDIS_URL: "redis://mymaster:6379",
        SFN_REDIS_SENTINELS:
          "redis-sentinel-0.redis-sentinel.redis.svc:26379,redis-sentinel-1.redis-sentinel.redis.svc:26379,redis-sentinel-2.redis-sentinel.redis.svc:26379",
        SFN_REDIS_SENTINEL_MASTER: "semaphores",
        SFN_REDIS_LEASE_TTL: "20s",
        SFN_POLLER_REDIS_PASSWORD_SECRET: "redis-auth:password",
      });
    });

    it("runs the bundled Redis when asked: non-root, read-only, no persistence, the URL set for the operator", async () => {
      const objects = await template(["-f", ciFile("bundled-redis-values.yaml")]);
      const redis = one<V1Deployment>(objects, "Deployment", `${RELEASE}-redis`);
      const pod = redis.spec?.template.spec;
      expect(pod?.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 999 });
      const container = pod?.containers[0];
      expect(container?.image).to.match(/^docker\.io\/library\/redis:[0-9]+\.[0-9]+\.[0-9]+-alpine$/);
      expect(container?.securityContext).to.deep.include({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
      expect(container?.args).to.include.ordered.members(["--save", "", "--appendonly", "no"]);
      expect(container?.args).to.include("noeviction");
      expect(pod?.volumes).to.deep.equal([{ name: "data", emptyDir: { sizeLimit: "64Mi" } }]);
      const service = one(objects, "Service", `${RELEASE}-redis`);
      expect(service.spec).to.deep.include({
        ports: [{ name: "redis", port: 6379, targetPort: "redis", protocol: "TCP" }],
      });
      const { env, problems } = parsedSettings(objects);
      expect(problems).to.deep.equal([]);
      expect(env.SFN_REDIS_URL).to.equal(`redis://${RELEASE}-redis.${NAMESPACE}.svc:6379`);
    });
  });

  describe("monitoring", () => {
    it("renders the ServiceMonitor, PodMonitor, PrometheusRule and dashboard from files/", async () => {
      const objects = await template(["-f", ciFile("monitoring-all-values.yaml")]);
      const service = one(objects, "Service", `${RELEASE}-metrics`);
      const serviceMonitor = one(objects, "ServiceMonitor");
      const monitorSpec = serviceMonitor.spec as {
        selector: { matchLabels: Record<string, string> };
        endpoints: Array<{ port: string }>;
      };
      expect(service.metadata.labels).to.include(monitorSpec.selector.matchLabels);
      expect(monitorSpec.endpoints[0]?.port).to.equal("metrics");
      expect(serviceMonitor.metadata.labels?.release).to.equal("kube-prometheus-stack");

      const podMonitor = one(objects, "PodMonitor");
      expect(podMonitor.spec).to.deep.include({
        selector: {
          matchLabels: {
            "app.kubernetes.io/managed-by": "sfn-operator",
            "app.kubernetes.io/component": "poller",
          },
        },
        namespaceSelector: { any: true },
      });
      expect(
        (podMonitor.spec as { podMetricsEndpoints: Array<{ port: string }> }).podMetricsEndpoints[0]?.port,
      ).to.equal("metrics");

      const alerts = YAML.parse(readFileSync(path.join(CHART, "files/alerts.yaml"), "utf8")) as
        | { groups: unknown[] }
        | unknown[];
      const rule = one(objects, "PrometheusRule");
      expect((rule.spec as { groups: unknown[] }).groups).to.deep.equal(
        Array.isArray(alerts) ? alerts : alerts.groups,
      );

      const dashboard = one(objects, "ConfigMap", `${RELEASE}-dashboard`);
      expect(dashboard.metadata.labels?.grafana_dashboard).to.equal("1");
      const data = dashboard.data as Record<string, string>;
      expect(JSON.parse(data["sfn-operator.json"] ?? "")).to.deep.equal(
        JSON.parse(readFileSync(path.join(CHART, "files/dashboard.json"), "utf8")),
      );
    });

    it("scrapes the pollers of the watched namespaces only when some are named", async () => {
      const objects = await render(REDIS, {
        watchNamespaces: ["team-a", "team-b"],
        metrics: { podMonitor: { enabled: true } },
      });
      expect(one(objects, "PodMonitor").spec).to.deep.include({
        namespaceSelector: { matchNames: ["team-a", "team-b"] },
      });
    });
  });
});
