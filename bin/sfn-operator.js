#!/usr/bin/env node
// The CLI entry. The TypeScript sources are compiled to dist/ by `npm run build`, which `npm ci`
// runs through the `prepare` script.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  // Inside the repository, `npx sfn-operator` and `npm run` put the project's Node 24 (the `node`
  // devDependency) first on the PATH; a bare `node` may be older.
  process.stderr.write(
    `sfn-operator needs Node.js >= 22.19 (this is ${process.version}). Run it with \`npx sfn-operator\` from the project folder, or install Node 24.\n`,
  );
  process.exit(1);
}
// Memory: a poller pod mostly waits in long polls, and one runs per source, so its resident memory
// is multiplied across the cluster. V8 grows the young generation to tens of MB while the modules
// load, and past 100 MB under load on a large machine, and keeps it; --optimize-for-size keeps it
// small and lets the memory reducer shrink the heap once the process idles, for some CPU per task. Unlike the heap-sizing flags (--max-semi-space-size), this one is
// read while the process runs, so setting it here, before any module loads, works wherever this file
// is the entry point (the image, npx, the operator's Deployments) without NODE_OPTIONS or a re-exec.
// BENCHMARKS.md has what it saves and costs; SFN_OPTIMIZE_FOR_SIZE=false turns it off (README).
if (process.env.SFN_OPTIMIZE_FOR_SIZE !== "false") {
  const { setFlagsFromString } = await import("node:v8");
  setFlagsFromString("--optimize-for-size");
}
await import("../dist/bundle/main.js");
