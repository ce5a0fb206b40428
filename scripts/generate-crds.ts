/**
 * `npm run crds`: writes the StepFunctionSource CRD (crds/stepfunctionsources.sfn-operator.dev.yaml) from
 * the zod schemas of src/api/step-function-source.ts. Run directly by Node's type stripping, so it works
 * in a clean clone without a build. test/unit/crd.test.ts fails when the committed file differs.
 */
import { writeFile } from "node:fs/promises";
import { CRD_FILE, renderCrdYaml } from "../src/api/crd.ts";

const target = new URL(`../${CRD_FILE}`, import.meta.url);
await writeFile(target, renderCrdYaml());
console.log(`wrote ${CRD_FILE}`);
