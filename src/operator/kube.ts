/**
 * The operator's thin layer over the Kubernetes API (client-node 2.x): per-call options (a timeout of
 * our own on every call, since client-node sets none; the patch content types), and the writes
 * reconcile makes. Decisions live in reconcile.ts; this file only talks to the API.
 */
import {
  type AppsV1Api,
  type ConfigurationOptions,
  type CustomObjectsApi,
  type KubernetesObject,
  type ObservableMiddleware,
  Observable,
  PatchStrategy,
  type RequestContext,
  type ResponseContext,
  type V1Deployment,
} from "@kubernetes/client-node";
import {
  SFS_GROUP,
  SFS_PLURAL,
  SFS_VERSION,
  type StepFunctionSource,
  type StepFunctionSourceStatus,
} from "../api/step-function-source.ts";

/** The field manager of everything the operator applies: `kubectl get -o yaml --show-managed-fields`. */
export const FIELD_MANAGER = "sfn-operator";

/** Options of one API call: a fresh timeout, and the patch's content type when it is a patch. */
export type CallOptions = (options?: { mergePatch?: boolean; serverSideApply?: boolean }) => ConfigurationOptions<ObservableMiddleware>;

/** CallOptions with a timeout of `timeoutMs` on every call (connect, headers and body). */
export function callOptions(timeoutMs: number): CallOptions {
  return (options = {}) => {
    const contentType = options.serverSideApply
      ? PatchStrategy.ServerSideApply
      : options.mergePatch
        ? PatchStrategy.MergePatch
        : undefined;
    const middleware: ObservableMiddleware = {
      pre: (context: RequestContext) => {
        // A new signal per call: AbortSignal.timeout starts counting now.
        context.setSignal(AbortSignal.timeout(timeoutMs));
        if (contentType !== undefined) context.setHeaderParam("Content-Type", contentType);
        return new Observable(Promise.resolve(context));
      },
      post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
    };
    return { middleware: [middleware], middlewareMergeStrategy: "append" };
  };
}

/** The writes reconcile makes (ReconcileDeps["kube"]). */
export class KubeWriter {
  readonly #custom: CustomObjectsApi;
  readonly #apps: AppsV1Api;
  readonly #options: CallOptions;
  /** Writes made, by kind: the idle benchmark and the restart test count them. */
  readonly writes = { finalizers: 0, deployments: 0, status: 0 };

  constructor(custom: CustomObjectsApi, apps: AppsV1Api, options: CallOptions) {
    this.#custom = custom;
    this.#apps = apps;
    this.#options = options;
  }

  async setFinalizers(source: StepFunctionSource, finalizers: string[]): Promise<void> {
    this.writes.finalizers += 1;
    // The resourceVersion makes it conditional: a source changed since it was read gets 409, and the
    // work queue runs reconcile again on the newer object.
    await this.#custom.patchNamespacedCustomObject(
      {
        group: SFS_GROUP,
        version: SFS_VERSION,
        namespace: source.metadata?.namespace ?? "",
        plural: SFS_PLURAL,
        name: source.metadata?.name ?? "",
        body: { metadata: { finalizers, resourceVersion: source.metadata?.resourceVersion } },
      },
      this.#options({ mergePatch: true }),
    );
  }

  async applyDeployment(deployment: V1Deployment): Promise<V1Deployment> {
    this.writes.deployments += 1;
    return this.#apps.patchNamespacedDeployment(
      {
        name: deployment.metadata?.name ?? "",
        namespace: deployment.metadata?.namespace ?? "",
        body: deployment,
        fieldManager: FIELD_MANAGER,
        force: true,
      },
      this.#options({ serverSideApply: true }),
    );
  }

  async writeStatus(source: StepFunctionSource, status: StepFunctionSourceStatus): Promise<void> {
    this.writes.status += 1;
    await this.#custom.patchNamespacedCustomObjectStatus(
      {
        group: SFS_GROUP,
        version: SFS_VERSION,
        namespace: source.metadata?.namespace ?? "",
        plural: SFS_PLURAL,
        name: source.metadata?.name ?? "",
        body: { status },
      },
      this.#options({ mergePatch: true }),
    );
  }
}

export type { KubernetesObject };
