/**
 * The poller Deployment of a StepFunctionSource, as a pure function of the source, its resolved
 * activity ARN and target port, and the operator's defaults. Reconcile applies its result with
 * server-side apply, so everything here is what the operator owns; fields it leaves out (such as an
 * HPA's replicas, if someone ever adds one) stay with whoever set them.
 *
 * Rules written down here because they are easy to break:
 * - `maxConcurrency` appears nowhere in the pod template: the pollers read the live limit from Redis
 *   (SFN_LIMIT_FROM_REDIS), so a limit change is a scale of `replicas` and never rolls the pods.
 * - Output must be deterministic (same input, same object, same order), or every reconcile would
 *   write and roll.
 * - The Deployment carries a hash of everything else in it (APPLIED_HASH_ANNOTATION). Reconcile
 *   decides whether to apply with isSubset(desired, actual), which ignores fields only `actual` has;
 *   without the hash, a field the operator stops setting (a podLabel, nodeSelector or
 *   serviceAccountName removed from the spec) would never be applied away, since what remains is still
 *   a subset. With it, any change of the desired object changes an annotation, so it is applied, and
 *   server-side apply removes the fields our field manager no longer sets.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import type { V1Deployment, V1EnvVar, V1ResourceRequirements } from "@kubernetes/client-node";
import { parseDuration } from "../api/duration.ts";
import { byCodeUnit } from "../util/order.ts";
import type { PollerDefaults, SecretKeyReference } from "./settings.ts";

/** What the Deployment needs of a source's spec (the parsed StepFunctionSourceSpec fits it). */
export interface PollerSpec {
  activityName: string;
  target: {
    service: string;
    path: string;
    headers?: ReadonlyArray<{ name: string; valueFrom: { secretKeyRef: SecretKeyReference } }> | undefined;
  };
  maxConcurrency: number;
  concurrencyPerPoller: number;
  requestTimeout: string;
  heartbeatInterval: string;
  region?: string | undefined;
  serviceAccountName?: string | undefined;
  image?: string | undefined;
  resources?: V1ResourceRequirements | undefined;
  nodeSelector?: Readonly<Record<string, string>> | undefined;
  tolerations?: ReadonlyArray<object> | undefined;
  affinity?: object | undefined;
  podAnnotations?: Readonly<Record<string, string>> | undefined;
  podLabels?: Readonly<Record<string, string>> | undefined;
  redis?: { url: string; passwordSecretRef?: SecretKeyReference | undefined } | undefined;
}

export interface PollerDeploymentInput {
  source: { apiVersion: string; kind: string; name: string; namespace: string; uid: string };
  spec: PollerSpec;
  activityArn: string;
  /** The target Service's port number, resolved from `target.port` (or its first port). */
  targetPort: number;
  defaults: PollerDefaults;
}

/** Labels on every object the operator makes; the Deployment informer selects on MANAGED_BY. */
export const LABELS = {
  name: "app.kubernetes.io/name",
  managedBy: "app.kubernetes.io/managed-by",
  component: "app.kubernetes.io/component",
  instance: "app.kubernetes.io/instance",
  sourceUid: "sfn-operator.dev/source-uid",
} as const;
export const MANAGED_BY = "sfn-operator";
export const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;
/** Annotation with the source's name (label values stop at 63 characters; names do not). */
export const SOURCE_ANNOTATION = "sfn-operator.dev/source";
/** Annotation on the Deployment with a hash of the rest of the desired Deployment (see the top). */
export const APPLIED_HASH_ANNOTATION = "sfn-operator.dev/applied-hash";
/**
 * The user poller containers run as: 1000:1000, the image's `USER 1000:1000` (see the Dockerfile).
 * The pod names the number too, so that runAsNonRoot holds with another image (`spec.image`) whose
 * user is a name: the kubelet refuses to start such a container ("cannot verify user is non-root").
 */
export const POLLER_UID = 1000;

