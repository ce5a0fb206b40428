/**
 * The operator at scale, against a real control plane of its own (test/support/cluster.ts: etcd,
 * kube-apiserver, controller-manager, scheduler and kwok, which makes the pods Running and Ready),
 * the operator run as users run it (the CLI, with the token of a ServiceAccount bound to exactly the
 * RBAC it ships, leader election on, every timing at its default), the emulator for AWS and a real
 * Redis (test/support/operator.ts):
 *
 * - burst: N StepFunctionSources created at once; seconds until every Deployment exists and every
 *   status is written (the operator's own work), and until every source is Ready (which also waits
 *   for the controller-manager, the scheduler and kwok to start the pods);
 * - changes: a spec change (requestTimeout) on one source at a time; the latency from sending the
 *   patch until this process's watch sees the Deployment's pod template with the new value;
 * - idle: with the N sources unchanged and everything settled, the requests of a window.
 *
 * API requests are counted in the API server's audit log: its policy logs the requests of
 * ServiceAccounts outside kube-system (the operator's, here), and every request is counted once by
 * its audit ID, at the time the API server received it; a watch counts once, when it opens. The
 * operator's own metric of its writes (sfn_operator_api_writes_total) is read beside it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  Watch,
} from "@kubernetes/client-node";
import {
  SFS_GROUP,
  SFS_PLURAL,
  SFS_VERSION,
  type StepFunctionSource,
} from "../src/api/step-function-source.ts";
import { pollerDeploymentName } from "../src/operator/poller-deployment.ts";
import { OPERATOR_SETTINGS } from "../src/operator/settings.ts";
import { apply } from "../test/cluster-tests/helpers.ts";
import {
  binDir,
  COMPONENTS,
  type LocalCluster,
  pinnedVersions,
  startLocalCluster,
} from "../test/support/cluster.ts";
import { KUBECTL } from "../test/support/cluster-kubectl.ts";
import { killProcessesSync } from "../test/support/cluster-processes.ts";
import {
  OPERATOR_SERVICE_ACCOUNT,
  OperatorFixture,
  type OperatorProcess,
  service,
  source,
} from "../test/support/operator.ts";
import { cpuMs, type ProcessMemory, processMemory, vmBytes } from "./proc.ts";
import { type Percentiles, percentiles } from "./semaphore.ts";

export interface OperatorPlan {
  sources: number;
  /** SFN_WORKERS of the operator, when not its documented default. */
  workers?: number;
  /** Spec changes, one after the other, each on another source (round robin). */
  changes: number;
  /** The idle window. */
  idleMs: number;
  /** Quiet time once everything has settled, before the idle window starts. */
  settleMs: number;
  /**
   * Client rate limit (requests/s; burst twice that) of the controller-manager and the scheduler.
   * Their defaults (20 and 50 requests/s) make them, not the operator, the bottleneck of a burst.
   */
  controllerQps: number;
  /** Creates in flight at once in the burst. */
  createConcurrency: number;
  /** Pause between two changes. */
  changeGapMs: number;
  /** Machinery limits (not speed targets): a phase that takes longer fails the run. */
  burstTimeoutMs: number;
  changeTimeoutMs: number;
  settleTimeoutMs: number;
}

/** Requests of the operator in one phase, from the audit log. */
export interface RequestCounts {
  total: number;
  reads: number;
  writes: number;
  /** Answered with an HTTP error (409 conflicts, 404s...). */
  failed: number;
  /** By `verb resource[/subresource]`, e.g. `patch stepfunctionsources/status`, `watch deployments`. */
  byCall: Record<string, number>;
}

export interface PhaseFigures {
  /** Wall-clock length of the phase. */
  seconds: number;
  requests: RequestCounts;
  /** The operator's sfn_operator_api_writes_total over the phase, by kind. */
  writesMetric: Record<string, number>;
  /** CPU time of the operator process over the phase. */
  cpuMs: number;
}

export interface HeapFigures {
  /** V8 heap committed and in use, and memory held outside it (Buffers), from prom-client's metrics. */
  total: number;
  used: number;
  external: number;
}

