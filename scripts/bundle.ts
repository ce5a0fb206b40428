/**
 * Part of `npm run build`: bundles the CLI (src/main.ts and what it imports, the libraries included)
 * with esbuild into dist/bundle/, which bin/sfn-operator.js runs and the image ships instead of
 * node_modules. Why: every poller pod and the operator load the same libraries, and Node keeps the
 * source text of every loaded module in the heap and reads each file through its module loader;
 * one bundle without comments or whitespace, and without the code nobody imports, takes megabytes
 * off every process (BENCHMARKS.md, "Memory"). The libraries are unchanged: esbuild only
 * concatenates and minifies them.
 *
 * - ESM with code splitting: each command (`poller`, `operator`, ...) loads only its own chunks,
 *   and what main.ts imports lazily (axios on the first task) stays out of memory until then.
 * - ES-module builds of the libraries where they have them, and `node:http` through `require`: see
 *   mainFields and httpThroughRequire below (test/integration/bundle.test.ts keeps both).
 * - Whitespace and syntax minified, identifiers not mangled (mangling saved no measurable memory), so
 *   stack traces stay readable; where two modules' top-level names clash esbuild renames one
 *   (commander's CommanderError can show as CommanderError2 in a stack trace or `error.name`). Source maps are written beside the chunks;
 *   `NODE_OPTIONS=--enable-source-maps` maps stack traces back to src/ and node_modules/.
 * - The bundled packages' licenses are collected into dist/bundle/THIRD-PARTY-NOTICES.md, which the
 *   image ships with the bundle (their licenses ask for their notices to travel with copies).
 *
 * Run directly by Node's type stripping (`node scripts/bundle.ts`), after tsc.
 */
import { readdirSync, readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile, type Plugin } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BUNDLE_DIR = path.join(ROOT, "dist/bundle");

/** The entry points: main.ts, and the commands it imports lazily, under names that do not change. */
const ENTRY_POINTS = {
  main: "src/main.ts",
  "run-poller": "src/poller/run-poller.ts",
  "run-local": "src/local/run-local.ts",
  "run-operator": "src/operator/run-operator.ts",
};

// CommonJS libraries in an ES module: esbuild turns their `require("node:…")` calls into a helper that
// throws unless a `require` is in scope, and a few read `__dirname` (ioredis, for its friendly error
// stacks). Every chunk gets the three, as Node gives them to a CommonJS module (they point into
// dist/bundle).
const COMMONJS_SHIM = [
  'import { createRequire as __sfnCreateRequire } from "node:module";',
  'import { dirname as __sfnDirname } from "node:path";',
  'import { fileURLToPath as __sfnFileURLToPath } from "node:url";',
  "const require = __sfnCreateRequire(import.meta.url);",
  "const __filename = __sfnFileURLToPath(import.meta.url);",
  "const __dirname = __sfnDirname(__filename);",
].join(" ");

/**
 * `node:http` through CommonJS `require`, for every module of the bundle that imports it as an ES
 * module (our code, client-node, agent-base...). Node's ES-module facade of a built-in reads every
 * export when it is first imported, and `http`'s WebSocket, CloseEvent and MessageEvent are lazy
 * getters that load Node's whole fetch implementation (undici, with http2) on first read: about
 * 8 MiB more in every process that never uses them. `require` returns the module object without
 * reading them, and esbuild's import of a CommonJS module copies getters, not values.
 * test/integration/bundle.test.ts fails when a command's modules load undici again.
 */
const httpThroughRequire: Plugin = {
  name: "node-http-through-require",
  setup(build) {
    build.onResolve({ filter: /^(node:)?http$/ }, (args) =>
      args.namespace === "http-through-require"
        ? undefined
        : { path: "node:http", namespace: "http-through-require" },
    );
    build.onLoad({ filter: /.*/, namespace: "http-through-require" }, () => ({
      contents: 'module.exports = require("node:http");',
      loader: "js",
    }));
  },
};

async function bundle(): Promise<void> {
  await rm(BUNDLE_DIR, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: BUNDLE_DIR,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22.19",
    // A package's ES-module build first where it has one (package.json "module"): esbuild can leave
    // out what nobody imports only from ES modules. The SDK's HTTP handler package is the case that
    // matters: its CommonJS build is one file that requires http2 for a handler we do not use.
    mainFields: ["module", "main"],
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: "linked",
    sourcesContent: false,
    legalComments: "none",
    banner: { js: COMMONJS_SHIM },
    metafile: true,
    plugins: [httpThroughRequire],
    logLevel: "warning",
  });
  await writeFile(path.join(BUNDLE_DIR, "THIRD-PARTY-NOTICES.md"), thirdPartyNotices(result.metafile));
}

interface BundledPackage {
  name: string;
  version: string;
  license: string;
  licenseText: string | undefined;
}

/** The packages whose files are in the bundle, from esbuild's metafile, with their license texts. */
function bundledPackages(metafile: Metafile): BundledPackage[] {
  const roots = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    // The package's folder is the last node_modules/<name> or node_modules/@scope/<name> of the path.
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match?.[1]) roots.add(match[1]);
  }
  const packages = [...roots].map((root): BundledPackage => {
    const folder = path.join(ROOT, root);
    const manifest = JSON.parse(readFileSync(path.join(folder, "package.json"), "utf8")) as {
      name: string;
      version: string;
      license?: string;
    };
    const licenseFile = readdirSync(folder).find((file) =>
      /^(licen[cs]e|unlicense|copying)(\.|-|$)/i.test(file),
    );
    return {
      name: manifest.name,
      version: manifest.version,
      license: manifest.license ?? "(not stated in package.json)",
      licenseText: licenseFile ? readFileSync(path.join(folder, licenseFile), "utf8").trim() : undefined,
    };
  });
  return packages.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

function thirdPartyNotices(metafile: Metafile): string {
  const sections = bundledPackages(metafile).map((pkg) =>
    [
      `## ${pkg.name} ${pkg.version}`,
      "",
      `License: ${pkg.license}`,
      "",
      pkg.licenseText === undefined
        ? "(The package ships no license file; its package.json states the license above.)"
        : ["```text", pkg.licenseText, "```"].join("\n"),
    ].join("\n"),
  );
  return [
    "# Third-party notices",
    "",
    "sfn-operator's bundle (dist/bundle) contains code of the packages below, under their licenses.",
    "",
    ...sections.flatMap((section) => [section, ""]),
  ].join("\n");
}

await bundle();