/** Where the Redis CA of SFN_POLLER_REDIS_CA_SECRET is mounted in poller pods (NODE_EXTRA_CA_CERTS). */
export const REDIS_CA_FILE = "/etc/sfn-operator/redis-ca/ca.crt";

/** The port of /metrics, /healthz and /readyz in poller pods. */
export const POLLER_METRICS_PORT = 9090;
/** GetActivityTask holds a poll for up to 60 s; a stopping poller lets outstanding polls finish. */
const LONG_POLL_SECONDS = 60;
/** Reporting the outcome and the process's own shutdown, after the last task's HTTP call. */
const SHUTDOWN_MARGIN_SECONDS = 15;

/** Pollers needed so that every permit can be in use: ceil(maxConcurrency / concurrencyPerPoller). */
export function pollerReplicas(spec: Pick<PollerSpec, "maxConcurrency" | "concurrencyPerPoller">): number {
  return Math.ceil(spec.maxConcurrency / spec.concurrencyPerPoller);
}

/**
 * `<source>-poller`, kept to 63 characters (a source's name may have 253): longer names are cut and
 * given a hash of the full name, so two long names never share a Deployment.
 */
export function pollerDeploymentName(sourceName: string): string {
  const name = `${sourceName}-poller`;
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(sourceName).digest("hex").slice(0, 8);
  return `${sourceName.slice(0, 63 - "-poller".length - 9).replace(/[-.]+$/, "")}-${hash}-poller`;
}

/**
 * Grace period of a stopping poller: an outstanding poll may hand out a task in its last second, and
 * that task must still be run and reported (killing it would lose it until its state times out).
 */
export function terminationGraceSeconds(requestTimeout: string): number {
  return LONG_POLL_SECONDS + Math.ceil(parseDuration(requestTimeout) / 1000) + SHUTDOWN_MARGIN_SECONDS;
}

/**
 * The rollout: never more pods than `replicas` (maxSurge 0), a quarter of them replaced at a time.
 *
 * Why no surge: every loop waits for a permit before it polls, so extra pods cannot break the limit,
 * but during a rollout the old pods keep their permits until their tasks finish; surge pods would only
 * add loops queueing for permits that do not exist (more Redis traffic, more waiting), while taking
 * node resources. Replacing pods without surge keeps the loops at what the semaphore can serve.
 * maxUnavailable is at least 1 (0 with maxSurge 0 is refused by the API server).
 */
export function rolloutStrategy(replicas: number): { maxSurge: number; maxUnavailable: number } {
  return { maxSurge: 0, maxUnavailable: Math.max(1, Math.floor(replicas / 4)) };
}

/** The target's URL inside the cluster (the namespace's search domain resolves `svc.ns.svc`). */
export function targetBaseUrl(service: string, namespace: string, port: number): string {
  return `http://${service}.${namespace}.svc:${port}`;
}

/** The region of `arn:<partition>:states:<region>:<account>:activity:<name>`. */
export function arnRegion(arn: string): string | undefined {
  const region = arn.split(":")[3];
  return region ? region : undefined;
}

/** Variable names that carry header values (SFN_TARGET_HEADERS names them). */
function headerVariable(index: number): string {
  return `SFN_TARGET_HEADER_${index}`;
}

function secretEnv(name: string, ref: SecretKeyReference): V1EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } };
}

