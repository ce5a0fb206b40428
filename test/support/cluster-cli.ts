/**
 * Command line around the test cluster harness, for development:
 *
 *   node test/support/cluster-cli.ts up                  start (or reuse) the cluster in .cluster/
 *   node test/support/cluster-cli.ts down                stop every process it started, by pid
 *   node test/support/cluster-cli.ts status              what runs, where the logs are
 *   node test/support/cluster-cli.ts logs [COMPONENT] [LINES]
 *   node test/support/cluster-cli.ts sa-kubeconfig NAMESPACE NAME [FILE]
 *
 * `up` leaves the components running in the background and prints the admin kubeconfig,
 * `.cluster/kubeconfig`. SFN_TEST_CLUSTER_DIR names another folder.
 */
import path from "node:path";
import {
  COMPONENTS,
  DEV_CLUSTER_DIR,
  readState,
  runningCluster,
  startLocalCluster,
  stopCluster,
} from "./cluster.ts";
import { writeServiceAccountKubeconfig } from "./cluster-kubectl.ts";
import { isRunning, tail } from "./cluster-processes.ts";

const dir = process.env.SFN_TEST_CLUSTER_DIR ?? DEV_CLUSTER_DIR;
const say = (message: string): void => console.error(`[cluster] ${message}`);

async function up(): Promise<void> {
  const running = await runningCluster(dir);
  if (running) {
    say(`reusing the running control plane in ${dir}`);
  } else {
    await startLocalCluster({ dir, log: say });
  }
  console.log(`export KUBECONFIG=${path.join(dir, "kubeconfig")}`);
}

async function down(): Promise<void> {
  say((await stopCluster(dir)) ? `stopped the control plane in ${dir}` : `no control plane in ${dir}`);
}

async function status(): Promise<number> {
  const state = await readState(dir);
  if (!state) {
    say(`no control plane in ${dir}`);
    return 1;
  }
  console.log(
    `server:     ${state.server}\nkubeconfig: ${state.kubeconfig}\nready at:   ${state.readyAt ?? "-"}`,
  );
  for (const p of state.processes) {
    console.log(
      `${p.component.padEnd(24)} pid ${String(p.pid).padEnd(8)} ${isRunning(p) ? "running" : "STOPPED"}  ${p.log}`,
    );
  }
  return (await runningCluster(dir)) ? 0 : 1;
}

async function logs(component?: string, lines = "50"): Promise<number> {
  const state = await readState(dir);
  if (!state) return 1;
  if (component && !(COMPONENTS as readonly string[]).includes(component)) {
    say(`unknown component ${component}; one of ${COMPONENTS.join(", ")}`);
    return 2;
  }
  for (const p of state.processes.filter((p) => !component || p.component === component)) {
    console.log(`----- ${p.component} (${p.log}) -----\n${tail(p.log, Number(lines))}`);
  }
  return 0;
}

async function saKubeconfig(namespace?: string, name?: string, file?: string): Promise<number> {
  if (!namespace || !name) {
    say("usage: sa-kubeconfig NAMESPACE NAME [FILE]");
    return 2;
  }
  const running = await runningCluster(dir);
  if (!running) {
    say(`no running control plane in ${dir}: run npm run cluster:up`);
    return 1;
  }
  const written = file
    ? await writeServiceAccountKubeconfig(running.kubeconfig, namespace, name, path.resolve(file))
    : await running.serviceAccountKubeconfig(namespace, name);
  console.log(written);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case "up":
      await up();
      return 0;
    case "down":
      await down();
      return 0;
    case "status":
      return status();
    case "logs":
      return logs(args[0], args[1]);
    case "sa-kubeconfig":
      return saKubeconfig(args[0], args[1], args[2]);
    default:
      say(
        "usage: cluster-cli.ts up | down | status | logs [COMPONENT] [LINES] | sa-kubeconfig NAMESPACE NAME [FILE]",
      );
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    say(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  },
);
