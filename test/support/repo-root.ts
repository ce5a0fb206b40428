/**
 * The repository root from a folder of test/support: two levels up when the tests run from source
 * (node strips the types), three when the benchmarks run this code compiled into dist/test/support/
 * (bench/operator.ts uses the cluster harness). The root is the one with package.json.
 */
import { existsSync } from "node:fs";
import path from "node:path";

export function repoRoot(supportDir: string): string {
  const up2 = path.resolve(supportDir, "../..");
  return existsSync(path.join(up2, "package.json")) ? up2 : path.dirname(up2);
}