export interface OperatorRun {
  versions: Record<string, string>;
  /** How the operator was started: the command and its environment (no secret in it). */
  command: string;
  env: Record<string, string>;
  auditPolicy: object;
  clusterStartS: number;
  /** Operator start until it led and its caches had synced. */
  startup: PhaseFigures;
  burst: PhaseFigures & {
    /** Seconds from the first create until... the last create returned. */
    createdS: number;
    /** ...every Deployment existed (this process's watch saw it). */
    deploymentsS: number;
    /** ...every source had a status (observedGeneration) written. */
    statusesS: number;
    /** ...every Deployment had its replicas ready (the controller-manager, scheduler and kwok's part). */
    deploymentsReadyS: number;
    /** ...every source was Ready. */
    readyS: number;
    /** VmHWM of the operator at the end of the burst. */
    peakRssBytes: number;
    /** CPU time over the burst of every process on the machine's CPUs: the control plane's, the benchmark's. */
    cpuMsByProcess: Record<string, number>;
  };
  changes: PhaseFigures & {
    field: string;
    latencyMs: Percentiles;
    latenciesMs: number[];
    /** How long the patch request itself took (sent until answered). */
    patchMs: Percentiles;
  };
  /** From the last change until everything was Ready and rolled out again, plus the quiet time. */
  settle: PhaseFigures;
  /** Memory at the end of the idle window: /proc (RSS, anonymous, file-backed) and V8's heap (its metrics). */
  idle: PhaseFigures & { memory: ProcessMemory | undefined; heap: HeapFigures };
  /** VmHWM of the operator at the end of the run (before SIGTERM). */
  peakRssBytes: number;
  operatorExit: { code: number | null; signal: string | null };
  problems: string[];
}

const READ_VERBS = new Set(["get", "list", "watch"]);

/** Audit policy: every request of a ServiceAccount outside kube-system (the controllers' own), metadata only. */
export const AUDIT_POLICY = {
  apiVersion: "audit.k8s.io/v1",
  kind: "Policy",
  omitStages: ["RequestReceived"],
  rules: [
    { level: "None", userGroups: ["system:serviceaccounts:kube-system"] },
    { level: "Metadata", userGroups: ["system:serviceaccounts"] },
    { level: "None" },
  ],
};

/** Settings the operator runs with at their documented defaults (the fixture's are short, for tests). */
const DEFAULTED = [
  "SFN_STATUS_INTERVAL",
  "SFN_API_TIMEOUT",
  "SFN_LEASE_DURATION",
  "SFN_RENEW_DEADLINE",
  "SFN_RETRY_PERIOD",
  "SFN_RESYNC_PERIOD",
  "SFN_WORKERS",
];

