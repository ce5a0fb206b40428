/**
 * One measurement of the import-cost benchmark (bench/memory.ts), run in a fresh process each time so
 * that no module is already loaded: imports the given specifiers one after the other, lets the event
 * loop settle, and prints one JSON line with what Linux and V8 say about the process then, and again
 * after a full garbage collection (the probe runs with --expose-gc, which allocates nothing itself).
 *
 * `node --expose-gc dist/bench/memory-probe.js [specifier...]`; specifiers are package names or paths
 * relative to the repository root (`./dist/src/poller/run-poller.js`).
 *
 * With SFN_OPTIMIZE_FOR_SIZE=true it applies --optimize-for-size first, as bin/sfn-operator.js does;
 * PROBE_RUNTIME_FLAGS are applied the same way (v8.setFlagsFromString before any import).
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import v8 from "node:v8";
import { memorySnapshot } from "./proc.ts";

if (process.env.SFN_OPTIMIZE_FOR_SIZE === "true") v8.setFlagsFromString("--optimize-for-size");
// Other V8 flags set the same way, at run time, before any import: which of them still take effect?
if (process.env.PROBE_RUNTIME_FLAGS) v8.setFlagsFromString(process.env.PROBE_RUNTIME_FLAGS);

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
for (const specifier of process.argv.slice(2)) {
  await import(specifier.startsWith(".") ? pathToFileURL(path.join(root, specifier)).href : specifier);
}
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 200));
await settle();
const loaded = memorySnapshot();
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
gc();
await settle();
const collected = memorySnapshot();
process.stdout.write(`${JSON.stringify({ loaded, collected })}\n`);
