/**
 * The CLI as it ran before the bundle, for the memory benchmark's comparison only: the same
 * --optimize-for-size as bin/sfn-operator.js, then the modules tsc compiled to dist/src, which load
 * their libraries from node_modules. `node dist/bench/unbundled-cli.js poller` instead of
 * `node bin/sfn-operator.js poller`.
 */
import { setFlagsFromString } from "node:v8";

if (process.env.SFN_OPTIMIZE_FOR_SIZE !== "false") setFlagsFromString("--optimize-for-size");
await import("../src/main.ts");
