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
await import("../dist/src/main.js");
