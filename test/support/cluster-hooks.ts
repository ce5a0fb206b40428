/**
 * Mocha root hook plugin of the cluster tests (test/cluster-tests/.mocharc.json requires it): one
 * control plane per test run, started before the first test and stopped after the last; a failing
 * test prints the tail of every component's log. Tests get the cluster from {@link testCluster}.
 *
 * If the run is interrupted (Ctrl-C, SIGTERM, an uncaught error), the processes are killed on the
 * way out, so a test run never leaves a control plane behind (k3s in Docker: testcontainers' Ryuk
 * removes the containers once this process is gone).
 */
import type { Context } from "mocha";
import { acquireTestCluster, LocalCluster, type TestCluster } from "./cluster.ts";
import { killProcessesSync } from "./cluster-processes.ts";
import { K3sCluster } from "./k3s-cluster.ts";

let cluster: TestCluster | undefined;
let failures = 0;

/** The cluster of this test run; only valid inside tests and hooks. */
export function testCluster(): TestCluster {
  if (!cluster) throw new Error("no test cluster: run these tests with test/cluster-tests/.mocharc.json");
  return cluster;
}

function killOnExit(): void {
  if (cluster instanceof LocalCluster) killProcessesSync(cluster.state.processes);
}

function onSignal(signal: NodeJS.Signals): void {
  killOnExit();
  process.exit(signal === "SIGINT" ? 130 : 143);
}

export const mochaHooks = {
  async beforeAll(this: Context): Promise<void> {
    // k3s in Docker: the first run pulls its images.
    this.timeout(300_000);
    process.once("exit", killOnExit);
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    cluster = await acquireTestCluster((message) => console.log(`    [cluster] ${message}`));
  },

  afterEach(this: Context): void {
    if (this.currentTest?.state === "failed" && cluster) {
      failures += 1;
      console.error(`\n${cluster.logTails(30)}\n`);
    }
  },

  async afterAll(this: Context): Promise<void> {
    this.timeout(60_000);
    // A failed run keeps the cluster's folder (logs, etcd data) for a closer look.
    await cluster?.stop({ keepFiles: failures > 0 });
    if (failures > 0 && (cluster instanceof LocalCluster || cluster instanceof K3sCluster)) {
      console.error(
        `    [cluster] kept ${cluster instanceof LocalCluster ? cluster.state.dir : cluster.dir} for its logs`,
      );
    }
    cluster = undefined;
  },
};
