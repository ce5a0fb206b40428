/**
 * A real Kubernetes control plane for tests, run as local processes (no Docker): etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler and kwok with one fake Node, so that
 * Deployments get Running and Ready pods. Modelled on controller-runtime's envtest, plus the
 * controllers that envtest leaves out, because operators get garbage collection, ReplicaSets and pod
 * readiness wrong too.
 *
 * The binaries come from test/cluster/build.sh. Everything of one cluster lives in one folder (its
 * credentials, etcd data, a log file per component, the admin kubeconfig and a state file with the
 * pids), so that another process can find and stop it (`npm run cluster:down`).
 *
 * Tests get a {@link TestCluster}: these local processes; with SFN_TEST_USE_EXISTING_CLUSTER=1, the
 * cluster that KUBECONFIG names; or, with SFN_TEST_USE_DOCKER=1 (or when no binaries are cached and a
 * Docker engine answers), k3s and kwok in containers (test/support/k3s-cluster.ts). The choice:
 * test/support/harness-selection.ts.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  type KubectlOptions,
  type KubectlResult,
  kubectl,
  writeKubeconfig,
  writeServiceAccountKubeconfig,
} from "./cluster-kubectl.ts";
import { createPki } from "./cluster-pki.ts";
import {
  canListen,
  freePort,
  freeStablePort,
  isRunning,
  killProcessesSync,
  type ProcessRecord,
  type Started,
  startProcess,
  stopProcesses,
  tail,
} from "./cluster-processes.ts";
import { type Choice, chooseBackend, isDockerReachable, needsDockerProbe } from "./harness-selection.ts";
import type { K3sCluster } from "./k3s-cluster.ts";
import { repoRoot } from "./repo-root.ts";

const REPO_ROOT = repoRoot(path.dirname(fileURLToPath(import.meta.url)));

/** Where `npm run cluster:up` keeps its cluster; the admin kubeconfig is `.cluster/kubeconfig`. */
export const DEV_CLUSTER_DIR = path.join(REPO_ROOT, ".cluster");

/** The components, in start order. */
export const COMPONENTS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kwok",
] as const;

/** Name of the fake Node that kwok manages; pods are scheduled onto it. */
export const FAKE_NODE = "kwok-node-0";

/** A cluster the tests can use, however it was provided. */
export interface TestCluster {
  /**
   * `local`: processes started by this harness; `existing`: KUBECONFIG's cluster; `docker`: k3s (its
   * kubelet kept free of test pods) and kwok in containers started by this harness.
   */
  readonly kind: "local" | "existing" | "docker";
  /** Admin kubeconfig file. */
  readonly kubeconfig: string;
  readonly server: string;
  /** Log file of each component (none for an existing cluster; each container's for `docker`). */
  readonly logFiles: Readonly<Record<string, string>>;
  /** Runs kubectl with the admin kubeconfig. */
  kubectl(args: string[], options?: KubectlOptions): Promise<KubectlResult>;
  /**
   * Writes a kubeconfig acting as ServiceAccount `namespace/name` (a TokenRequest token) and returns
   * its path; the ServiceAccount must exist.
   */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** The last lines of every component's log, for a failing test to print. */
  logTails(lines?: number): string;
  /**
   * Stops what this harness started (nothing for an existing cluster). A test run's own cluster
   * folder is removed too, unless `keepFiles` (a failed run keeps its logs).
   */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
  /**
   * Stops the kube-apiserver alone (etcd, controllers and kwok keep running), for robustness tests:
   * SIGTERM (a graceful shutdown, as in an upgrade), or SIGKILL with `kill` (a crash). Local clusters
   * only: an existing cluster or k3s throws, so such tests skip when `kind !== "local"`.
   */
  stopApiServer(options?: { kill?: boolean }): Promise<void>;
  /** Starts the kube-apiserver stopped by {@link stopApiServer} again, and waits for its /readyz. */
  startApiServer(options?: { timeoutMs?: number }): Promise<void>;
  /** {@link stopApiServer} then {@link startApiServer}. */
  restartApiServer(options?: { kill?: boolean; timeoutMs?: number }): Promise<void>;
}

