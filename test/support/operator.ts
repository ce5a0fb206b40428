/**
 * What the operator's cluster tests share: the CRD installed, a Redis and an emulator, the operator's
 * RBAC (src/operator/rbac.ts, exactly what the chart will grant) bound to a ServiceAccount whose
 * token the operator process runs with, and operator processes (the real CLI, `dist/` built) with
 * short timings. A missing permission therefore fails these tests, as it would in a user's cluster.
 */
import path from "node:path";
import { SFS_CRD_NAME } from "../../src/api/step-function-source.ts";
import { rbacObjects } from "../../src/operator/rbac.ts";
import { apply, createNamespace, eventually, getJson } from "../cluster-tests/helpers.ts";
import { awsEnvFor, CliProcess, REPO_ROOT } from "./cli.ts";
import type { TestCluster } from "./cluster.ts";
import { startTestEmulator, type TestEmulator } from "./emulator.ts";
import { freePort, RedisServer } from "./redis.ts";

export const CRD_FILE = path.join(REPO_ROOT, "crds/stepfunctionsources.sfn-operator.dev.yaml");
export const POLLER_IMAGE = "registry.example/sfn-operator:test";
export const OPERATOR_SERVICE_ACCOUNT = "sfn-operator";

/** Installs the CRD (idempotent) and waits until the API serves it. */
export async function installCrd(cluster: TestCluster): Promise<void> {
  await cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", CRD_FILE]);
  await cluster.kubectl(["wait", "--for=condition=Established", `crd/${SFS_CRD_NAME}`, "--timeout=60s"]);
}

/** An operator environment: its namespace and ServiceAccount kubeconfig, Redis, the emulator. */
export class OperatorFixture {
  readonly cluster: TestCluster;
  readonly namespace: string;
  readonly kubeconfig: string;
  readonly redis: RedisServer;
  readonly emulator: TestEmulator;
  /** The namespaces the operator serves (SFN_WATCH_NAMESPACES); empty: all. */
  readonly watchNamespaces: readonly string[];
  readonly #processes: OperatorProcess[] = [];

  private constructor(
    cluster: TestCluster,
    namespace: string,
    kubeconfig: string,
    redis: RedisServer,
    emulator: TestEmulator,
    watchNamespaces: readonly string[],
  ) {
    this.watchNamespaces = watchNamespaces;
    this.cluster = cluster;
    this.namespace = namespace;
    this.kubeconfig = kubeconfig;
    this.redis = redis;
    this.emulator = emulator;
  }

