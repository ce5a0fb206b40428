/**
 * The image without a Docker engine. First, read from the Dockerfile: the files its final stage
 * copies into /app are exactly those `npm pack` publishes (bin, the bundle, package.json, README),
 * and no node_modules. Then its stages carried out in a temporary folder
 * (test/support/image-build.ts): the context through .dockerignore, the build stage's
 * `npm run build` (tsc, then the esbuild bundle), the final stage's COPYs; the result starts
 * `operator` and `poller` with no node_modules anywhere, as the image's user, with only /tmp
 * writable, so that a library left out of the bundle or a file missing from the image fails here.
 *
 * `npm run test:integration` builds dist/ first; the pack list is read from it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import { builtinModules } from "node:module";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { REPO_ROOT } from "../support/cli.ts";
import {
  copiedFiles,
  copySteps,
  finalStage,
  isIgnored,
  parseDockerfile,
  parseDockerignore,
  type SourceListing,
  type Stage,
  stageNamed,
} from "../support/dockerfile.ts";
import { type BuiltStage, buildWithoutDocker, filesUnder } from "../support/image-build.ts";

const execFileAsync = promisify(execFile);
const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), "utf8");
const dockerfile = parseDockerfile(read("Dockerfile"));
const ignoreRules = parseDockerignore(read(".dockerignore"));
const image = finalStage(dockerfile);
/**
 * Packages the bundle may import at run time without shipping them: optional ones that the
 * libraries import inside a try, for features sfn-operator does not use, exactly as when they run
 * from node_modules (where these are not installed either).
 */
const OPTIONAL_IMPORTS: Record<string, string> = {
  "@aws-sdk/signature-v4-crt":
    "the SDK's SigV4a signer (multi-region access points), not used by Step Functions",
  "@aws-sdk/signature-v4a": "the same, in JavaScript",
  kerberos: "undici's proxy Negotiate authentication (client-node's fetch), not configured",
  bufferutil: "ws's optional native speed-up (client-node's watch and exec over WebSocket), loaded in a try",
  "utf-8-validate": "the same, for UTF-8 checks",
};

/** The files `npm pack` would publish (from the built dist/), `/`-separated, sorted. */
async function npmPackFiles(): Promise<string[]> {
  // --ignore-scripts: `prepare` would build again; npm run test:integration has just built.
  const { stdout } = await execFileAsync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: REPO_ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  const [result] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  return (result?.files ?? []).map((f) => f.path).sort();
}

/** What is in `a` and not in `b`, and the other way round: the message of a failed set comparison. */
function difference(a: readonly string[], aName: string, b: readonly string[], bName: string): string {
  const onlyA = a.filter((x) => !b.includes(x));
  const onlyB = b.filter((x) => !a.includes(x));
  return [
    onlyA.length ? `only in ${aName}:\n  ${onlyA.join("\n  ")}` : "",
    onlyB.length ? `only in ${bName}:\n  ${onlyB.join("\n  ")}` : "",
  ]
    .filter(Boolean)
    .join("\n");
}

/** Where a stage's `/app/...` is in this repository: the build stage builds in /app what the repo builds here. */
function appPathInRepo(stage: Stage, imagePath: string): string {
  const workdirs = stage.instructions.filter((i) => i.keyword === "WORKDIR").map((i) => i.args.trim());
  expect(workdirs, `stage ${stage.name}: builds in /app`).to.deep.equal(["/app"]);
  expect(imagePath.startsWith("/app/"), `${imagePath} is under /app`).to.equal(true);
  return imagePath.slice("/app/".length);
}

async function listRepo(relative: string): Promise<SourceListing> {
  const host = path.join(REPO_ROOT, relative);
  if (!(await fs.stat(host)).isDirectory()) return { kind: "file" };
  return { kind: "folder", files: await filesUnder(host) };
}

function requireBuiltDist(): void {
  if (!existsSync(path.join(REPO_ROOT, "dist/bundle/main.js"))) {
    throw new Error("dist/bundle is not built: run `npm run build` (npm run test:integration does it first)");
  }
}