/** The state file of a local cluster (`<dir>/state.json`). */
export interface ClusterState {
  dir: string;
  kubeconfig: string;
  server: string;
  binDir: string;
  processes: ProcessRecord[];
  /** The kube-apiserver's arguments, to start it again alone (LocalCluster.startApiServer). */
  apiserverArgs?: string[];
  /** The API server's audit log (JSON lines), when started with an audit policy. */
  auditLog?: string;
  /** Set once every component is ready. */
  readyAt?: string;
}

/** The folder of the built binaries, as test/cluster/build.sh computes it (one source of truth). */
export function binDir(): string {
  if (process.env.SFN_TEST_BIN) return process.env.SFN_TEST_BIN;
  return execFileSync("bash", [path.join(REPO_ROOT, "test/cluster/build.sh"), "--print-bin-dir"], {
    encoding: "utf8",
  }).trim();
}

/** The pinned versions of test/cluster/versions.env (KUBE_VERSION, ETCD_VERSION, ...). */
export function pinnedVersions(): Record<string, string> {
  const text = readFileSync(path.join(REPO_ROOT, "test/cluster/versions.env"), "utf8");
  return Object.fromEntries(
    text
      .split("\n")
      .map((line) => /^([A-Z][A-Z0-9_]*)=(\S+)$/.exec(line.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
}

/** Whether every control plane binary (test/cluster/build.sh's) is in {@link binDir}. */
export function controlPlaneBinariesCached(): boolean {
  const dir = binDir();
  return COMPONENTS.every((component) => existsSync(path.join(dir, component)));
}

/**
 * The helm binary: SFN_TEST_HELM, else the one built by test/cluster/build.sh, else `helm` from the
 * PATH (with Docker, build.sh builds nothing: docs/cluster.md "With Docker").
 */
export function helmBin(): string {
  if (process.env.SFN_TEST_HELM) return process.env.SFN_TEST_HELM;
  const built = path.join(binDir(), "helm");
  return existsSync(built) ? built : "helm";
}

function statePath(dir: string): string {
  return path.join(dir, "state.json");
}

/** The state of the cluster in `dir`, if one was started there. */
export async function readState(dir: string): Promise<ClusterState | undefined> {
  try {
    return JSON.parse(await fs.readFile(statePath(dir), "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

async function writeState(state: ClusterState): Promise<void> {
  const file = statePath(state.dir);
  await fs.writeFile(`${file}.tmp`, JSON.stringify(state, null, 2));
  await fs.rename(`${file}.tmp`, file);
}

interface TlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

/** GET or POST over https with the cluster's CA (and a client certificate when given). */
async function request(
  url: string,
  tls: TlsFiles,
  options: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: string }> {
  const [ca, cert, key] = await Promise.all([
    fs.readFile(tls.ca),
    tls.cert ? fs.readFile(tls.cert) : undefined,
    tls.key ? fs.readFile(tls.key) : undefined,
  ]);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? "GET",
        ca,
        cert,
        key,
        timeout: 5_000,
        headers: payload ? { "content-type": "application/json" } : {},
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout: ${url}`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Plain-http GET (etcd and kwok serve their health endpoints without TLS on loopback). */
async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

/**
 * Polls `check` until it returns true; fails early when one of `watched` exits, with the tail of
 * its log, since a crashed component never becomes ready (none for containers: the k3s harness).
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  watched: Started[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    for (const started of watched) {
      if (started.exit) {
        const { component, log } = started.record;
        throw new Error(
          `${component} exited (${JSON.stringify(started.exit)}) while waiting for ${what}; ${log}:\n${tail(log, 30)}`,
        );
      }
    }
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${lastError}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Options of {@link startLocalCluster}. */
export interface StartOptions {
  /** Folder of the cluster (its previous content, if any, is stopped and replaced). */
  dir: string;
  /** Progress lines. */
  log?: (message: string) => void;
  timeoutMs?: number;
  /**
   * An `audit.k8s.io/v1` Policy: the API server then writes the requests it selects to
   * `<dir>/logs/audit.log`, one JSON event per line and stage ({@link LocalCluster.auditLog}). The
   * benchmarks count the operator's requests this way (bench/operator.ts).
   */
  auditPolicy?: object;
  /** Pods the fake Node takes (its allocatable `pods`); default 110, a kubelet's default. */
  maxPods?: number;
  /**
   * Client rate limit of the controller-manager and the scheduler, requests/s (burst: twice that);
   * default theirs, 20 (burst 30) and 50 (burst 100), which make them take about 100 s to bring the
   * pods of 400 new Deployments up (9 s at 300/s).
   */
  controllerQps?: number;
}

/**
 * The apiserver flags follow envtest's (RBAC, service account issuer and keys, a service IP range).
 * The ServiceAccount admission plugin stays on since the controller-manager creates the `default`
 * ServiceAccounts it needs; the endpoint reconciler is off because it would publish 127.0.0.1 as the
 * `kubernetes` Service's endpoint, which the API refuses (loopback).
 */
function apiserverArgs(
  dir: string,
  pki: Awaited<ReturnType<typeof createPki>>,
  ports: Ports,
  audit?: { policyFile: string; logFile: string },
): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${ports.apiserver}`,
    `--cert-dir=${path.join(dir, "apiserver")}`,
    `--tls-cert-file=${pki.serving.cert}`,
    `--tls-private-key-file=${pki.serving.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    "--authorization-mode=RBAC",
    "--service-cluster-ip-range=10.0.0.0/24",
    `--service-account-issuer=https://127.0.0.1:${ports.apiserver}/`,
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    "--allow-privileged=true",
    "--endpoint-reconciler-type=none",
    // The aggregation layer, as in real clusters; without it every component that delegates
    // authentication logs "missing content for CA bundle ... requestheader-client-ca-file".
    `--requestheader-client-ca-file=${pki.ca.cert}`,
    "--requestheader-allowed-names=front-proxy-client",
    "--requestheader-username-headers=X-Remote-User",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    `--proxy-client-cert-file=${pki.frontProxyClient.cert}`,
    `--proxy-client-key-file=${pki.frontProxyClient.key}`,
    "--profiling=false",
    // The log backend in its default blocking mode: an event is on disk before the request completes.
    ...(audit
      ? [
          `--audit-policy-file=${audit.policyFile}`,
          `--audit-log-path=${audit.logFile}`,
          "--audit-log-format=json",
          "--audit-log-maxsize=0",
        ]
      : []),
  ];
}

/** kwok's arguments about the fake Node (here and in Docker: test/support/k3s-cluster.ts). */
export const KWOK_NODE_ARGS: readonly string[] = [
  "--manage-all-nodes=false",
  "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
  // The fake Node's heartbeat is a Lease renewed every 10 s, as a kubelet's. Without one kwok
  // patches the Node's status only every ~55 s, beyond the node lifecycle controller's grace
  // period (50 s): the Node then flaps to NotReady and every pod on it with it, so that a
  // Deployment's ready replicas drop in the middle of a test.
  "--node-lease-duration-seconds=40",
  "--node-ip=127.0.0.1",
  "--cidr=10.244.0.0/16",
];

interface Ports {
  etcd: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
}

/** A Node that kwok (--manage-nodes-with-annotation-selector) keeps Ready and runs pods on. */
export const fakeNode = (maxPods: number) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name: FAKE_NODE,
    annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
    labels: {
      "kubernetes.io/hostname": FAKE_NODE,
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
      type: "kwok",
    },
  },
  status: {
    allocatable: { cpu: "32", memory: "256Gi", pods: String(maxPods) },
    capacity: { cpu: "32", memory: "256Gi", pods: String(maxPods) },
    nodeInfo: {
      architecture: "amd64",
      operatingSystem: "linux",
      kubeletVersion: "fake",
      kubeProxyVersion: "fake",
    },
  },
});

/**
 * Starts a control plane in `options.dir` and resolves once the apiserver is ready, every component
 * reports healthy, the fake Node is Ready and the `default` ServiceAccount exists. On failure it
 * stops what it started and rejects with the failing component's log tail.
 */
export async function startLocalCluster(options: StartOptions): Promise<LocalCluster> {
  const { dir } = options;
  const log = options.log ?? (() => {});
  const timeoutMs = options.timeoutMs ?? 120_000;
  const bins = binDir();
  for (const component of COMPONENTS) {
    if (!existsSync(path.join(bins, component))) {
      throw new Error(`${path.join(bins, component)} is missing: run test/cluster/build.sh first`);
    }
  }
  const t0 = Date.now();
  const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

  await stopCluster(dir);
  await fs.mkdir(dir, { recursive: true });
  for (const entry of [
    "pki",
    "etcd-data",
    "logs",
    "apiserver",
    "kubeconfigs",
    "kubeconfig",
    "kwok.yaml",
    "audit-policy.json",
  ]) {
    await fs.rm(path.join(dir, entry), { recursive: true, force: true });
  }
  await fs.mkdir(path.join(dir, "logs"));
  const [pki, ...portList] = await Promise.all([
    createPki(path.join(dir, "pki")),
    freePort(),
    freePort(),
    // The API server is restarted on its port by robustness tests: keep it out of the ephemeral range.
    freeStablePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const [etcd, etcdPeer, apiserver, controllerManager, scheduler, kwok] = portList as number[];
  const ports = { etcd, etcdPeer, apiserver, controllerManager, scheduler, kwok } as Ports;
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const state: ClusterState = {
    dir,
    kubeconfig: path.join(dir, "kubeconfig"),
    server,
    binDir: bins,
    processes: [],
  };
  const started: Started[] = [];
  // Components start concurrently: chain the state writes so that none is lost or interleaved.
  let saving = Promise.resolve();
  const saveState = (): Promise<void> => {
    saving = saving.then(() => writeState(state));
    return saving;
  };
  const start = async (component: string, args: string[]): Promise<Started> => {
    const s = await startProcess(
      component,
      path.join(bins, component),
      args,
      path.join(dir, "logs", `${component}.log`),
    );
    started.push(s);
    state.processes.push(s.record);
    // Recorded at once, so that `cluster:down` can stop a cluster whose start failed half-way.
    await saveState();
    return s;
  };
  const admin = { ca: pki.ca.cert, cert: pki.admin.cert, key: pki.admin.key };
  const ok = async (url: string, tls?: TlsFiles): Promise<boolean> => {
    const res = tls ? await request(url, tls) : await httpGet(url);
    return res.status === 200;
  };

  try {
    log(`starting a control plane in ${dir} (binaries: ${bins})`);
    const etcdProcess = await start("etcd", [
      "--name=sfn-test",
      `--data-dir=${path.join(dir, "etcd-data")}`,
      `--listen-client-urls=http://127.0.0.1:${ports.etcd}`,
      `--advertise-client-urls=http://127.0.0.1:${ports.etcd}`,
      `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-cluster=sfn-test=http://127.0.0.1:${ports.etcdPeer}`,
      // Throwaway data: no fsync makes every write, so every test, faster.
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    await waitFor(
      "etcd /health",
      () => ok(`http://127.0.0.1:${ports.etcd}/health`),
      [etcdProcess],
      timeoutMs,
    );
    log(`etcd ready (${elapsed()})`);

    let audit: { policyFile: string; logFile: string } | undefined;
    if (options.auditPolicy) {
      audit = {
        policyFile: path.join(dir, "audit-policy.json"),
        logFile: path.join(dir, "logs", "audit.log"),
      };
      // JSON is YAML: the API server reads either.
      await fs.writeFile(audit.policyFile, JSON.stringify(options.auditPolicy, null, 2));
      state.auditLog = audit.logFile;
    }
    state.apiserverArgs = apiserverArgs(dir, pki, ports, audit);
    const apiserverProcess = await start("kube-apiserver", state.apiserverArgs);
    // Component kubeconfigs are written while the apiserver starts.
    const caPem = await fs.readFile(pki.ca.cert, "utf8");
    const kubeconfigFor = async (
      name: string,
      cert: { cert: string; key: string },
      file: string,
    ): Promise<string> => {
      const [certPem, keyPem] = await Promise.all([
        fs.readFile(cert.cert, "utf8"),
        fs.readFile(cert.key, "utf8"),
      ]);
      await writeKubeconfig(file, { server, caPem, user: { certPem, keyPem }, name });
      return file;
    };
    const kc = (name: string): string => path.join(dir, "kubeconfigs", `${name}.yaml`);
    const [, cmKubeconfig, schedulerKubeconfig, kwokKubeconfig] = await Promise.all([
      kubeconfigFor("sfn-test", pki.admin, state.kubeconfig),
      kubeconfigFor("kube-controller-manager", pki.controllerManager, kc("kube-controller-manager")),
      kubeconfigFor("kube-scheduler", pki.scheduler, kc("kube-scheduler")),
      kubeconfigFor("kwok", pki.kwok, kc("kwok")),
      // An explicit, empty kwok configuration, so that a ~/.kwok/kwok.yaml of the machine is not read.
      fs.writeFile(
        path.join(dir, "kwok.yaml"),
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n",
      ),
    ]);
    await waitFor(
      "kube-apiserver /readyz",
      () => ok(`${server}/readyz`, admin),
      [apiserverProcess],
      timeoutMs,
    );
    log(`kube-apiserver ready (${elapsed()})`);

    const serving = (port: number): string[] => [
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--tls-cert-file=${pki.serving.cert}`,
      `--tls-private-key-file=${pki.serving.key}`,
    ];
    const componentKubeconfig = (file: string): string[] => [
      `--kubeconfig=${file}`,
      `--authentication-kubeconfig=${file}`,
      `--authorization-kubeconfig=${file}`,
      // One instance: no leader election to wait for.
      "--leader-elect=false",
      ...(options.controllerQps !== undefined
        ? [`--kube-api-qps=${options.controllerQps}`, `--kube-api-burst=${2 * options.controllerQps}`]
        : []),
    ];
    const [cm, sched, kwokProcess] = await Promise.all([
      start("kube-controller-manager", [
        ...componentKubeconfig(cmKubeconfig),
        ...serving(ports.controllerManager),
        `--root-ca-file=${pki.ca.cert}`,
        `--service-account-private-key-file=${pki.serviceAccountKey}`,
        `--cluster-signing-cert-file=${pki.ca.cert}`,
        `--cluster-signing-key-file=${pki.ca.key}`,
        "--use-service-account-credentials=true",
        "--controllers=*",
      ]),
      start("kube-scheduler", [...componentKubeconfig(schedulerKubeconfig), ...serving(ports.scheduler)]),
      start("kwok", [
        `--kubeconfig=${kwokKubeconfig}`,
        `--config=${path.join(dir, "kwok.yaml")}`,
        ...KWOK_NODE_ARGS,
        `--server-address=127.0.0.1:${ports.kwok}`,
      ]),
    ]);
    const nodeUrl = `${server}/api/v1/nodes`;
    const created = await request(nodeUrl, admin, {
      method: "POST",
      body: fakeNode(options.maxPods ?? 110),
    });
    if (created.status !== 201) throw new Error(`creating the fake Node: ${created.status} ${created.body}`);
    const all = [...started];
    await Promise.all([
      waitFor(
        "kube-controller-manager /healthz",
        () => ok(`https://127.0.0.1:${ports.controllerManager}/healthz`, { ca: pki.ca.cert }),
        [cm],
        timeoutMs,
      ),
      waitFor(
        "kube-scheduler /healthz",
        () => ok(`https://127.0.0.1:${ports.scheduler}/healthz`, { ca: pki.ca.cert }),
        [sched],
        timeoutMs,
      ),
      waitFor("kwok /healthz", () => ok(`http://127.0.0.1:${ports.kwok}/healthz`), [kwokProcess], timeoutMs),
    ]);
    log(`controller-manager, scheduler and kwok healthy (${elapsed()})`);
    await Promise.all([
      waitFor(
        `Node ${FAKE_NODE} Ready`,
        async () => {
          const res = await request(`${nodeUrl}/${FAKE_NODE}`, admin);
          const node = JSON.parse(res.body) as {
            status?: { conditions?: Array<{ type: string; status: string }> };
          };
          return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
        },
        all,
        timeoutMs,
      ),
      // Pods need their namespace's `default` ServiceAccount (ServiceAccount admission).
      waitFor(
        "ServiceAccount default/default",
        async () =>
          (await request(`${server}/api/v1/namespaces/default/serviceaccounts/default`, admin)).status ===
          200,
        all,
        timeoutMs,
      ),
    ]);
    state.readyAt = new Date().toISOString();
    await saveState();
    log(`control plane ready in ${elapsed()}: KUBECONFIG=${state.kubeconfig}`);
    return new LocalCluster(state);
  } catch (error) {
    await stopProcesses(state.processes);
    throw error;
  }
}

/**
 * Stops the cluster recorded in `dir`, by pid (only processes that still run the recorded binary).
 * Resolves true when there was one.
 */
export async function stopCluster(dir: string): Promise<boolean> {
  const state = await readState(dir);
  if (!state) return false;
  await stopProcesses(state.processes);
  await fs.rm(statePath(dir), { force: true });
  return true;
}

/** The cluster in `dir` if every one of its processes runs and its apiserver is ready. */
export async function runningCluster(dir: string): Promise<LocalCluster | undefined> {
  const state = await readState(dir);
  if (!state?.readyAt || state.processes.length !== COMPONENTS.length || !state.processes.every(isRunning)) {
    return undefined;
  }
  try {
    return (await request(`${state.server}/readyz`, adminTls(dir))).status === 200
      ? new LocalCluster(state)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The admin client certificate of the cluster in `dir` (written by createPki). */
function adminTls(dir: string): TlsFiles {
  const pki = path.join(dir, "pki");
  return {
    ca: path.join(pki, "ca.crt"),
    cert: path.join(pki, "admin.crt"),
    key: path.join(pki, "admin.key"),
  };
}

/** Control plane processes started by this harness (see {@link startLocalCluster}). */
export class LocalCluster implements TestCluster {
  readonly kind = "local";
  readonly state: ClusterState;
  readonly kubeconfig: string;
  readonly server: string;
  readonly logFiles: Readonly<Record<string, string>>;
  /** The API server's audit log, when started with `auditPolicy`. */
  readonly auditLog: string | undefined;
  /** The folder belongs to this cluster alone (a test run's), and goes when it stops. */
  ephemeral = false;
  private saCount = 0;

  constructor(state: ClusterState) {
    this.state = state;
    this.kubeconfig = state.kubeconfig;
    this.server = state.server;
    this.logFiles = Object.fromEntries(state.processes.map((p) => [p.component, p.log]));
    this.auditLog = state.auditLog;
  }

  kubectl(args: string[], options?: KubectlOptions): Promise<KubectlResult> {
    return kubectl(this.kubeconfig, args, options);
  }

  serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    this.saCount += 1;
    const file = path.join(this.state.dir, "kubeconfigs", `sa-${namespace}-${name}-${this.saCount}.yaml`);
    return writeServiceAccountKubeconfig(this.kubeconfig, namespace, name, file);
  }

  logTails(lines = 40): string {
    return Object.entries(this.logFiles)
      .map(
        ([component, file]) =>
          `----- ${component} (${file}), last ${lines} lines -----\n${tail(file, lines)}`,
      )
      .join("\n");
  }

  async stop(options: { keepFiles?: boolean } = {}): Promise<void> {
    await stopCluster(this.state.dir);
    if (this.ephemeral && !options.keepFiles) await fs.rm(this.state.dir, { recursive: true, force: true });
  }

  /** etcd's client URL (tests that must change what the API server cannot, e.g. while it is down). */
  get etcdUrl(): string {
    const flag = this.state.apiserverArgs?.find((arg) => arg.startsWith("--etcd-servers="));
    if (!flag) throw new Error(`${this.state.dir}: no apiserver arguments recorded; start the cluster again`);
    return flag.slice("--etcd-servers=".length);
  }

  #apiserverIndex(): number {
    const index = this.state.processes.findIndex((p) => p.component === "kube-apiserver");
    if (index < 0) throw new Error(`${this.state.dir}: no kube-apiserver recorded`);
    return index;
  }

  async stopApiServer(options: { kill?: boolean } = {}): Promise<void> {
    const record = this.state.processes[this.#apiserverIndex()] as ProcessRecord;
    if (options.kill) {
      killProcessesSync([record]);
      const deadline = Date.now() + 10_000;
      while (isRunning(record) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } else {
      // It stops listening at once on SIGTERM, then drains its connections for longer than a test
      // wants to wait (over 15 s): SIGKILL after 5 s.
      await stopProcesses([record], 5_000);
    }
    if (isRunning(record)) throw new Error(`kube-apiserver (pid ${record.pid}) did not stop`);
    // A killed multi-threaded process shows as a zombie once its main thread is gone, while its other
    // threads may still hold the listening socket: the port being free is what a restart needs.
    const port = Number(new URL(this.server).port);
    const deadline = Date.now() + 10_000;
    while (!(await canListen(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  async startApiServer(options: { timeoutMs?: number } = {}): Promise<void> {
    const index = this.#apiserverIndex();
    const record = this.state.processes[index] as ProcessRecord;
    if (isRunning(record)) throw new Error(`kube-apiserver (pid ${record.pid}) is running: stop it first`);
    const args = this.state.apiserverArgs;
    if (!args) throw new Error(`${this.state.dir}: no apiserver arguments recorded; start the cluster again`);
    // Same binary, arguments (ports, certificates, etcd) and log file as startLocalCluster's.
    const started = await startProcess(record.component, record.bin, args, record.log);
    this.state.processes[index] = started.record;
    await writeState(this.state);
    await waitFor(
      "kube-apiserver /readyz after its restart",
      async () => (await request(`${this.server}/readyz`, adminTls(this.state.dir))).status === 200,
      [started],
      options.timeoutMs ?? 60_000,
    );
  }

  async restartApiServer(options: { kill?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.stopApiServer(options.kill ? { kill: true } : {});
    await this.startApiServer(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {});
  }
}

/**
 * A cluster whose API server this harness does not run as a process of its own: the robustness tests
 * that stop and start it skip (they check `kind !== "local"`), and a call says so.
 */
export abstract class WithoutApiServerControl {
  /** Where the cluster comes from, for the message: "an existing cluster". */
  protected abstract readonly description: string;

  stopApiServer(): Promise<void> {
    return this.#unsupported("stopping the API server");
  }

  startApiServer(): Promise<void> {
    return this.#unsupported("starting the API server");
  }

  restartApiServer(): Promise<void> {
    return this.#unsupported("restarting the API server");
  }

  #unsupported(what: string): Promise<void> {
    return Promise.reject(
      new Error(
        `${what} is not supported on ${this.description}: skip such tests when cluster.kind !== "local"`,
      ),
    );
  }
}

/** The cluster that KUBECONFIG names (SFN_TEST_USE_EXISTING_CLUSTER=1): used as is, never stopped. */
export class ExistingCluster extends WithoutApiServerControl implements TestCluster {
  protected readonly description = "an existing cluster";
  readonly kind = "existing";
  readonly kubeconfig: string;
  readonly server: string;
  readonly logFiles: Readonly<Record<string, string>> = {};
  private readonly scratch: string;
  private saCount = 0;

  constructor(kubeconfig: string, server: string, scratch: string) {
    super();
    this.kubeconfig = kubeconfig;
    this.server = server;
    this.scratch = scratch;
  }

  kubectl(args: string[], options?: KubectlOptions): Promise<KubectlResult> {
    return kubectl(this.kubeconfig, args, options);
  }

  serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    this.saCount += 1;
    const file = path.join(this.scratch, `sa-${namespace}-${name}-${this.saCount}.yaml`);
    return writeServiceAccountKubeconfig(this.kubeconfig, namespace, name, file);
  }

  logTails(): string {
    return "(an existing cluster: its component logs are not available to the tests)";
  }

  async stop(): Promise<void> {
    await fs.rm(this.scratch, { recursive: true, force: true });
  }
}

/**
 * {@link chooseBackend} for this machine: the binaries looked for in {@link binDir}, Docker asked only
 * when the decision depends on it.
 */
export async function selectClusterBackend(env: NodeJS.ProcessEnv = process.env): Promise<Choice> {
  const input = {
    env,
    binariesCached: env.SFN_TEST_USE_EXISTING_CLUSTER === "1" ? false : controlPlaneBinariesCached(),
  };
  const dockerReachable = needsDockerProbe("cluster", input) ? await isDockerReachable() : undefined;
  return chooseBackend({ ...input, dockerReachable });
}

/**
 * The cluster for a test run ({@link selectClusterBackend}): KUBECONFIG's when
 * SFN_TEST_USE_EXISTING_CLUSTER=1; else a fresh local control plane, or k3s in Docker, in
 * SFN_TEST_CLUSTER_DIR, or by default in `.cluster/test-run-<pid>/`, removed when it stops unless
 * the run failed.
 */
export async function acquireTestCluster(log?: (message: string) => void): Promise<TestCluster> {
  const choice = await selectClusterBackend();
  log?.(`${choice.backend} cluster: ${choice.reason}`);
  if (choice.backend === "existing") {
    const kubeconfig = process.env.KUBECONFIG;
    if (!kubeconfig || !existsSync(kubeconfig)) {
      throw new Error("SFN_TEST_USE_EXISTING_CLUSTER=1 needs KUBECONFIG naming an existing kubeconfig file");
    }
    const { stdout } = await kubectl(kubeconfig, [
      "config",
      "view",
      "--minify",
      "-o",
      "jsonpath={.clusters[0].cluster.server}",
    ]);
    await kubectl(kubeconfig, ["get", "--raw", "/readyz"]);
    log?.(`using the existing cluster ${stdout} (KUBECONFIG=${kubeconfig})`);
    return new ExistingCluster(kubeconfig, stdout, await fs.mkdtemp(path.join(os.tmpdir(), "sfn-cluster-")));
  }
  const start = async (dir: string): Promise<LocalCluster | K3sCluster> => {
    if (choice.backend === "local") return startLocalCluster(log ? { dir, log } : { dir });
    // Loaded only here: testcontainers stays out of every run that does not use Docker.
    const { startK3sCluster } = await import("./k3s-cluster.ts");
    return startK3sCluster(log ? { dir, log } : { dir });
  };
  if (process.env.SFN_TEST_CLUSTER_DIR) return start(process.env.SFN_TEST_CLUSTER_DIR);
  // One folder per run (engineers share checkouts: two runs must not stop each other's cluster), and
  // the leftovers of runs that were killed outright are stopped and removed here.
  await fs.mkdir(DEV_CLUSTER_DIR, { recursive: true });
  for (const entry of await fs.readdir(DEV_CLUSTER_DIR)) {
    const pid = /^test-run-(\d+)$/.exec(entry)?.[1];
    if (pid && !isAlive(Number(pid))) {
      await stopCluster(path.join(DEV_CLUSTER_DIR, entry));
      await fs.rm(path.join(DEV_CLUSTER_DIR, entry), { recursive: true, force: true });
    }
  }
  const cluster = await start(path.join(DEV_CLUSTER_DIR, `test-run-${process.pid}`));
  cluster.ephemeral = true;
  return cluster;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
