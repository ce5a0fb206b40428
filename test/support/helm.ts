/**
 * The real helm of the test control plane's build (helmBin()), run with its configuration, cache and
 * data in a folder of the test's own (never the user's ~/.config/helm), and with the kubeconfig the
 * test names or none (never the caller's KUBECONFIG).
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { helmBin } from "./cluster.ts";

/** How a helm run ended and what it printed. */
export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runHelm(
  args: string[],
  options: { home: string; kubeconfig?: string | undefined; timeoutMs?: number },
): Promise<HelmResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CONFIG_HOME: path.join(options.home, "helm-config"),
    HELM_CACHE_HOME: path.join(options.home, "helm-cache"),
    HELM_DATA_HOME: path.join(options.home, "helm-data"),
  };
  delete env.KUBECONFIG;
  if (options.kubeconfig) env.KUBECONFIG = options.kubeconfig;
  return new Promise((resolve) => {
    execFile(
      helmBin(),
      args,
      { env, maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}