describe("image: the Dockerfile's final stage", function () {
  this.timeout(60_000);
  before(requireBuiltDist);

  it("copies into /app exactly the files npm pack lists, and no node_modules", async () => {
    const copied: string[] = [];
    const outsideApp: string[] = [];
    for (const step of copySteps(image)) {
      if (!step.dest.startsWith("/app/") && step.dest !== "/app") {
        outsideApp.push(step.dest);
        continue;
      }
      const listings = new Map<string, SourceListing>();
      for (const source of step.sources) {
        if (step.from === undefined) {
          const relative = path.posix.normalize(source);
          expect(isIgnored(relative, ignoreRules), `${source}: in the build context`).to.equal(false);
          listings.set(source, await listRepo(relative));
        } else {
          listings.set(source, await listRepo(appPathInRepo(stageNamed(dockerfile, step.from), source)));
        }
      }
      for (const { dest } of copiedFiles(step, (_, source) => listings.get(source) as SourceListing)) {
        copied.push(dest.slice("/app/".length));
      }
    }
    const packed = await npmPackFiles();
    copied.sort();
    expect(copied, difference(copied, "the Dockerfile's COPYs", packed, "npm pack --dry-run")).to.deep.equal(
      packed,
    );
    expect(outsideApp, "besides /app, only the node binary").to.deep.equal(["/usr/local/bin/node"]);
    expect(packed.filter((f) => f.includes("node_modules/"))).to.deep.equal([]);
    expect(packed, "the bundle's entry and its notices").to.include.members([
      "dist/bundle/main.js",
      "dist/bundle/THIRD-PARTY-NOTICES.md",
    ]);
  });
});

