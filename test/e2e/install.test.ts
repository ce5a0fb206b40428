/**
 * The README's path, end to end, as a user takes it: `helm install` the chart, `kubectl apply -f
 * examples/`, tasks processed, `kubectl get/describe/wait sfs`, `helm upgrade`, `helm uninstall`.
 *
 * On the real control plane (test/support/cluster.ts) with kwok: pods become Ready but run nothing,
 * so the processes the pods would run are started here, each from its Deployment as the API has it
 * (test/support/pod-env.ts), rewriting only what a laptop is not a pod about, each rewrite explained
 * where it is made. The operator runs with a token of the chart's own ServiceAccount, so its
 * permissions are exactly what the chart grants: a missing rule fails this test. Redis, the target
 * and the Step Functions emulator are local processes on loopback.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { V1Deployment } from "@kubernetes/client-node";
import { expect } from "chai";
import type { Context } from "mocha";
import { pollerDeploymentName } from "../../src/operator/poller-deployment.ts";
import { SampleService } from "../../src/sample/sample-service.ts";
import { eventually, getJson } from "../cluster-tests/helpers.ts";
import { awsEnvFor, CliProcess, REPO_ROOT } from "../support/cli.ts";
import type { TestCluster } from "../support/cluster.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import { startTestEmulator, type TestEmulator } from "../support/emulator.ts";
import { type HelmResult, runHelm } from "../support/helm.ts";
import { podEnvironment } from "../support/pod-env.ts";
import { freePort, RedisServer } from "../support/redis.ts";

const RELEASE = "sfn-operator";
/** The README's values: the image in the user's registry (kwok pulls nothing), the IRSA roles. */
const IMAGE_REPOSITORY = "registry.example.com/sfn-operator";
const OPERATOR_ROLE = "arn:aws:iam::123456789012:role/sfn-operator";
const POLLER_ROLE = "arn:aws:iam::123456789012:role/sfn-poller";
const RELEASE_NAMESPACE = "sfn-system";
const CHART = path.join(REPO_ROOT, "charts/sfn-operator");
const EXAMPLES = path.join(REPO_ROOT, "examples");
/** The Service each example's source targets, and the path its tasks are POSTed to. */
const EXAMPLE_TARGETS = {
  sum: { service: "sum-service", path: "/step/sum", replicas: 2 },
  split: { service: "split-service", path: "/step/split", replicas: 1 },
} as const;
type Example = keyof typeof EXAMPLE_TARGETS;

interface RunningProcess {
  name: string;
  cli: CliProcess;
  metricsPort: number;
}