  /**
   * The CRD, a namespace for the operator with its ServiceAccount bound to OPERATOR_RULES (all
   * namespaces), a Redis and an emulator (long polls of `longPollSeconds`).
   */
  static async start(
    cluster: TestCluster,
    options: { longPollSeconds?: number; watchNamespaces?: readonly string[] } = {},
  ): Promise<OperatorFixture> {
    const watchNamespaces = options.watchNamespaces ?? [];
    await installCrd(cluster);
    const namespace = await createNamespace(cluster, "sfn-operator");
    const name = `sfn-operator-${namespace}`;
    await apply(cluster, [
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: OPERATOR_SERVICE_ACCOUNT, namespace } },
      // With the opt-in rule: these tests cover spec.redis.passwordSecretRef too.
      ...rbacObjects({
        name,
        namespace,
        serviceAccount: OPERATOR_SERVICE_ACCOUNT,
        watchNamespaces,
        optIn: ["sourceRedisSecrets"],
      }),
    ]);
    const kubeconfig = await cluster.serviceAccountKubeconfig(namespace, OPERATOR_SERVICE_ACCOUNT);
    const redis = await RedisServer.start();
    const emulator = await startTestEmulator({ longPollSeconds: options.longPollSeconds ?? 2 });
    const fixture = new OperatorFixture(cluster, namespace, kubeconfig, redis, emulator, watchNamespaces);
    // Sources other test files left (the CRD tests' objects) would otherwise be served by this one's
    // operator, and could hold the activity names its tests use (ActivityInUse).
    await fixture.deleteAllSources();
    return fixture;
  }

  /** The environment an operator process runs with (overridable per variable). */
  env(overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...awsEnvFor(this.emulator.emulator.url),
      KUBECONFIG: this.kubeconfig,
      SFN_NAMESPACE: this.namespace,
      SFN_POLLER_IMAGE: POLLER_IMAGE,
      SFN_REDIS_URL: this.redis.url,
      SFN_POLLER_AWS_ENDPOINT_URL: this.emulator.emulator.url,
      SFN_STATUS_INTERVAL: "1s",
      SFN_API_TIMEOUT: "10s",
      SFN_LEASE_DURATION: "4s",
      SFN_RENEW_DEADLINE: "3s",
      SFN_RETRY_PERIOD: "500ms",
      SFN_WATCH_NAMESPACES: this.watchNamespaces.join(","),
      ...overrides,
    };
  }

  /** Starts an operator process; stopped by `close()` if the test does not. */
  async startOperator(
    options: { identity?: string; env?: NodeJS.ProcessEnv } = {},
  ): Promise<OperatorProcess> {
    const metricsPort = await freePort();
    const identity = options.identity ?? `operator-${this.#processes.length}`;
    const process_ = new OperatorProcess(
      identity,
      metricsPort,
      new CliProcess(["operator"], {
        ...this.env({ POD_NAME: identity, SFN_METRICS_PORT: String(metricsPort), ...options.env }),
      }),
    );
    this.#processes.push(process_);
    return process_;
  }

  /** A namespace for a test's sources. */
  sourceNamespace(prefix = "sources"): Promise<string> {
    return createNamespace(this.cluster, prefix);
  }

  /** Output of every operator process, for a failing test. */
  outputs(lines = 60): string {
    return this.#processes.map((p) => `--- ${p.identity}\n${p.cli.tail(lines)}`).join("\n");
  }

  async stopOperators(): Promise<void> {
    await Promise.all(this.#processes.map((p) => p.cli.stop()));
    this.#processes.length = 0;
  }

  /**
   * Deletes every StepFunctionSource in the cluster, so that the next file's operator (which may serve
   * every namespace, with the same activity names) starts from a clean slate. The running operator
   * removes its finalizers; any left after a grace period (no operator served them) are removed here.
   */
  async deleteAllSources(): Promise<void> {
    await this.cluster.kubectl([
      "delete",
      "stepfunctionsources",
      "--all",
      "--all-namespaces",
      "--wait=false",
    ]);
    const graceUntil = Date.now() + 15_000;
    await eventually(
      "every StepFunctionSource deleted",
      async () => {
        const list = await getJson<{ items: Array<{ metadata: { namespace: string; name: string } }> }>(
          this.cluster,
          ["stepfunctionsources", "--all-namespaces"],
        );
        const left = list?.items ?? [];
        if (left.length === 0) return true;
        if (Date.now() > graceUntil) {
          for (const { metadata } of left) {
            await this.cluster.kubectl(
              [
                "patch",
                "sfs",
                "-n",
                metadata.namespace,
                metadata.name,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
              ],
              { allowFailure: true },
            );
          }
        }
        return false;
      },
      60_000,
    );
  }

  async close(): Promise<void> {
    await this.deleteAllSources().catch((error: unknown) => {
      console.error(`could not delete the test's sources: ${String(error)}`);
    });
    await this.stopOperators();
    await this.emulator.close();
    await this.redis.stop();
  }
}

export class OperatorProcess {
  readonly identity: string;
  readonly metricsPort: number;
  readonly cli: CliProcess;

  constructor(identity: string, metricsPort: number, cli: CliProcess) {
    this.identity = identity;
    this.metricsPort = metricsPort;
    this.cli = cli;
  }