describe("image: its stages carried out in a temporary folder", function () {
  // A TypeScript build and the bundle (about 15 s).
  this.timeout(300_000);
  let work: string;
  let stages: BuiltStage[];
  let built: BuiltStage;

  /** Runs a RUN's command as it is, with this Node 24 (npm run puts the project's `node` first on the PATH). */
  const shell = async (_: Stage, cwd: string, command: string): Promise<void> => {
    await execFileAsync("sh", ["-c", command], {
      cwd,
      maxBuffer: 16 * 1024 * 1024,
      // The lockfile pins every version and integrity; this only spares npm's cache revalidation.
      env: { ...process.env, npm_config_prefer_offline: "true" },
    });
  };
  /** How each RUN of the Dockerfile is carried out here; a RUN not listed fails the test. */
  const runs: Record<string, (stage: Stage, cwd: string, command: string) => Promise<void>> = {
    // The build stage's full install: the repository's node_modules is what `npm ci` makes of the
    // same package-lock.json, so it stands in (no second download of the dev dependencies).
    "npm ci --ignore-scripts --no-audit --no-fund": async (stage, cwd) => {
      expect(stage.name).to.equal("build");
      await fs.symlink(path.join(REPO_ROOT, "node_modules"), path.join(cwd, "node_modules"), "dir");
    },
    "npm run build": shell,
  };

  before(async () => {
    requireBuiltDist();
    work = await fs.mkdtemp(path.join(os.tmpdir(), "sfn-operator-image-"));
    await fs.chmod(work, 0o755); // the image's user (below) must reach the files
    stages = await buildWithoutDocker(dockerfile, REPO_ROOT, ignoreRules, work, {
      baseFile: (base, imagePath) =>
        base.startsWith("node:") && imagePath === "/usr/local/bin/node" ? process.execPath : undefined,
      baseFolders: () => ["/tmp"],
      basePath: () => "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      run: async (stage, command, cwd) => {
        const carryOut = runs[command];
        if (!carryOut)
          throw new Error(`stage ${stage.name}: no way to carry out RUN ${command} in this test`);
        await carryOut(stage, cwd, command);
      },
    });
    built = stages.at(-1) as BuiltStage;
    await readOnly(built.root, path.join(built.root, "tmp"));
  });

  after(async () => {
    if (!work) return;
    await writable(work);
    await fs.rm(work, { recursive: true, force: true });
  });

  it("holds in /app exactly npm pack's files, and no node_modules anywhere", async () => {
    // The chunks' names carry a hash of their content and of the paths esbuild read them from: here
    // node_modules is a link to the repository's (see `runs`), so the hashes differ from the
    // repository's build while the files are the same. Compared without the hash.
    const unhashed = (files: string[]) =>
      files.map((f) => f.replace(/^(dist\/bundle\/[\w-]+)-[A-Z0-9]{8}(\.js(\.map)?)$/, "$1-<hash>$2")).sort();
    const expected = unhashed(await npmPackFiles());
    const actual = unhashed(await filesUnder(path.join(built.root, "app")));
    expect(
      actual,
      `${difference(actual, "the image's /app", expected, "npm pack")}\n` +
        "(a dist/bundle file only npm pack lists may be left over from an earlier build: rm -rf dist && npm run build)",
    ).to.deep.equal(expected);
    const everything = await filesUnder(built.root);
    expect(everything.filter((f) => f.split("/").includes("node_modules"))).to.deep.equal([]);
  });

  it("holds a bundle that imports nothing but Node's built-in modules, and loads every chunk", async () => {
    const bundleDir = path.join(built.root, "app/dist/bundle");
    const chunks = (await filesUnder(bundleDir)).filter((f) => f.endsWith(".js"));
    const builtins = new Set(builtinModules);
    const imported = new Map<string, string>();
    for (const chunk of chunks) {
      const text = await fs.readFile(path.join(bundleDir, chunk), "utf8");
      // Static and dynamic imports and CommonJS requires with a literal specifier, as esbuild writes
      // them (`__require("x")` for what it did not bundle).
      for (const m of text.matchAll(
        /\b_*require\(\s*"([@\w][\w.@/:-]*)"\s*\)|\bfrom\s*"([@.\w][\w.@/:-]*)"|\bimport\(\s*"([@.\w][\w.@/:-]*)"\s*\)|\bimport\s*"([@.\w][\w.@/:-]*)"/g,
      )) {
        const specifier = (m[1] ?? m[2] ?? m[3] ?? m[4]) as string;
        const name = specifier.replace(/^node:/, "");
        // node:sqlite and the like exist only with their prefix.
        const builtin =
          builtins.has(specifier) || builtins.has(name) || builtins.has(name.split("/")[0] ?? "");
        if (specifier.startsWith("./") || builtin) continue;
        imported.set(specifier, chunk);
      }
    }
    const unexpected = [...imported].filter(([specifier]) => !(specifier in OPTIONAL_IMPORTS));
    expect(unexpected, "packages the bundle imports at run time (not bundled)").to.deep.equal([]);
    expect(chunks, "the commands' entry chunks").to.include.members([
      "main.js",
      "run-poller.js",
      "run-operator.js",
    ]);
    // Every chunk but main.js (which runs the CLI) evaluated in the image: a library that reads a
    // file or a package at load time fails here.
    const result = await runInImage(
      ["--input-type=module", "-e", "for (const c of JSON.parse(process.argv[1])) await import('./' + c);"],
      [JSON.stringify(chunks.filter((c) => c !== "main.js"))],
      {},
      "/app/dist/bundle",
    );
    expect(result.code, result.output).to.equal(0);
    expect(result.changed, "written outside /tmp").to.deep.equal([]);
  });

  it("lets its user write in /tmp (TMPDIR) and nowhere else: the read-only root is real", async () => {
    const write = (target: string) =>
      runInImage(["-e", `require("node:fs").writeFileSync(${target}, "x")`], [], {}, built.workdir);
    const inApp = await write('"written-by-test"');
    expect(inApp.code, inApp.output).to.not.equal(0);
    expect(inApp.output).to.match(/EACCES|EROFS|EPERM/);
    expect(inApp.changed).to.deep.equal([]);
    const inTmp = await write('require("node:path").join(require("node:os").tmpdir(), "written-by-test")');
    expect(inTmp.code, inTmp.output).to.equal(0);
    expect(inTmp.changed).to.deep.equal([]);
  });

  it("operator --help: exits 0 with the usage", async () => {
    const result = await runEntrypoint(["operator", "--help"]);
    expect(result.code, result.output).to.equal(0);
    expect(result.output).to.contain("Usage: sfn-operator operator");
    expect(result.output).to.contain("--poller-image");
    expect(result.changed, "written outside /tmp").to.deep.equal([]);
  });

  it("poller with a bad environment: exits 2 naming every problem", async () => {
    const result = await runEntrypoint(["poller"], {
      SFN_TARGET_URL: "not a url",
      SFN_MAX_CONCURRENCY: "many",
    });
    expect(result.code, result.output).to.equal(2);
    for (const name of ["SFN_ACTIVITY_NAME", "SFN_TARGET_URL", "SFN_TARGET_PATH", "SFN_MAX_CONCURRENCY"]) {
      expect(result.output).to.contain(name);
    }
    expect(result.changed, "written outside /tmp").to.deep.equal([]);
  });

  it("operator without its settings: exits 2 naming the required ones", async () => {
    const result = await runEntrypoint(["operator"]);
    expect(result.code, result.output).to.equal(2);
    expect(result.output).to.contain("SFN_POLLER_IMAGE (--poller-image): is required");
    expect(result.output).to.contain("SFN_REDIS_URL");
    expect(result.changed, "written outside /tmp").to.deep.equal([]);
  });

  it("matches the size the README states for /app", async () => {
    const bytes = await sizeOf(path.join(built.root, "app"));
    const stated = /`\/app` \(([\d.]+) MB\b/.exec(read("README.md"))?.[1];
    expect(stated, "README: `/app` (<n> MB) in the Container image section").to.be.a("string");
    const measured = bytes / 1e6;
    expect(
      Math.abs(measured - Number(stated)) / measured,
      `/app measures ${measured.toFixed(1)} MB, the README says ${stated} MB`,
    ).to.be.below(0.1);
  });

  /** Runs the image's ENTRYPOINT with `args`, as its USER, in its WORKDIR, with its ENV. */
  function runEntrypoint(args: string[], env: Record<string, string> = {}) {
    const [command, ...rest] = built.entrypoint ?? [];
    expect(command, "ENTRYPOINT").to.equal("node");
    return runInImage(rest, args, env, built.workdir);
  }

  /**
   * Runs the image's `node` (found on its PATH, as the ENTRYPOINT's "node" is) with the image's
   * paths mapped into its folder; reports what it changed outside /tmp (path, size, mtime, mode).
   */
  async function runInImage(nodeArgs: string[], args: string[], env: Record<string, string>, cwd: string) {
    const inImage = (p: string) => path.join(built.root, ...p.split("/"));
    const node = (built.env.get("PATH") ?? "")
      .split(":")
      .map((dir) => inImage(`${dir}/node`))
      .find((candidate) => existsSync(candidate));
    expect(node, "node on the image's PATH").to.be.a("string");
    const imageEnv = Object.fromEntries(
      [...built.env].map(([k, v]) => [k, k !== "PATH" && v.startsWith("/") ? inImage(v) : v]),
    );
    const before = await snapshot(built.root);
    const [uid, gid] = (built.user ?? "").split(":").map(Number);
    const child: ChildProcess = spawn(
      node as string,
      [...nodeArgs.map((a) => (a.startsWith("/app/") ? inImage(a) : a)), ...args],
      {
        cwd: inImage(cwd),
        env: { ...imageEnv, ...env },
        stdio: ["ignore", "pipe", "pipe"],
        // As the image's user when this runs as root (CI): then the read-only files are enforced.
        ...(process.getuid?.() === 0 && { uid, gid }),
      },
    );
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    clearTimeout(timer);
    const after = await snapshot(built.root);
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter(
      (k) => before.get(k) !== after.get(k),
    );
    return { code, output, changed };
  }
});