/** Why the benchmark cannot run here, or undefined. */
export function operatorBenchUnavailable(): string | undefined {
  let bins: string;
  try {
    bins = binDir();
  } catch (error) {
    return `cannot locate the control plane binaries (test/cluster/build.sh --print-bin-dir failed: ${error instanceof Error ? error.message : String(error)})`;
  }
  const missing = COMPONENTS.filter((component) => !existsSync(path.join(bins, component)));
  if (missing.length > 0) {
    return `the control plane binaries are missing (${missing.join(", ")} in ${bins}): run \`npm run cluster:build\` first`;
  }
  try {
    execFileSync(KUBECTL, ["version", "--client"], { stdio: "ignore" });
  } catch {
    return `${KUBECTL} is not on the PATH`;
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  detail: () => string | Promise<string> = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      const more = await detail();
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${more ? `: ${more}` : ""}`);
    }
    await sleep(50);
  }
}

interface DeploymentState {
  firstSeenMs: number;
  /** First time every replica was ready (the controllers, the scheduler and kwok had done their part). */
  firstReadyMs?: number;
  requestTimeout: string | undefined;
  /** Rolled out: every replica updated and ready, the controller has seen the latest spec. */
  rolledOut: boolean;
}

interface SourceState {
  generation: number;
  /** First time a status with observedGeneration was seen. */
  statusAtMs?: number;
  /** First time Ready=True was seen. */
  readyAtMs?: number;
  /** Ready=True for the current generation, now. */
  readyNow: boolean;
}

/**
 * What this process sees of the sources and their Deployments, through watches (admin credentials,
 * so not counted): the time each thing was first seen, and waiters for a Deployment's template.
 */
class Tracker {
  readonly deployments = new Map<string, DeploymentState>();
  readonly sources = new Map<string, SourceState>();
  readonly #kubeConfig: KubeConfig;
  readonly #namespace: string;
  readonly #templateWaiters = new Map<string, { value: string; resolve: (atMs: number) => void }>();
  readonly #aborts = new Set<AbortController>();
  #stopped = false;

  constructor(kubeConfig: KubeConfig, namespace: string) {
    this.#kubeConfig = kubeConfig;
    this.#namespace = namespace;
  }

  async start(): Promise<void> {
    await Promise.all([
      this.#watch(`/apis/apps/v1/namespaces/${this.#namespace}/deployments`, (type, object) =>
        this.#onDeployment(type, object as V1Deployment),
      ),
      this.#watch(
        `/apis/${SFS_GROUP}/${SFS_VERSION}/namespaces/${this.#namespace}/${SFS_PLURAL}`,
        (type, object) => this.#onSource(type, object as StepFunctionSource),
      ),
    ]);
  }

  stop(): void {
    this.#stopped = true;
    for (const abort of this.#aborts) abort.abort();
  }

  /** Resolves with the time the Deployment's container first has SFN_REQUEST_TIMEOUT = value. */
  waitForRequestTimeout(deployment: string, value: string): Promise<number> {
    return new Promise((resolve) => {
      this.#templateWaiters.set(deployment, { value, resolve });
    });
  }

  /**
   * One watch, started again from the last resourceVersion whenever it ends (client-node's 30 s
   * inactivity timeout, a server-side close), or from now (a fresh list of ADDED events) after 410.
   */
  async #watch(watchPath: string, onEvent: (type: string, object: unknown) => void): Promise<void> {
    let resourceVersion: string | undefined;
    let started!: () => void;
    const first = new Promise<void>((resolve) => {
      started = resolve;
    });
    const run = async (): Promise<void> => {
      if (this.#stopped) return;
      // `done` may come before watch() resolves (a request that fails at once).
      let abort: AbortController | undefined;
      let ended = false;
      abort = await new Watch(this.#kubeConfig).watch(
        watchPath,
        { allowWatchBookmarks: true, ...(resourceVersion !== undefined && { resourceVersion }) },
        (type, object: { metadata?: { resourceVersion?: string }; code?: number }) => {
          if (type === "ERROR") {
            if (object.code === 410) resourceVersion = undefined;
            return;
          }
          resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
          if (type !== "BOOKMARK") onEvent(type, object);
        },
        () => {
          ended = true;
          if (abort) this.#aborts.delete(abort);
          if (!this.#stopped) setTimeout(() => void run(), 100);
        },
      );
      if (!ended) this.#aborts.add(abort);
      started();
    };
    await run();
    await first;
  }

  #onDeployment(type: string, deployment: V1Deployment): void {
    const now = performance.now();
    const name = deployment.metadata?.name ?? "";
    if (type === "DELETED") {
      this.deployments.delete(name);
      return;
    }
    const env = deployment.spec?.template.spec?.containers[0]?.env ?? [];
    const requestTimeout = env.find((variable) => variable.name === "SFN_REQUEST_TIMEOUT")?.value;
    const replicas = deployment.spec?.replicas ?? 1;
    const status = deployment.status;
    const rolledOut =
      (status?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 1) &&
      (status?.replicas ?? 0) === replicas &&
      (status?.updatedReplicas ?? 0) === replicas &&
      (status?.readyReplicas ?? 0) === replicas;
    const known = this.deployments.get(name);
    const firstReadyMs = known?.firstReadyMs ?? ((status?.readyReplicas ?? 0) >= replicas ? now : undefined);
    this.deployments.set(name, {
      firstSeenMs: known?.firstSeenMs ?? now,
      ...(firstReadyMs !== undefined && { firstReadyMs }),
      requestTimeout,
      rolledOut,
    });
    const waiter = this.#templateWaiters.get(name);
    if (waiter !== undefined && waiter.value === requestTimeout) {
      this.#templateWaiters.delete(name);
      waiter.resolve(now);
    }
  }

  #onSource(type: string, object: StepFunctionSource): void {
    const now = performance.now();
    const name = object.metadata?.name ?? "";
    if (type === "DELETED") {
      this.sources.delete(name);
      return;
    }
    const generation = object.metadata?.generation ?? 0;
    const ready = object.status?.conditions?.find((condition) => condition.type === "Ready");
    const readyTrue = ready?.status === "True";
    const known = this.sources.get(name);
    const state: SourceState = {
      generation,
      readyNow: readyTrue && ready?.observedGeneration === generation,
    };
    const statusAtMs =
      known?.statusAtMs ?? (object.status?.observedGeneration !== undefined ? now : undefined);
    const readyAtMs = known?.readyAtMs ?? (readyTrue ? now : undefined);
    if (statusAtMs !== undefined) state.statusAtMs = statusAtMs;
    if (readyAtMs !== undefined) state.readyAtMs = readyAtMs;
    this.sources.set(name, state);
  }
}

