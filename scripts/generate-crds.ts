/**
 * `npm run crds`: writes the StepFunctionSource CRD (crds/stepfunctionsources.sfn-operator.dev.yaml) from
 * the zod schemas of src/api/step-function-source.ts, and the chart's generated files
 * (scripts/chart-files.ts): its copy of the CRD and its RBAC rules from src/operator/rbac.ts. Run directly
 * by Node's type stripping, so it works in a clean clone without a build. test/unit/crd.test.ts and
 * test/unit/chart-files.test.ts fail when a committed file differs.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { CRD_FILE, renderCrdYaml } from "../src/api/crd.ts";
import { chartFiles } from "./chart-files.ts";

const root = new URL("../", import.meta.url);
for (const [file, content] of [[CRD_FILE, renderCrdYaml()] as [string, string], ...chartFiles()]) {
  const target = new URL(file, root);
  await mkdir(new URL(".", target), { recursive: true });
  await writeFile(target, content);
  console.log(`wrote ${file}`);
}