/** The poller's environment (README, "poller"), in a fixed order. */
export function pollerEnvironment(input: PollerDeploymentInput): V1EnvVar[] {
  const { source, spec, defaults } = input;
  const env: V1EnvVar[] = [
    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "SFN_SOURCE_NAME", value: `${source.namespace}/${source.name}` },
    { name: "SFN_ACTIVITY_ARN", value: input.activityArn },
    { name: "SFN_TARGET_URL", value: targetBaseUrl(spec.target.service, source.namespace, input.targetPort) },
    { name: "SFN_TARGET_PATH", value: spec.target.path },
    { name: "SFN_CONCURRENCY_PER_POLLER", value: String(spec.concurrencyPerPoller) },
    { name: "SFN_REQUEST_TIMEOUT", value: spec.requestTimeout },
    { name: "SFN_HEARTBEAT_INTERVAL", value: spec.heartbeatInterval },
    // The limit is maxConcurrency as the operator writes it to Redis, followed live.
    { name: "SFN_LIMIT_FROM_REDIS", value: "true" },
  ];
  const headers = spec.target.headers ?? [];
  if (headers.length > 0) {
    // Header values come from Secrets through valueFrom: never in the Deployment's plain text.
    env.push({
      name: "SFN_TARGET_HEADERS",
      value: headers.map((header, index) => `${header.name}=${headerVariable(index)}`).join(","),
    });
    headers.forEach((header, index) => {
      env.push(secretEnv(headerVariable(index), header.valueFrom.secretKeyRef));
    });
  }
  if (spec.redis !== undefined) {
    env.push({ name: "SFN_REDIS_URL", value: spec.redis.url });
    if (spec.redis.passwordSecretRef) env.push(secretEnv("SFN_REDIS_PASSWORD", spec.redis.passwordSecretRef));
    // The lease TTL is about the pollers, whichever Redis they use; the topology variables are not.
    const ttl = defaults.redisEnv.SFN_REDIS_LEASE_TTL;
    if (ttl !== undefined) env.push({ name: "SFN_REDIS_LEASE_TTL", value: ttl });
  } else {
    env.push({ name: "SFN_REDIS_URL", value: defaults.redisUrl });
    if (defaults.redisPasswordSecret) env.push(secretEnv("SFN_REDIS_PASSWORD", defaults.redisPasswordSecret));
    if (defaults.redisCaSecret) env.push({ name: "NODE_EXTRA_CA_CERTS", value: REDIS_CA_FILE });
    for (const [name, value] of Object.entries(defaults.redisEnv).sort(([a], [b]) => a.localeCompare(b))) {
      env.push({ name, value });
    }
  }
  // The region the activity was created in, read from its ARN: whatever chain resolved it for the
  // operator (spec.region, the default, the operator's own AWS settings), the pollers use the same.
  const region = arnRegion(input.activityArn) ?? spec.region ?? defaults.region;
  if (region !== undefined) env.push({ name: "AWS_REGION", value: region });
  if (defaults.awsEndpointUrl !== undefined) {
    env.push({ name: "AWS_ENDPOINT_URL_SFN", value: defaults.awsEndpointUrl });
  }
  // The egress proxy the operator was given (SFN_POLLER_PROXY=inherit), for the pollers' AWS calls;
  // NO_PROXY decides which hosts skip it (the target Services: see README, "Behind an egress proxy").
  // By code unit, not localeCompare: the order is part of the pod template, so one that changed with
  // the process's locale would roll the pods.
  for (const [name, value] of Object.entries(defaults.proxyEnv).sort(([a], [b]) => byCodeUnit(a, b))) {
    env.push({ name, value });
  }
  env.push(
    { name: "SFN_METRICS_PORT", value: String(POLLER_METRICS_PORT) },
    { name: "SFN_LOG_FORMAT", value: "json" },
    { name: "SFN_LOG_LEVEL", value: defaults.logLevel },
  );
  return env;
}

/** Our labels over the user's podLabels: the selector's label must not be overridden. */
function podLabels(input: PollerDeploymentInput): Record<string, string> {
  return { ...(input.spec.podLabels ?? {}), ...selectorLabels(input), ...commonLabels(input) };
}

function selectorLabels(input: PollerDeploymentInput): Record<string, string> {
  return { [LABELS.sourceUid]: input.source.uid };
}

function commonLabels(input: PollerDeploymentInput): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.name]: "sfn-poller",
    [LABELS.component]: "poller",
    [LABELS.managedBy]: MANAGED_BY,
  };
  // A label value holds 63 characters; longer names are in the annotation only.
  if (input.source.name.length <= 63) labels[LABELS.instance] = input.source.name;
  return labels;
}