describe("e2e: helm install, kubectl apply -f examples/, tasks processed, helm upgrade and uninstall", function () {
  this.timeout(240_000);
  // Each step stands on the one before it.
  this.bail(true);

  let cluster: TestCluster;
  let redis: RedisServer;
  let emulator: TestEmulator;
  let target: SampleService;
  let helmHome: string;
  let sourcesNamespace: string;
  const operators: RunningProcess[] = [];
  const pollers: RunningProcess[] = [];

  before(async function () {
    this.timeout(180_000);
    cluster = testCluster();
    redis = await RedisServer.start();
    emulator = await startTestEmulator({ longPollSeconds: 2 });
    target = await new SampleService().start();
    helmHome = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-e2e-helm-"));
    sourcesNamespace = `e2e-examples`;
  });

  afterEach(function (this: Context) {
    if (this.currentTest?.state !== "failed") return;
    for (const p of [...operators, ...pollers]) console.error(`--- ${p.name}\n${p.cli.tail(60)}`);
  });

  after(async function () {
    this.timeout(120_000);
    await Promise.all([...pollers, ...operators].map((p) => p.cli.stop()));
    // Leave the shared cluster as the other suites expect it: no sources, no release.
    await cluster
      ?.kubectl(["delete", "namespace", sourcesNamespace, "--ignore-not-found", "--wait=false"], {
        allowFailure: true,
      })
      .catch(() => undefined);
    await helm(["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--ignore-not-found", "--wait"], true).catch(
      () => undefined,
    );
    await target?.close();
    await emulator?.close();
    await redis?.stop();
    if (helmHome) await fs.rm(helmHome, { recursive: true, force: true });
  });

  /** Runs the real helm against the test cluster, with its own cache and config folders. */
  async function helm(args: string[], allowFailure = false): Promise<HelmResult> {
    const result = await runHelm(args, {
      home: helmHome,
      kubeconfig: cluster.kubeconfig,
      timeoutMs: 180_000,
    });
    if (result.code !== 0 && !allowFailure) {
      throw new Error(`helm ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
    }
    return result;
  }

  /**
   * The README's install command ("1. Install the chart"), value for value, with this cluster's
   * addresses: the Redis and (instead of AWS) the emulator.
   */
  function installValues(): string[] {
    return [
      "--set",
      `image.repository=${IMAGE_REPOSITORY}`,
      "--set",
      "image.tag=0.1.0",
      "--set",
      `redis.url=${redis.url}`,
      "--set",
      "aws.region=us-east-1",
      "--set",
      `serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=${OPERATOR_ROLE}`,
      "--set",
      `pollers.serviceAccount.namespaces={${sourcesNamespace}}`,
      "--set",
      `pollers.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=${POLLER_ROLE}`,
      // A VPC endpoint in a real cluster; here the emulator. Pollers get it too.
      "--set",
      `aws.endpointUrl=${emulator.emulator.url}`,
    ];
  }

  async function chartDeployment(): Promise<V1Deployment> {
    const deployment = await getJson<V1Deployment>(cluster, ["deployment", "-n", RELEASE_NAMESPACE, RELEASE]);
    if (deployment === undefined) throw new Error(`no Deployment ${RELEASE_NAMESPACE}/${RELEASE}`);
    return deployment;
  }

  /**
   * Starts the operator as pod `pod` of the chart's Deployment: its environment as the kubelet would
   * give it, with the chart ServiceAccount's token (TokenRequest) instead of the mounted one.
   */
  async function startOperator(pod: string): Promise<RunningProcess> {
    const deployment = await chartDeployment();
    const serviceAccount = deployment.spec?.template.spec?.serviceAccountName;
    expect(serviceAccount, "the chart's Deployment names its ServiceAccount").to.be.a("string");
    const env = await podEnvironment(cluster, deployment, pod);
    // In a pod the client finds the mounted token; here a kubeconfig with a token of the same
    // ServiceAccount: the same identity, so the same permissions.
    env.KUBECONFIG = await cluster.serviceAccountKubeconfig(RELEASE_NAMESPACE, serviceAccount ?? "");
    // Pods have a network namespace each; local processes share one port space.
    const metricsPort = await freePort();
    env.SFN_METRICS_PORT = String(metricsPort);
    // IRSA / Pod Identity give pods AWS credentials; here the emulator's fake ones (only what the
    // Deployment leaves unset: its region and endpoint stay as the chart rendered them).
    for (const [name, value] of Object.entries(awsEnvFor(emulator.emulator.url))) env[name] ??= value;
    const running = { name: `operator ${pod}`, cli: new CliProcess(["operator"], env), metricsPort };
    operators.push(running);
    return running;
  }

  /** Starts pod `pod` of a source's poller Deployment as a local process. */
  async function startPoller(example: Example, pod: string): Promise<RunningProcess> {
    const deployment = await getJson<V1Deployment>(cluster, [
      "deployment",
      "-n",
      sourcesNamespace,
      pollerDeploymentName(example),
    ]);
    if (deployment === undefined) throw new Error(`no poller Deployment for ${example}`);
    const env = await podEnvironment(cluster, deployment, pod);
    const { service, path: targetPath } = EXAMPLE_TARGETS[example];
    expect(env.SFN_TARGET_URL, "the example's Service").to.equal(
      `http://${service}.${sourcesNamespace}.svc:80`,
    );
    expect(env.SFN_TARGET_PATH).to.equal(targetPath);
    // The one rewrite of the target: the Service's DNS name resolves only inside a cluster.
    env.SFN_TARGET_URL = target.url;
    const metricsPort = await freePort();
    env.SFN_METRICS_PORT = String(metricsPort);
    for (const [name, value] of Object.entries(awsEnvFor(emulator.emulator.url))) env[name] ??= value;
    expect(env.AWS_ENDPOINT_URL_SFN, "the chart's aws.endpointUrl reached the pollers").to.equal(
      emulator.emulator.url,
    );
    const running = { name: `poller ${pod}`, cli: new CliProcess(["poller"], env), metricsPort };
    pollers.push(running);
    return running;
  }

  async function isLeader(operator: RunningProcess): Promise<boolean> {
    const text = await (await fetch(`http://127.0.0.1:${operator.metricsPort}/metrics`)).text();
    return /^sfn_operator_leader(\{[^}]*\})? 1$/m.test(text);
  }

  it("1. helm install: the release's operator pods become Ready", async () => {
    // The README creates the sources' namespace first: the chart puts the pollers' ServiceAccount there.
    await cluster.kubectl(["create", "namespace", sourcesNamespace]);
    const { stdout } = await helm([
      "install",
      RELEASE,
      CHART,
      "-n",
      RELEASE_NAMESPACE,
      "--create-namespace",
      ...installValues(),
      "--wait",
      "--timeout=3m",
    ]);
    expect(stdout).to.contain("STATUS: deployed");
    // NOTES.txt tells the user what to do next.
    expect(stdout).to.contain("kubectl get sfs");
    await cluster.kubectl([
      "rollout",
      "status",
      `deployment/${RELEASE}`,
      "-n",
      RELEASE_NAMESPACE,
      "--timeout=120s",
    ]);
    const deployment = await chartDeployment();
    expect(deployment.status?.readyReplicas).to.equal(1);
    await cluster.kubectl([
      "wait",
      "--for=condition=Established",
      "crd/stepfunctionsources.sfn-operator.dev",
      "--timeout=60s",
    ]);
  });

  it("2. the operator runs with exactly the chart's ServiceAccount and becomes ready", async () => {
    const account = await getJson<{ metadata: { annotations?: Record<string, string> } }>(cluster, [
      "serviceaccount",
      "-n",
      RELEASE_NAMESPACE,
      RELEASE,
    ]);
    expect(account?.metadata.annotations?.["eks.amazonaws.com/role-arn"]).to.equal(OPERATOR_ROLE);
    const operator = await startOperator(`${RELEASE}-0`);
    await eventually(
      "the operator's /readyz",
      async () => (await fetch(`http://127.0.0.1:${operator.metricsPort}/readyz`)).ok,
      60_000,
    );
    await eventually("the operator leads", () => isLeader(operator), 30_000);
  });

  it("3. kubectl apply -f examples/: poller Deployments appear with the right replicas", async () => {
    // The pollers' ServiceAccount, from the chart, with the README's IRSA annotation.
    const pollerAccount = await getJson<{ metadata: { annotations?: Record<string, string> } }>(cluster, [
      "serviceaccount",
      "-n",
      sourcesNamespace,
      "sfn-poller",
    ]);
    expect(pollerAccount?.metadata.annotations?.["eks.amazonaws.com/role-arn"]).to.equal(POLLER_ROLE);
    await cluster.kubectl(["apply", "-n", sourcesNamespace, "-f", EXAMPLES]);
    for (const [example, { replicas }] of Object.entries(EXAMPLE_TARGETS)) {
      const deployment = await eventually(
        `the poller Deployment of ${example}`,
        () =>
          getJson<V1Deployment>(cluster, [
            "deployment",
            "-n",
            sourcesNamespace,
            pollerDeploymentName(example),
          ]),
        60_000,
      );
      expect(deployment.spec?.replicas, example).to.equal(replicas);
      // The chart's default poller image (the operator's own) and ServiceAccount.
      expect(deployment.spec?.template.spec?.containers[0]?.image).to.equal(`${IMAGE_REPOSITORY}:0.1.0`);
      expect(deployment.spec?.template.spec?.serviceAccountName).to.equal("sfn-poller");
    }
  });

  it("4. pollers started from their Deployments process the examples' tasks as the rules say", async () => {
    for (const [example, { replicas }] of Object.entries(EXAMPLE_TARGETS) as Array<
      [Example, { replicas: number }]
    >) {
      for (let i = 0; i < replicas; i++) await startPoller(example, `${example}-poller-${i}`);
    }
    const enqueue = async (activityName: Example, input: unknown): Promise<string> => {
      const { tasks } = await emulator.side.enqueue({ activityName, input });
      return tasks[0]?.taskId ?? "";
    };
    const ids = {
      sum: await enqueue("sum", { numbers: [1, 2, 3] }),
      notANumber: await enqueue("sum", { numbers: [1, "zwei"] }),
      split: await enqueue("split", { text: "Grüße aus Köln" }),
    };
    const tasks = await eventually(
      "every task closed",
      async () => {
        const all = await emulator.side.listTasks({});
        const ours = Object.values(ids).map((id) => all.find((task) => task.taskId === id));
        return ours.every((task) => task?.closedAt !== undefined) ? ours : undefined;
      },
      90_000,
    );
    const [sum, notANumber, split] = tasks;
    expect(sum?.status).to.equal("SUCCEEDED");
    expect(JSON.parse(sum?.output ?? "null")).to.deep.equal({ sum: 6 });
    expect(notANumber?.status).to.equal("FAILED");
    expect(notANumber?.error).to.equal("Sum.NotANumber");
    expect(notANumber?.cause).to.contain('cannot add "zwei"');
    expect(split?.status).to.equal("SUCCEEDED");
    expect(JSON.parse(split?.output ?? "null")).to.deep.equal({ words: ["Grüße", "aus", "Köln"] });
  });

  it("5. kubectl get sfs shows the figures; describe shows conditions and events; wait works", async () => {
    await cluster.kubectl([
      "wait",
      "--for=condition=Ready",
      "sfs/sum",
      "sfs/split",
      "-n",
      sourcesNamespace,
      "--timeout=90s",
    ]);
    const rows = await eventually(
      "the figures in kubectl get sfs",
      async () => {
        const { stdout } = await cluster.kubectl(["get", "sfs", "-n", sourcesNamespace]);
        const [header, ...lines] = stdout.trim().split("\n");
        const titles = (header ?? "").trim().split(/\s+/);
        const table = Object.fromEntries(
          lines.map((line) => {
            const values = line.trim().split(/\s+/);
            return [values[0], Object.fromEntries(titles.map((title, i) => [title, values[i]]))];
          }),
        ) as Record<string, Record<string, string>>;
        return table.sum?.SUCCEEDED === "1" && table.sum.FAILED === "1" && table.split?.SUCCEEDED === "1"
          ? table
          : undefined;
      },
      60_000,
    );
    expect(rows.sum).to.include({
      ACTIVITY: "sum",
      MAX: "10",
      POLLERS: "2/2",
      "IN-FLIGHT": "0",
      READY: "True",
    });
    expect(rows.split).to.include({
      ACTIVITY: "split",
      MAX: "1",
      POLLERS: "1/1",
      "IN-FLIGHT": "0",
      SUCCEEDED: "1",
      FAILED: "0",
      READY: "True",
    });
    const { stdout: described } = await cluster.kubectl(["describe", "sfs", "sum", "-n", sourcesNamespace]);
    for (const condition of [
      "Ready",
      "ActivityResolved",
      "TargetFound",
      "PollersAvailable",
      "SemaphoreHealthy",
    ]) {
      // kubectl prints each condition's fields in order: ... Status, then Type.
      expect(described, condition).to.match(new RegExp(`Status:\\s+True\\s+Type:\\s+${condition}\\b`));
    }
    expect(described).to.contain("Events:");
    expect(described).to.match(/ActivityResolved|Ready/);
  });

  it("6a. helm upgrade: debug logs, two replicas with leader election; the old leader hands over to one new one", async () => {
    // The old operator keeps leading during the upgrade, as its pod does until the new ones are ready.
    const old = operators.splice(0);
    expect(old).to.have.length(1);
    await helm([
      "upgrade",
      RELEASE,
      CHART,
      "-n",
      RELEASE_NAMESPACE,
      ...installValues(),
      "--set",
      "logLevel=debug",
      "--set",
      "replicaCount=2",
      "--set",
      "leaderElection.enabled=true",
      "--wait",
      "--timeout=3m",
    ]);
    const deployment = await chartDeployment();
    expect(deployment.spec?.replicas).to.equal(2);
    expect(deployment.status?.readyReplicas).to.equal(2);
    const env = deployment.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.find((v) => v.name === "SFN_LOG_LEVEL")?.value).to.equal("debug");
    expect(env.find((v) => v.name === "SFN_LEADER_ELECT")?.value).to.equal("true");
    const pdb = await getJson(cluster, ["poddisruptionbudget", "-n", RELEASE_NAMESPACE, RELEASE]);
    expect(pdb, "a PodDisruptionBudget for two replicas").to.not.equal(undefined);

    const [first, second] = [await startOperator(`${RELEASE}-a`), await startOperator(`${RELEASE}-b`)];
    // Both new ones stand by while the old one leads; then the old pod is stopped (SIGTERM, as the
    // rollout does): it releases the Lease and one new operator takes over.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await isLeader(first).catch(() => false)).to.equal(false);
    expect(await isLeader(second).catch(() => false)).to.equal(false);
    expect(await isLeader(old[0] as RunningProcess)).to.equal(true);
    await stopAll(old);
    await eventually(
      "exactly one leader",
      async () => {
        const leaders = await Promise.all(
          [first, second].map((operator) => isLeader(operator).catch(() => false)),
        );
        return leaders.filter(Boolean).length === 1;
      },
      60_000,
    );
    // Both standby and leader are ready (a standby is healthy).
    for (const operator of [first, second]) {
      expect((await fetch(`http://127.0.0.1:${operator.metricsPort}/readyz`)).ok).to.equal(true);
    }
    // Debug logging reached the operator processes.
    await eventually(
      "a debug line",
      async () =>
        [first, second].some((operator) => operator.cli.logs().some((line) => line.level === "debug")),
      30_000,
    );
  });

  it("6b. helm uninstall: the chart's objects go; the CRD, the sources and their pollers stay, as documented", async () => {
    // The kubelet stops the operator pods when their Deployment goes: SIGTERM, the lease released.
    await stopAll(operators);
    await stopAll(pollers);
    await helm(["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", "--timeout=3m"]);

    const labelled = `app.kubernetes.io/instance=${RELEASE}`;
    const kinds =
      "deployments,replicasets,pods,services,serviceaccounts,configmaps,secrets,roles,rolebindings,poddisruptionbudgets";
    const left = await eventually(
      "the release's objects gone",
      async () => {
        const { stdout } = await cluster.kubectl(["get", kinds, "-A", "-l", labelled, "-o", "name"]);
        const cluster_ = await cluster.kubectl([
          "get",
          "clusterroles,clusterrolebindings",
          "-l",
          labelled,
          "-o",
          "name",
        ]);
        const names = [...stdout.split("\n"), ...cluster_.stdout.split("\n")].filter(Boolean);
        return names.length === 0 ? names : undefined;
      },
      90_000,
    );
    expect(left).to.deep.equal([]);

    // What remains, each by the documented policy (README, "Upgrade and uninstall"):
    // the CRD (helm never deletes what its crds/ folder installed: deleting it would delete every
    // user's sources) ...
    await cluster.kubectl(["get", "crd", "stepfunctionsources.sfn-operator.dev"]);
    // ... the users' sources and the poller Deployments they own (delete the sources first, while the
    // operator runs, to stop their pollers and clean their Redis keys) ...
    const { stdout: sources } = await cluster.kubectl(["get", "sfs", "-n", sourcesNamespace, "-o", "name"]);
    expect(sources.trim().split("\n").sort()).to.deep.equal([
      "stepfunctionsource.sfn-operator.dev/split",
      "stepfunctionsource.sfn-operator.dev/sum",
    ]);
    const { stdout: deployments } = await cluster.kubectl([
      "get",
      "deployments",
      "-n",
      sourcesNamespace,
      "-l",
      "app.kubernetes.io/managed-by=sfn-operator",
      "-o",
      "name",
    ]);
    expect(deployments.trim().split("\n").sort()).to.deep.equal([
      `deployment.apps/${pollerDeploymentName("split")}`,
      `deployment.apps/${pollerDeploymentName("sum")}`,
    ]);
    // ... and in the release namespace, only the leader-election Lease the operator made (not the
    // chart's: it goes with the namespace) and what Kubernetes itself puts in every namespace.
    const { stdout: inRelease } = await cluster.kubectl([
      "get",
      "all,serviceaccounts,configmaps,secrets,roles,rolebindings,leases,poddisruptionbudgets",
      "-n",
      RELEASE_NAMESPACE,
      "-o",
      "name",
    ]);
    expect(inRelease.trim().split("\n").filter(Boolean).sort()).to.deep.equal([
      "configmap/kube-root-ca.crt",
      `lease.coordination.k8s.io/${RELEASE}`,
      "serviceaccount/default",
    ]);
    const { stdout: releases } = await helm(["list", "-A", "-q"]);
    expect(releases.trim()).to.equal("");

    // The documented clean-up of sources without an operator: their finalizer must be removed by hand.
    for (const name of ["sum", "split"]) {
      await cluster.kubectl([
        "patch",
        "sfs",
        name,
        "-n",
        sourcesNamespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
      ]);
    }
    await cluster.kubectl(["delete", "-n", sourcesNamespace, "-f", EXAMPLES, "--wait=true", "--timeout=60s"]);
  });
});

async function stopAll(processes: RunningProcess[]): Promise<void> {
  const results = await Promise.all(processes.map((p) => p.cli.stop()));
  for (const [i, result] of results.entries()) {
    expect(result, `${processes[i]?.name} exits 0 on SIGTERM`).to.deep.equal({ code: 0, signal: null });
  }
  processes.length = 0;
}