interface AuditRequest {
  atMs: number;
  verb: string;
  call: string;
  failed: boolean;
}

/** The requests of `username` in the audit log, each once (by audit ID), at the time received. */
function auditRequests(file: string, username: string): AuditRequest[] {
  const seen = new Set<string>();
  const requests: AuditRequest[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.includes(username)) continue;
    const event = JSON.parse(line) as {
      auditID: string;
      verb: string;
      user?: { username?: string };
      objectRef?: { resource?: string; subresource?: string };
      requestURI: string;
      requestReceivedTimestamp: string;
      responseStatus?: { code?: number };
    };
    if (event.user?.username !== username || seen.has(event.auditID)) continue;
    // A watch logs ResponseStarted when it opens and ResponseComplete when it ends: the first counts.
    seen.add(event.auditID);
    const resource = event.objectRef?.resource
      ? `${event.objectRef.resource}${event.objectRef.subresource ? `/${event.objectRef.subresource}` : ""}`
      : event.requestURI.split("?")[0];
    requests.push({
      atMs: Date.parse(event.requestReceivedTimestamp),
      verb: event.verb,
      call: `${event.verb} ${resource}`,
      failed: (event.responseStatus?.code ?? 200) >= 400,
    });
  }
  return requests;
}

function countRequests(requests: AuditRequest[], fromMs: number, toMs: number): RequestCounts {
  const counts: RequestCounts = { total: 0, reads: 0, writes: 0, failed: 0, byCall: {} };
  for (const request of requests) {
    if (request.atMs < fromMs || request.atMs >= toMs) continue;
    counts.total += 1;
    if (READ_VERBS.has(request.verb)) counts.reads += 1;
    else counts.writes += 1;
    if (request.failed) counts.failed += 1;
    counts.byCall[request.call] = (counts.byCall[request.call] ?? 0) + 1;
  }
  return counts;
}

/** Requests to Leases (leader election: a get and an update every retry period) in `counts`. */
export function leaseRequests(counts: RequestCounts): { reads: number; writes: number } {
  let reads = 0;
  let writes = 0;
  for (const [call, count] of Object.entries(counts.byCall)) {
    const [verb, resource] = call.split(" ");
    if (resource !== "leases") continue;
    if (READ_VERBS.has(verb ?? "")) reads += count;
    else writes += count;
  }
  return { reads, writes };
}

/** Phase boundaries: wall clock (for the audit log), process CPU and write counters at each. */
interface Mark {
  wallMs: number;
  cpuMs: number;
  writes: Record<string, number>;
}

async function mark(operator: OperatorProcess): Promise<Mark> {
  return {
    wallMs: Date.now(),
    cpuMs: cpuMs(operator.cli.child.pid) ?? Number.NaN,
    writes: await operator.writes(),
  };
}

