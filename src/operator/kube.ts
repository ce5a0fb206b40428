/**
 * The operator's thin layer over the Kubernetes API (client-node 2.x): per-call options (a timeout of
 * our own on every call, since client-node sets none; the patch content types), and the writes
 * reconcile makes. Decisions live in reconcile.ts; this file only talks to the API.
 */
import {
  ApiException,
  type AppsV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from "@kubernetes/client-node";
import {
  SFS_GROUP,
  SFS_PLURAL,
  SFS_VERSION,
  type StepFunctionSource,
  type StepFunctionSourceStatus,
} from "../api/step-function-source.ts";
import { withTimeout } from "./kube-call.ts";

/** The field manager of everything the operator applies: `kubectl get -o yaml --show-managed-fields`. */
export const FIELD_MANAGER = "sfn-operator";

/** What the operator writes to the API, for the writes counter. */
export type WriteKind = "finalizers" | "deployments" | "status";

/** The writes reconcile makes (ReconcileDeps["kube"]). */
export class KubeWriter {
  readonly #custom: CustomObjectsApi;
  readonly #apps: AppsV1Api;
  readonly #timeoutMs: number;
  /** Writes made, by kind: the idle benchmark and the restart test count them. */
  readonly writes = { finalizers: 0, deployments: 0, status: 0 };
  #fenced = false;

  /**
   * Refuses every write from now on: a leader that lost its Lease must not write while it winds down
   * (another process may lead already). Writes already sent cannot be recalled.
   */
  fence(): void {
    this.#fenced = true;
  }

  #check(what: string, kind: WriteKind): void {
    if (this.#fenced) throw new Error(`${what}: refused, this process no longer leads`);
    this.writes[kind] += 1;
    this.#onWrite(kind);
  }

  readonly #onWrite: (kind: WriteKind) => void;

  constructor(
    custom: CustomObjectsApi,
    apps: AppsV1Api,
    timeoutMs: number,
    onWrite: (kind: WriteKind) => void = () => {},
  ) {
    this.#custom = custom;
    this.#apps = apps;
    this.#timeoutMs = timeoutMs;
    this.#onWrite = onWrite;
  }

  async setFinalizers(source: StepFunctionSource, finalizers: string[]): Promise<void> {
    this.#check("set finalizers", "finalizers");
    // The resourceVersion makes it conditional: a source changed since it was read gets 409, and the
    // work queue runs reconcile again on the newer object.
    await withTimeout(`set the finalizers of ${sourceKey(source)}`, this.#timeoutMs, (options) =>
      this.#custom.patchNamespacedCustomObject(
        {
          group: SFS_GROUP,
          version: SFS_VERSION,
          namespace: source.metadata?.namespace ?? "",
          plural: SFS_PLURAL,
          name: source.metadata?.name ?? "",
          body: { metadata: { finalizers, resourceVersion: source.metadata?.resourceVersion } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch, options),
      ),
    );
  }

  /** The Deployment as the API has it now (not the cache), undefined when there is none. */
  async readDeployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    try {
      return await withTimeout(`read Deployment ${namespace}/${name}`, this.#timeoutMs, (options) =>
        this.#apps.readNamespacedDeployment({ name, namespace }, options),
      );
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  }

  async applyDeployment(deployment: V1Deployment): Promise<V1Deployment> {
    this.#check("apply a Deployment", "deployments");
    const name = `${deployment.metadata?.namespace}/${deployment.metadata?.name}`;
    return withTimeout(`apply Deployment ${name}`, this.#timeoutMs, (options) =>
      this.#apps.patchNamespacedDeployment(
        {
          name: deployment.metadata?.name ?? "",
          namespace: deployment.metadata?.namespace ?? "",
          body: deployment,
          fieldManager: FIELD_MANAGER,
          force: true,
        },
        setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply, options),
      ),
    );
  }

  async writeStatus(source: StepFunctionSource, status: StepFunctionSourceStatus): Promise<void> {
    this.#check("write a status", "status");
    await withTimeout(`write the status of ${sourceKey(source)}`, this.#timeoutMs, (options) =>
      this.#custom.patchNamespacedCustomObjectStatus(
        {
          group: SFS_GROUP,
          version: SFS_VERSION,
          namespace: source.metadata?.namespace ?? "",
          plural: SFS_PLURAL,
          name: source.metadata?.name ?? "",
          body: { status: statusPatch(source.status, status) },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch, options),
      ),
    );
  }
}

/**
 * The merge patch that replaces `previous` with `next`: a merge patch leaves alone the keys it does
 * not mention, so each top-level key `next` lacks is sent as null (deleted). Lists (conditions) are
 * replaced whole by a merge patch anyway.
 */
export function statusPatch(
  previous: StepFunctionSourceStatus | undefined,
  next: StepFunctionSourceStatus,
): Record<string, unknown> {
  const removed = Object.keys(previous ?? {}).filter((key) => !(key in next));
  return { ...Object.fromEntries(removed.map((key) => [key, null])), ...next };
}

function sourceKey(source: StepFunctionSource): string {
  return `${source.metadata?.namespace}/${source.metadata?.name}`;
}