/** The Deployment the operator keeps for a source, with its APPLIED_HASH_ANNOTATION. */
export function desiredPollerDeployment(input: PollerDeploymentInput): V1Deployment {
  const deployment = deploymentWithoutHash(input);
  // JSON.stringify follows insertion order, which is fixed above: the same input, the same hash.
  const hash = createHash("sha256").update(JSON.stringify(deployment)).digest("hex").slice(0, 16);
  const metadata = deployment.metadata ?? {};
  metadata.annotations = { ...metadata.annotations, [APPLIED_HASH_ANNOTATION]: hash };
  return deployment;
}

function deploymentWithoutHash(input: PollerDeploymentInput): V1Deployment {
  const { source, spec, defaults } = input;
  const replicas = pollerReplicas(spec);
  const serviceAccountName = spec.serviceAccountName ?? defaults.serviceAccountName;
  const strategy = rolloutStrategy(replicas);
  // The operator's default Redis only: a source's own spec.redis brings its own trust.
  const redisCa = spec.redis === undefined ? defaults.redisCaSecret : undefined;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: pollerDeploymentName(source.name),
      namespace: source.namespace,
      labels: { ...selectorLabels(input), ...commonLabels(input) },
      annotations: { [SOURCE_ANNOTATION]: source.name },
      ownerReferences: [
        {
          apiVersion: source.apiVersion,
          kind: source.kind,
          name: source.name,
          uid: source.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      selector: { matchLabels: selectorLabels(input) },
      revisionHistoryLimit: 3,
      strategy: { type: "RollingUpdate", rollingUpdate: strategy },
      template: {
        metadata: {
          labels: podLabels(input),
          annotations: { ...(spec.podAnnotations ?? {}), [SOURCE_ANNOTATION]: source.name },
        },
        spec: {
          ...(serviceAccountName !== undefined && { serviceAccountName }),
          // Pollers never call the Kubernetes API. IRSA and Pod Identity inject their own token.
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: terminationGraceSeconds(spec.requestTimeout),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: POLLER_UID,
            runAsGroup: POLLER_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...(spec.nodeSelector !== undefined && { nodeSelector: { ...spec.nodeSelector } }),
          ...(spec.tolerations !== undefined && { tolerations: [...spec.tolerations] }),
          ...(spec.affinity !== undefined && { affinity: spec.affinity }),
          containers: [
            {
              name: "poller",
              image: spec.image ?? defaults.image,
              imagePullPolicy: defaults.imagePullPolicy,
              // The image's entrypoint is sfn-operator: set args, never command (bin/sfn-operator.js
              // sets V8's flags itself, and a replaced command would lose them).
              args: ["poller"],
              env: pollerEnvironment(input),
              ports: [{ name: "metrics", containerPort: POLLER_METRICS_PORT, protocol: "TCP" }],
              readinessProbe: {
                httpGet: { path: "/readyz", port: "metrics" },
                periodSeconds: 5,
                failureThreshold: 3,
              },
              livenessProbe: {
                httpGet: { path: "/healthz", port: "metrics" },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                failureThreshold: 3,
              },
              resources: spec.resources ?? defaults.resources,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "tmp", mountPath: "/tmp" },
                ...(redisCa !== undefined
                  ? [{ name: "redis-ca", mountPath: path.posix.dirname(REDIS_CA_FILE), readOnly: true }]
                  : []),
              ],
            },
          ],
          // Node.js may write to /tmp (reports, heap snapshots on demand); the root is read-only.
          volumes: [
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
            ...(redisCa !== undefined
              ? [
                  {
                    name: "redis-ca",
                    secret: {
                      secretName: redisCa.name,
                      items: [{ key: redisCa.key, path: path.posix.basename(REDIS_CA_FILE) }],
                    },
                  },
                ]
              : []),
          ],
        },
      },
    },
  };
}
