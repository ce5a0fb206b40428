/**
 * kubectl and kubeconfig helpers of the test cluster harness. Tests drive the cluster with the real
 * `kubectl` (as users do); kubeconfigs are written self-contained (certificates inlined) so one file
 * is all a process needs.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";

/** The kubectl binary: `SFN_TEST_KUBECTL`, else `kubectl` from the PATH. */
export const KUBECTL = process.env.SFN_TEST_KUBECTL ?? "kubectl";

/** What a kubectl run printed and how it ended. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of one kubectl run. */
export interface KubectlOptions {
  /** Written to kubectl's stdin (for `apply -f -`). */
  input?: string;
  /** Resolve with a non-zero exit code instead of rejecting. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

/** Runs `kubectl --kubeconfig <kubeconfig> ...args`; rejects on a non-zero exit unless allowed. */
export function kubectl(
  kubeconfig: string,
  args: string[],
  options: KubectlOptions = {},
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      KUBECTL,
      [`--kubeconfig=${kubeconfig}`, ...args],
      { timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: kubectlEnv() },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        const result = { code, stdout, stderr };
        if (code !== 0 && !options.allowFailure) {
          reject(new Error(`kubectl ${args.join(" ")} exited ${code}: ${stderr.trim() || stdout.trim()}`));
        } else {
          resolve(result);
        }
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

/** No KUBECONFIG from the caller's shell: every run names its kubeconfig explicitly. */
function kubectlEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.KUBECONFIG;
  return env;
}

/** A user of a kubeconfig: a client certificate (PEM) or a bearer token. */
export type KubeconfigUser = { certPem: string; keyPem: string } | { token: string };

/** Writes a single-context kubeconfig with inlined credentials, readable by its owner only. */
export async function writeKubeconfig(
  file: string,
  options: { server: string; caPem: string; user: KubeconfigUser; name?: string; namespace?: string },
): Promise<void> {
  const name = options.name ?? "sfn-test";
  const b64 = (pem: string): string => Buffer.from(pem).toString("base64");
  const user =
    "token" in options.user
      ? { token: options.user.token }
      : { "client-certificate-data": b64(options.user.certPem), "client-key-data": b64(options.user.keyPem) };
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name,
        // Without a CA the system's trust store applies (an existing cluster with a public certificate).
        cluster: {
          server: options.server,
          ...(options.caPem ? { "certificate-authority-data": b64(options.caPem) } : {}),
        },
      },
    ],
    users: [{ name, user }],
    contexts: [
      {
        name,
        context: {
          cluster: name,
          user: name,
          ...(options.namespace ? { namespace: options.namespace } : {}),
        },
      },
    ],
    "current-context": name,
  };
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, YAML.stringify(config), { mode: 0o600 });
}

/** Server URL and CA of the current context of a kubeconfig (any cluster: asks kubectl to resolve it). */
export async function clusterOfKubeconfig(kubeconfig: string): Promise<{ server: string; caPem: string }> {
  const { stdout } = await kubectl(kubeconfig, [
    "config",
    "view",
    "--raw",
    "--minify",
    "--flatten",
    "-o",
    "json",
  ]);
  const view = JSON.parse(stdout) as {
    clusters?: Array<{ cluster?: { server?: string; "certificate-authority-data"?: string } }>;
  };
  const cluster = view.clusters?.[0]?.cluster;
  if (!cluster?.server) throw new Error(`no cluster in the current context of ${kubeconfig}`);
  const caData = cluster["certificate-authority-data"];
  return { server: cluster.server, caPem: caData ? Buffer.from(caData, "base64").toString() : "" };
}

/**
 * Writes a kubeconfig that acts as ServiceAccount `namespace/name`, with a token from the
 * TokenRequest API (`kubectl create token`), so a test can run a process with exactly the RBAC that
 * ServiceAccount is bound to. Returns the file written.
 */
export async function writeServiceAccountKubeconfig(
  adminKubeconfig: string,
  namespace: string,
  name: string,
  file: string,
  durationSeconds = 3600,
): Promise<string> {
  const [{ server, caPem }, { stdout }] = await Promise.all([
    clusterOfKubeconfig(adminKubeconfig),
    kubectl(adminKubeconfig, ["create", "token", name, "-n", namespace, `--duration=${durationSeconds}s`]),
  ]);
  await writeKubeconfig(file, {
    server,
    caPem,
    user: { token: stdout.trim() },
    name: `${namespace}-${name}`,
    namespace,
  });
  return file;
}