function phase(requests: AuditRequest[], from: Mark, to: Mark): PhaseFigures {
  const writesMetric: Record<string, number> = {};
  for (const [kind, value] of Object.entries(to.writes))
    writesMetric[kind] = value - (from.writes[kind] ?? 0);
  return {
    seconds: (to.wallMs - from.wallMs) / 1000,
    requests: countRequests(requests, from.wallMs, to.wallMs),
    writesMetric,
    cpuMs: to.cpuMs - from.cpuMs,
  };
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool(count: number, limit: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

export async function runOperatorBench(
  plan: OperatorPlan,
  say: (line: string) => void,
): Promise<OperatorRun | { skipped: string }> {
  const unavailable = operatorBenchUnavailable();
  if (unavailable !== undefined) return { skipped: unavailable };

  const problems: string[] = [];
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-bench-cluster-"));
  let cluster: LocalCluster | undefined;
  let fixture: OperatorFixture | undefined;
  let tracker: Tracker | undefined;
  let operator: OperatorProcess | undefined;
  // Ctrl-C or a crash of the benchmark must not leave a control plane behind.
  const killOnExit = (): void => {
    if (cluster) killProcessesSync(cluster.state.processes);
    operator?.cli.child.kill("SIGKILL");
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    killOnExit();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("exit", killOnExit);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let failed = false;
  try {
    const clusterStarted = performance.now();
    cluster = await startLocalCluster({
      dir,
      auditPolicy: AUDIT_POLICY,
      // One replica per source; no surge in a rollout.
      maxPods: Math.max(110, plan.sources + 50),
      controllerQps: plan.controllerQps,
    });
    const clusterStartS = (performance.now() - clusterStarted) / 1000;
    say(`  control plane ready in ${clusterStartS.toFixed(1)} s (${dir})`);
    const auditLog = cluster.auditLog as string;

    fixture = await OperatorFixture.start(cluster);
    const namespace = await fixture.sourceNamespace("bench");
    await apply(cluster, [service(namespace, "target")]);
    const username = `system:serviceaccount:${fixture.namespace}:${OPERATOR_SERVICE_ACCOUNT}`;

    const admin = new KubeConfig();
    admin.loadFromFile(cluster.kubeconfig);
    const custom = admin.makeApiClient(CustomObjectsApi);
    tracker = new Tracker(admin, namespace);
    await tracker.start();

    const defaults = Object.fromEntries(
      DEFAULTED.map((env) => [env, OPERATOR_SETTINGS.find((setting) => setting.env === env)?.default ?? ""]),
    );
    const env = {
      ...fixture.env(defaults),
      SFN_LOG_LEVEL: "info",
      ...(plan.workers !== undefined && { SFN_WORKERS: String(plan.workers) }),
    };
    // The process's CPU and writes count from zero.
    const started: Mark = { wallMs: Date.now(), cpuMs: 0, writes: {} };
    operator = await fixture.startOperator({ env });
    const op = operator;
    await waitUntil(
      "the operator to lead with its caches synced",
      async () => {
        if (op.cli.child.exitCode !== null) throw new Error(`the operator exited:\n${op.cli.tail()}`);
        const informers = ["stepfunctionsources", "deployments", "services"];
        const synced = await Promise.all(
          informers.map((name) => op.metric(`sfn_operator_informer_synced{informer="${name}"}`)),
        );
        return synced.every((value) => value === 1);
      },
      60_000,
    );
    const afterStartup = await mark(operator);
    say(
      `  operator leading and synced after ${((afterStartup.wallMs - started.wallMs) / 1000).toFixed(1)} s`,
    );

    // Burst: every source at once.
    const names = Array.from({ length: plan.sources }, (_, i) => `bench-${String(i).padStart(4, "0")}`);
    const componentsCpu = (): Record<string, number> => ({
      ...Object.fromEntries(
        (cluster as LocalCluster).state.processes.map((p) => [p.component, cpuMs(p.pid) ?? Number.NaN]),
      ),
      "benchmark (watches, creates, emulator)": (({ user, system }) => (user + system) / 1000)(
        process.cpuUsage(),
      ),
    });
    const cpuAtBurstStart = componentsCpu();
    const burstStart = await mark(operator);
    const t0 = performance.now();
    await pool(names.length, plan.createConcurrency, async (i) => {
      const name = names[i] as string;
      await custom.createNamespacedCustomObject({
        group: SFS_GROUP,
        version: SFS_VERSION,
        namespace,
        plural: SFS_PLURAL,
        body: source(namespace, name, { activityName: name, target: { service: "target", path: "/task" } }),
      });
    });
    const createdS = (performance.now() - t0) / 1000;
    say(`  ${names.length} sources created in ${createdS.toFixed(1)} s`);
    const t = tracker;
    const allOf = (pick: (name: string) => number | undefined): number | undefined => {
      let last = 0;
      for (const name of names) {
        const at = pick(name);
        if (at === undefined) return undefined;
        last = Math.max(last, at);
      }
      return (last - t0) / 1000;
    };
    const deploymentsS = (): number | undefined =>
      allOf((name) => t.deployments.get(pollerDeploymentName(name))?.firstSeenMs);
    const statusesS = (): number | undefined => allOf((name) => t.sources.get(name)?.statusAtMs);
    const readyS = (): number | undefined => allOf((name) => t.sources.get(name)?.readyAtMs);
    const deploymentsReadyS = (): number | undefined =>
      allOf((name) => t.deployments.get(pollerDeploymentName(name))?.firstReadyMs);
    await waitUntil(
      `every Deployment and status of ${names.length} sources`,
      () => deploymentsS() !== undefined && statusesS() !== undefined,
      plan.burstTimeoutMs,
    );
    say(
      `  every Deployment after ${deploymentsS()?.toFixed(1)} s, every status after ${statusesS()?.toFixed(1)} s`,
    );
    await waitUntil(`every source Ready`, () => readyS() !== undefined, plan.burstTimeoutMs);
    say(
      `  every Deployment's pods ready after ${deploymentsReadyS()?.toFixed(1)} s, every source Ready after ${readyS()?.toFixed(1)} s`,
    );
    // The events and status writes that follow the last Ready belong to the burst.
    await sleep(2_000);
    const burstEnd = await mark(operator);
    const cpuAtBurstEnd = componentsCpu();
    const burstPeak = vmBytes(operator.cli.child.pid, "VmHWM") ?? Number.NaN;

    // Changes: one source at a time.
    const latencies: number[] = [];
    const patchTimes: number[] = [];
    for (let k = 0; k < plan.changes; k++) {
      const name = names[k % names.length] as string;
      const value = `${301 + k}s`;
      const seen = tracker.waitForRequestTimeout(pollerDeploymentName(name), value);
      const sent = performance.now();
      await custom.patchNamespacedCustomObject(
        {
          group: SFS_GROUP,
          version: SFS_VERSION,
          namespace,
          plural: SFS_PLURAL,
          name,
          body: { spec: { requestTimeout: value } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      patchTimes.push(performance.now() - sent);
      const at = await Promise.race([seen, sleep(plan.changeTimeoutMs).then(() => undefined)]);
      if (at === undefined) {
        throw new Error(
          `change ${k + 1}: Deployment of ${name} not updated within ${plan.changeTimeoutMs / 1000} s`,
        );
      }
      latencies.push(at - sent);
      await sleep(plan.changeGapMs);
    }
    const changesEnd = await mark(operator);
    const latency = percentiles(latencies);
    say(
      `  ${plan.changes} spec changes: p50 ${latency.p50.toFixed(0)} ms, p99 ${latency.p99.toFixed(0)} ms, max ${latency.max.toFixed(0)} ms`,
    );

    // Settle: every source Ready at its generation, every Deployment rolled out; then quiet time.
    const unsettled = (): string[] =>
      names.filter(
        (name) =>
          !(t.sources.get(name)?.readyNow && t.deployments.get(pollerDeploymentName(name))?.rolledOut),
      );
    await waitUntil(
      "every source Ready and every Deployment rolled out after the changes",
      () => unsettled().length === 0,
      plan.settleTimeoutMs,
      async () => {
        const names = unsettled();
        const first = names[0] as string;
        const { stdout } = await (cluster as LocalCluster).kubectl(
          ["get", "deployment,replicaset,pod", "-n", namespace, "-o", "wide"],
          { allowFailure: true },
        );
        const related = stdout
          .split("\n")
          .filter((line, i) => i === 0 || line.includes(first))
          .join("\n");
        return `${names.length} not settled, such as ${first} (seen: ${JSON.stringify(t.sources.get(first))} ${JSON.stringify(t.deployments.get(pollerDeploymentName(first)))}):\n${related}`;
      },
    );
    await sleep(plan.settleMs);
    const idleStart = await mark(operator);
    say(`  idle for ${plan.idleMs / 1000} s...`);
    await sleep(plan.idleMs);
    const idleEnd = await mark(operator);
    const idleMemory = processMemory(operator.cli.child.pid);
    const heapMetric = async (name: string): Promise<number> =>
      (await operator?.metric(`sfn_operator_nodejs_${name}`)) ?? Number.NaN;
    const heap: HeapFigures = {
      total: await heapMetric("heap_size_total_bytes"),
      used: await heapMetric("heap_size_used_bytes"),
      external: await heapMetric("external_memory_bytes"),
    };
    const peakRssBytes = vmBytes(operator.cli.child.pid, "VmHWM") ?? Number.NaN;
    const exit = await operator.cli.stop();
    if (exit.code !== 0) problems.push(`the operator exited ${exit.code ?? exit.signal} on SIGTERM`);

    // The audit log is written before each request completes: all of the window is in it.
    const requests = auditRequests(auditLog, username);
    if (requests.length === 0) problems.push(`no request of ${username} in the audit log ${auditLog}`);
    const run: OperatorRun = {
      versions: pinnedVersions(),
      command: "node bin/sfn-operator.js operator",
      env: Object.fromEntries(
        Object.entries({
          ...env,
          POD_NAME: operator.identity,
          SFN_METRICS_PORT: String(operator.metricsPort),
        })
          .filter(
            ([key, value]) =>
              (key.startsWith("SFN_") || key.startsWith("AWS_ENDPOINT") || key === "POD_NAME") &&
              value !== "",
          )
          .map(([key, value]) => [key, String(value)]),
      ),
      auditPolicy: AUDIT_POLICY,
      clusterStartS,
      startup: phase(requests, started, afterStartup),
      burst: {
        ...phase(requests, burstStart, burstEnd),
        createdS,
        deploymentsS: deploymentsS() ?? Number.NaN,
        statusesS: statusesS() ?? Number.NaN,
        deploymentsReadyS: deploymentsReadyS() ?? Number.NaN,
        readyS: readyS() ?? Number.NaN,
        peakRssBytes: burstPeak,
        cpuMsByProcess: Object.fromEntries(
          Object.entries(cpuAtBurstEnd).map(([name, value]) => [name, value - (cpuAtBurstStart[name] ?? 0)]),
        ),
      },
      changes: {
        ...phase(requests, burstEnd, changesEnd),
        field: "spec.requestTimeout",
        latencyMs: latency,
        latenciesMs: latencies,
        patchMs: percentiles(patchTimes),
      },
      settle: phase(requests, changesEnd, idleStart),
      idle: { ...phase(requests, idleStart, idleEnd), memory: idleMemory, heap },
      peakRssBytes,
      operatorExit: { code: exit.code, signal: exit.signal },
      problems,
    };
    return run;
  } catch (error) {
    failed = true;
    if (operator) say(`  operator output (last lines):\n${operator.cli.tail(40)}`);
    if (cluster) say(`  control plane kept in ${dir}`);
    throw error;
  } finally {
    tracker?.stop();
    // Not fixture.close(): it deletes every source and waits for their finalizers, which the
    // stopped operator no longer removes; the whole control plane goes instead.
    await fixture?.stopOperators().catch(() => {});
    await fixture?.emulator.close().catch(() => {});
    await fixture?.redis.stop().catch(() => {});
    await cluster?.stop().catch(() => {});
    if (!failed) await fs.rm(dir, { recursive: true, force: true });
    process.removeListener("exit", killOnExit);
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
}
