/**
 * The environment the kubelet would give a pod's first container, for running that pod as a local
 * process (kwok's pods run nothing): plain values as they are, the downward API's `metadata.name` and
 * `metadata.namespace`, Secret keys read from the API. Anything else in the template throws: this
 * function would have to learn it, rather than silently start a process with less than the pod has.
 */
import type { V1Deployment, V1EnvVar } from "@kubernetes/client-node";
import { getJson } from "../cluster-tests/helpers.ts";
import type { TestCluster } from "./cluster.ts";

export async function podEnvironment(
  cluster: TestCluster,
  deployment: V1Deployment,
  pod: string,
): Promise<NodeJS.ProcessEnv> {
  const namespace = deployment.metadata?.namespace ?? "default";
  const container = deployment.spec?.template.spec?.containers[0];
  if (container === undefined)
    throw new Error(`Deployment ${namespace}/${deployment.metadata?.name} has no container`);
  // Only `env` is translated below: anything from envFrom would be missed.
  if (container.envFrom !== undefined) throw new Error("podEnvironment does not translate envFrom");
  const env: NodeJS.ProcessEnv = {};
  for (const variable of container.env ?? []) {
    env[variable.name] = await resolveVariable(cluster, namespace, variable, pod);
  }
  return env;
}

async function resolveVariable(
  cluster: TestCluster,
  namespace: string,
  variable: V1EnvVar,
  pod: string,
): Promise<string> {
  if (variable.value !== undefined) return variable.value;
  const from = variable.valueFrom;
  if (from?.fieldRef?.fieldPath === "metadata.name") return pod;
  if (from?.fieldRef?.fieldPath === "metadata.namespace") return namespace;
  const ref = from?.secretKeyRef;
  if (ref !== undefined) {
    const secret = await getJson<{ data?: Record<string, string> }>(cluster, [
      "secret",
      "-n",
      namespace,
      ref.name ?? "",
    ]);
    const value = secret?.data?.[ref.key];
    if (value === undefined) {
      if (ref.optional === true) return "";
      throw new Error(`Secret ${namespace}/${ref.name} has no key ${ref.key}`);
    }
    return Buffer.from(value, "base64").toString("utf8");
  }
  throw new Error(`cannot resolve ${variable.name}: ${JSON.stringify(from)}`);
}
