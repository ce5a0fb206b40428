/**
 * The Dockerfile's promises that can be read from it (test/integration/image.test.ts builds its
 * stages without Docker and runs the result): bases pinned by version, with the project's own Node;
 * a numeric non-root user, the one the poller pods run as; an exec-form `sfn-operator` entry point;
 * no shell at run time; a .dockerignore that lets in what the build copies and nothing of the tests,
 * benchmarks or .git. Also the Dockerfile reader itself, on the cases the tests rely on.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { POLLER_UID } from "../../src/operator/poller-deployment.ts";
import { REPO_ROOT } from "../support/cli.ts";
import {
  copiedFiles,
  copySteps,
  execForm,
  finalStage,
  isIgnored,
  keyValues,
  parseDockerfile,
  parseDockerignore,
  type Stage,
  stageNamed,
  words,
} from "../support/dockerfile.ts";
import { filesUnder } from "../support/image-build.ts";

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), "utf8");
const dockerfile = parseDockerfile(read("Dockerfile"));
const ignoreRules = parseDockerignore(read(".dockerignore"));
const image = finalStage(dockerfile);
const packageJson = JSON.parse(read("package.json")) as {
  version: string;
  license: string;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
};
const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, { version?: string }> };

const instructionsOf = (stage: Stage, keyword: string) =>
  stage.instructions.filter((i) => i.keyword === keyword);
const lastOf = (stage: Stage, keyword: string) => instructionsOf(stage, keyword).at(-1);
const isStageName = (base: string) => dockerfile.stages.some((s) => s.name === base);

describe("Dockerfile", () => {
  it("pins every base image by a tag other than latest, and Node by its exact version", () => {
    const bases = dockerfile.stages.map((s) => s.base).filter((b) => !isStageName(b));
    expect(bases).to.not.be.empty;
    for (const base of bases) {
      const tag = /^[^@]+:([^/:@]+)(@sha256:[0-9a-f]{64})?$/.exec(base)?.[1];
      expect(tag, `${base}: a tag`).to.be.a("string");
      expect(tag, base).to.not.equal("latest");
    }
    const nodeVersion = lock.packages["node_modules/node"]?.version;
    expect(nodeVersion, "the node devDependency in package-lock.json").to.match(/^24\.\d+\.\d+$/);
    expect(dockerfile.globalArgs.get("NODE_VERSION"), "ARG NODE_VERSION = the node devDependency").to.equal(
      nodeVersion,
    );
    const nodeBases = bases.filter((b) => b.startsWith("node:"));
    expect(nodeBases, "build stages on the node image").to.not.be.empty;
    for (const base of nodeBases) expect(base).to.match(new RegExp(`^node:${nodeVersion}-`));
  });

  it("runs Node from the pinned node image, in a final stage with no shell and no RUN", () => {
    expect(image.base, "distroless: no shell, no package manager").to.match(
      /^gcr\.io\/distroless\/cc-debian12:/,
    );
    expect(image.base, "the debug tags have a busybox shell").to.not.match(/:debug/);
    expect(instructionsOf(image, "RUN"), "a RUN needs a shell").to.be.empty;
    const node = copySteps(image).find((s) => s.dest === "/usr/local/bin/node");
    expect(node, "COPY of the node binary").to.not.equal(undefined);
    expect(stageNamed(dockerfile, node?.from ?? "").base).to.match(/^node:/);
    expect(node?.sources).to.deep.equal(["/usr/local/bin/node"]);
  });

  it("runs as a numeric non-root user and group, the uid the poller pods set", () => {
    const user = lastOf(image, "USER")?.args.trim();
    expect(user, "USER uid:gid").to.match(/^\d+:\d+$/);
    const [uid, gid] = (user as string).split(":").map(Number);
    expect(uid, "not root").to.not.equal(0);
    expect(gid, "not root's group").to.not.equal(0);
    expect(uid, "POLLER_UID in src/operator/poller-deployment.ts").to.equal(POLLER_UID);
    expect(gid, "runAsGroup of the poller pods").to.equal(POLLER_UID);
  });

  it("starts sfn-operator in exec form, the package's bin", () => {
    const entrypoint = lastOf(image, "ENTRYPOINT");
    expect(execForm(entrypoint?.args ?? ""), "exec form: signals reach node").to.deep.equal([
      "node",
      `/app/${path.posix.normalize(packageJson.bin["sfn-operator"] as string)}`,
    ]);
    expect(execForm(lastOf(image, "CMD")?.args ?? "")).to.deep.equal(["--help"]);
  });

  it("points HOME and TMPDIR at /tmp, the one writable folder", () => {
    const env = new Map(instructionsOf(image, "ENV").flatMap((i) => [...keyValues(i.args)]));
    expect(env.get("HOME")).to.equal("/tmp");
    expect(env.get("TMPDIR")).to.equal("/tmp");
    expect(env.get("NODE_ENV")).to.equal("production");
  });

  it("ships no node_modules: from the build stage only the bundle (and the node binary) leaves", () => {
    const steps = copySteps(image);
    expect(steps.map((s) => s.dest).filter((d) => d.includes("node_modules"))).to.deep.equal([]);
    const fromBuild = steps.filter((s) => s.from !== undefined);
    expect(fromBuild.map((s) => s.from)).to.deep.equal(["build", "build"]);
    expect(fromBuild.flatMap((s) => s.sources)).to.deep.equal(["/usr/local/bin/node", "/app/dist/bundle"]);
    // The build stage makes the bundle with `npm run build`, whose last step is scripts/bundle.ts.
    const build = stageNamed(dockerfile, "build");
    expect(instructionsOf(build, "RUN").map((r) => r.args)).to.include("npm run build");
    expect(packageJson.scripts.build).to.match(/node scripts\/bundle\.ts$/);
    expect(packageJson.files).to.include("dist/bundle");
  });

  it("carries the OCI labels, with the package's version and license", () => {
    const labels = new Map(instructionsOf(image, "LABEL").flatMap((i) => [...keyValues(i.args)]));
    expect(labels.get("org.opencontainers.image.version")).to.equal(packageJson.version);
    expect(labels.get("org.opencontainers.image.licenses")).to.equal(packageJson.license);
    expect(labels.get("org.opencontainers.image.title")).to.equal("sfn-operator");
    expect(labels.get("org.opencontainers.image.description")).to.be.a("string").and.not.be.empty;
  });

  it("lets every file the stages copy from the context in through .dockerignore", async () => {
    for (const stage of dockerfile.stages) {
      for (const step of copySteps(stage).filter((s) => s.from === undefined)) {
        for (const source of step.sources) {
          const relative = path.posix.normalize(source);
          expect(existsSync(path.join(REPO_ROOT, relative)), `${source} exists`).to.equal(true);
          const files = statSync(path.join(REPO_ROOT, relative)).isDirectory()
            ? (await filesUnder(path.join(REPO_ROOT, relative))).map((f) => `${relative}/${f}`)
            : [relative];
          const ignored = files.filter((f) => isIgnored(f, ignoreRules));
          expect(
            ignored,
            `line ${step.line}: files of ${source} that .dockerignore leaves out`,
          ).to.deep.equal([]);
        }
      }
    }
  });

  it("keeps tests, benchmarks, the demo, .git, node_modules, dist and .cluster out of the context", () => {
    for (const file of [
      "test/unit/dockerfile.test.ts",
      "bench/run.ts",
      "demo/demo.ts",
      ".git/HEAD",
      "node_modules/commander/package.json",
      "dist/src/main.js",
      "dist/bundle/main.js",
      ".cluster/anything",
      "docs/x.md",
      "BENCHMARKS.md",
      "Dockerfile",
    ]) {
      expect(isIgnored(file, ignoreRules), file).to.equal(true);
    }
  });
});

describe("Dockerfile reader", () => {
  it("joins continued lines, drops comments, substitutes global ARGs into FROM and reads flags", () => {
    const parsed = parseDockerfile(
      [
        "# syntax=docker/dockerfile:1",
        "ARG V=1.2.3",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile's ${ARG}, not a JS template
        "FROM img:${V}-$V AS one",
        "RUN a \\",
        "  # a comment inside",
        "  b",
        "FROM scratch",
        'COPY --from=one --chmod=644 ["/x y", "/z", "/dest/"]',
      ].join("\n"),
    );
    expect(parsed.stages.map((s) => [s.base, s.name])).to.deep.equal([
      ["img:1.2.3-1.2.3", "one"],
      ["scratch", undefined],
    ]);
    expect(parsed.stages[0]?.instructions[0]).to.include({ keyword: "RUN", args: "a b", line: 4 });
    const copy = parsed.stages[1]?.instructions[0];
    expect(copy?.flags).to.deep.equal({ from: "one", chmod: "644" });
    expect(copySteps(parsed.stages[1] as Stage)[0]).to.include({ dest: "/dest", destIsFolder: true });
  });

  it("splits words with quotes and reads ENV and LABEL pairs", () => {
    expect(words(`a "b c" 'd e' f\\ g`)).to.deep.equal(["a", "b c", "d e", "f g"]);
    expect([...keyValues('A=1 B="two words"')]).to.deep.equal([
      ["A", "1"],
      ["B", "two words"],
    ]);
    expect([...keyValues("A old form")]).to.deep.equal([["A", "old form"]]);
  });

  it("places copied files as Docker does: a folder's contents, a file to or into its destination", () => {
    const [folder, file, intoFolder] = copySteps(
      parseDockerfile("FROM x\nWORKDIR /app\nCOPY bin ./bin\nCOPY a.json /etc/b.json\nCOPY a.json b.md ./")
        .stages[0] as Stage,
    );
    const listing = (_: unknown, source: string) =>
      source === "bin" ? { kind: "folder" as const, files: ["x.js", "sub/y.js"] } : { kind: "file" as const };
    expect(copiedFiles(folder as never, listing).map((f) => f.dest)).to.deep.equal([
      "/app/bin/x.js",
      "/app/bin/sub/y.js",
    ]);
    expect(copiedFiles(file as never, listing).map((f) => f.dest)).to.deep.equal(["/etc/b.json"]);
    expect(copiedFiles(intoFolder as never, listing).map((f) => f.dest)).to.deep.equal([
      "/app/a.json",
      "/app/b.md",
    ]);
  });

  it("matches .dockerignore as Docker does: the last matching rule wins, parents count", () => {
    const rules = parseDockerignore("# c\n*\n!src/\nsrc/**/*.test.ts\n!keep.md\n**/secret");
    expect(isIgnored("src/a/b.ts", rules)).to.equal(false);
    expect(isIgnored("src/a/b.test.ts", rules)).to.equal(true);
    expect(isIgnored("keep.md", rules)).to.equal(false);
    expect(isIgnored("other/keep.md", rules)).to.equal(true);
    expect(isIgnored("src/secret", rules)).to.equal(true);
    expect(isIgnored("secret", rules)).to.equal(true);
  });
});
