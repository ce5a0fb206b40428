/**
 * Prints which backend the test harness will use (test/support/harness-selection.ts), for the shell
 * scripts that prepare a run:
 *
 *   node test/support/harness-selection-cli.ts cluster   local | docker | existing
 *   node test/support/harness-selection-cli.ts redis     local | docker | existing
 *
 * The backend goes to stdout, the reason to stderr; exit 1 (with the message) when the environment
 * asks for what cannot be (SFN_TEST_USE_DOCKER=1 without a Docker engine, a bad value).
 * test/cluster/build.sh --unless-docker builds nothing when `cluster` says docker; test/setup.sh does
 * not ask for redis-server when `redis` says docker.
 */
import { selectClusterBackend } from "./cluster.ts";
import { selectRedisBackend } from "./harness-selection.ts";

const what = process.argv[2];
try {
  if (what !== "cluster" && what !== "redis")
    throw new Error("usage: harness-selection-cli.ts cluster|redis");
  const choice = what === "cluster" ? await selectClusterBackend() : await selectRedisBackend();
  console.error(`[harness] ${what}: ${choice.backend} (${choice.reason})`);
  console.log(choice.backend);
  // A Docker probe may leave a connection open: do not wait for it.
  process.exit(0);
} catch (error) {
  console.error(`[harness] ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