/** Every entry under `root` but /tmp: path → size, mtime and mode, to see what a process changed. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    const full = path.join(e.parentPath, e.name);
    const relative = path.relative(root, full);
    if (relative === "tmp" || relative.startsWith(`tmp${path.sep}`)) continue;
    const s = lstatSync(full); // synchronous: thousands of files, each await would cost more than the call
    out.set(relative, `${s.size} ${s.mtimeMs} ${s.mode.toString(8)}`);
  }
  out.set(".", String(lstatSync(root).mtimeMs));
  return out;
}

/** chmod a-w on everything under `root` except `keep` (the image's /tmp): a read-only root filesystem. */
async function readOnly(root: string, keep: string): Promise<void> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  const paths = entries
    .map((e) => path.join(e.parentPath, e.name))
    .filter((p) => p !== keep && !p.startsWith(`${keep}${path.sep}`));
  for (const p of [...paths, root]) {
    const s = await fs.lstat(p);
    if (!s.isSymbolicLink()) await fs.chmod(p, s.mode & 0o7555);
  }
}

/** Undoes readOnly for the clean-up (needed when the tests do not run as root). */
async function writable(root: string): Promise<void> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  for (const p of [root, ...entries.map((e) => path.join(e.parentPath, e.name))]) {
    const s = await fs.lstat(p);
    if (!s.isSymbolicLink()) await fs.chmod(p, s.mode | 0o200);
  }
}

/** Bytes under `folder` as `du -sb` counts them: apparent sizes of files, links and folders. */
async function sizeOf(folder: string): Promise<number> {
  const entries = await fs.readdir(folder, { recursive: true, withFileTypes: true });
  let total = lstatSync(folder).size;
  for (const e of entries) total += lstatSync(path.join(e.parentPath, e.name)).size;
  return total;
}
