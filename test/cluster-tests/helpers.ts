/**
 * Helpers of the cluster tests: namespaces of their own, applying manifests with kubectl, and
 * polling for what controllers do asynchronously.
 */
import { randomBytes } from "node:crypto";
import type { TestCluster } from "../support/cluster.ts";

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Creates a namespace with a random suffix and waits for its `default` ServiceAccount (created by
 * the controller-manager; pods are refused until it exists). Each test uses its own namespace.
 */
export async function createNamespace(cluster: TestCluster, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await cluster.kubectl(["create", "namespace", name]);
  await eventually(`ServiceAccount ${name}/default`, async () => {
    const { code } = await cluster.kubectl(["get", "serviceaccount", "default", "-n", name], {
      allowFailure: true,
    });
    return code === 0;
  });
  return name;
}

/** `kubectl apply -f -` of objects (JSON is YAML); returns kubectl's output. */
export async function apply(
  cluster: TestCluster,
  objects: object[],
  extraArgs: string[] = [],
): Promise<string> {
  const input = JSON.stringify({ apiVersion: "v1", kind: "List", items: objects });
  const { stdout } = await cluster.kubectl(["apply", "-f", "-", ...extraArgs], { input });
  return stdout;
}

/** `kubectl get ... -o json`, parsed; undefined when not found. */
export async function getJson<T = Record<string, unknown>>(
  cluster: TestCluster,
  args: string[],
): Promise<T | undefined> {
  const { code, stdout, stderr } = await cluster.kubectl(["get", ...args, "-o", "json"], {
    allowFailure: true,
  });
  if (code !== 0) {
    if (/NotFound|not found/.test(stderr)) return undefined;
    throw new Error(`kubectl get ${args.join(" ")}: ${stderr}`);
  }
  return JSON.parse(stdout) as T;
}