  /** The process's /metrics text. */
  async metrics(): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    return response.text();
  }

  /** The value of one series (`name{labels}` as printed), or undefined. */
  async metric(series: string): Promise<number | undefined> {
    const text = await this.metrics();
    for (const line of text.split("\n")) {
      if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
    }
    return undefined;
  }

  /** Writes to the API so far, by kind. */
  async writes(): Promise<{ finalizers: number; deployments: number; status: number }> {
    const read = async (kind: string) =>
      (await this.metric(`sfn_operator_api_writes_total{kind="${kind}"}`)) ?? 0;
    return {
      finalizers: await read("finalizers"),
      deployments: await read("deployments"),
      status: await read("status"),
    };
  }

  async isLeader(): Promise<boolean> {
    return (await this.metric(`sfn_operator_leader{identity="${this.identity}"}`)) === 1;
  }
}

/** A StepFunctionSource object. */
export function source(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Record<string, unknown> {
  return {
    apiVersion: "sfn-operator.dev/v1alpha1",
    kind: "StepFunctionSource",
    metadata: { name, namespace },
    spec,
  };
}

/** A Service with the given ports. */
export function service(
  namespace: string,
  name: string,
  ports: Array<{ name?: string; port: number }> = [{ name: "http", port: 8080 }],
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace },
    spec: { selector: { app: name }, ports: ports.map((port) => ({ ...port, protocol: "TCP" })) },
  };
}

/** The source as the API has it now. */
export function getSource(cluster: TestCluster, namespace: string, name: string) {
  return getJson<{
    metadata: { generation: number; finalizers?: string[]; uid: string };
    spec: Record<string, unknown>;
    status?: {
      observedGeneration?: number;
      activityArn?: string;
      desiredPollers?: number;
      readyPollers?: number;
      pollers?: string;
      tasksInFlight?: number;
      tasksSucceeded?: number;
      tasksFailed?: number;
      lastTaskTime?: string;
      conditions?: Array<{
        type: string;
        status: string;
        reason: string;
        message: string;
        observedGeneration?: number;
      }>;
    };
  }>(cluster, ["stepfunctionsource", "-n", namespace, name]);
}

/** Waits until the source's condition `type` has `status` (and `reason`, when given); returns it. */
export async function waitForCondition(
  cluster: TestCluster,
  namespace: string,
  name: string,
  type: string,
  status: string,
  reason?: string,
  timeoutMs = 60_000,
) {
  return eventually(
    `${namespace}/${name} condition ${type}=${status}${reason ? ` (${reason})` : ""}`,
    async () => {
      const object = await getSource(cluster, namespace, name);
      const condition = object?.status?.conditions?.find((c) => c.type === type);
      if (condition?.status === status && (reason === undefined || condition.reason === reason))
        return condition;
      return undefined;
    },
    timeoutMs,
  );
}

/** An Event of a source, as `kubectl get events` gives it. */
export interface SourceEvent {
  type: string;
  reason: string;
  message: string;
  /** How many times it happened (a repeat within the recorder's window bumps it). */
  count?: number;
}

/** The source's events, oldest first. */
export async function sourceEvents(
  cluster: TestCluster,
  namespace: string,
  name: string,
): Promise<SourceEvent[]> {
  const list = await getJson<{ items: SourceEvent[] }>(cluster, [
    "events",
    "-n",
    namespace,
    "--field-selector",
    `involvedObject.name=${name},involvedObject.kind=StepFunctionSource`,
  ]);
  return list?.items ?? [];
}

/** Changes fields of a source's spec (a merge patch, as `kubectl patch --type=merge`). */
export async function patchSpec(
  cluster: TestCluster,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await cluster.kubectl([
    "patch",
    "sfs",
    "-n",
    namespace,
    name,
    "--type=merge",
    "-p",
    JSON.stringify({ spec }),
  ]);
}
