/**
 * Builds the Dockerfile's stages into folders, without a Docker engine, as far as a test can: each
 * stage is a folder standing for its root filesystem; WORKDIR, COPY (from the build context through
 * .dockerignore, or --from an earlier stage) and ENV/USER/ENTRYPOINT are carried out as Docker
 * would; each RUN goes to the caller, who runs it on this machine or says how it stands in (and
 * throws for one it does not know, so that a new RUN fails the test until it is thought about).
 * What base images bring is the caller's too: the files a later COPY takes from them (`node`) and
 * their PATH.
 */
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import {
  type CopyStep,
  copiedFiles,
  copySteps,
  type Dockerfile,
  execForm,
  type IgnoreRule,
  isIgnored,
  keyValues,
  type SourceListing,
  type Stage,
} from "./dockerfile.ts";

export interface BuildHooks {
  /** A file a base image holds at `imagePath`: the host file that stands for it, else undefined. */
  baseFile(image: string, imagePath: string): string | undefined;
  /** Folders a base image holds (distroless: /tmp), created in the stage's folder. */
  baseFolders(image: string): string[];
  /** The PATH a base image sets. */
  basePath(image: string): string;
  /** Carries out a RUN of `stage` with `cwd` (the stage's WORKDIR in its folder). */
  run(stage: Stage, command: string, cwd: string): Promise<void>;
}

export interface BuiltStage {
  stage: Stage;
  /** The folder that stands for the stage's root filesystem. */
  root: string;
  workdir: string;
  env: Map<string, string>;
  user: string | undefined;
  entrypoint: string[] | undefined;
}

/** Every file under `folder`, relative and `/`-separated (symbolic links are listed, not followed). */
export async function filesUnder(folder: string): Promise<string[]> {
  const entries = await fs.readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)).split(path.sep).join("/"))
    .sort();
}

/** Builds every stage into `outDir/<index>-<name>` and returns them, the last one being the image. */
export async function buildWithoutDocker(
  dockerfile: Dockerfile,
  contextDir: string,
  ignoreRules: readonly IgnoreRule[],
  outDir: string,
  hooks: BuildHooks,
): Promise<BuiltStage[]> {
  const built: BuiltStage[] = [];
  const inImage = (root: string, imagePath: string) => path.join(root, ...imagePath.split("/"));

  /** The host file or folder a COPY source stands for, checked as Docker checks it. */
  const resolve = async (stepFrom: string | undefined, source: string) => {
    let host: string;
    if (stepFrom === undefined) {
      const relative = path.posix.normalize(source).replace(/^\.?\/+/, "");
      if (relative.startsWith("..")) throw new Error(`COPY ${source}: outside the build context`);
      if (isIgnored(relative, ignoreRules)) {
        throw new Error(`COPY ${source}: .dockerignore leaves it out of the context`);
      }
      host = path.join(contextDir, relative);
    } else {
      const from = built.find((b) => b.stage.name === stepFrom || String(b.stage.index) === stepFrom);
      if (!from) throw new Error(`COPY --from=${stepFrom}: no earlier stage of that name`);
      host = inImage(from.root, source);
      // Not built in that stage: then its base image must hold it (the node binary).
      if (!existsSync(host)) host = hooks.baseFile(from.stage.base, source) ?? host;
    }
    if (!existsSync(host))
      throw new Error(`COPY ${stepFrom ? `--from=${stepFrom} ` : ""}${source}: not found`);
    return { host, folder: (await fs.stat(host)).isDirectory() };
  };

  const copy = async (step: CopyStep, root: string) => {
    for (const source of step.sources) {
      const { host, folder } = await resolve(step.from, source);
      // Where copiedFiles puts it: a file to (or into) the destination, a folder's contents into it.
      const listing: SourceListing = folder ? { kind: "folder", files: [""] } : { kind: "file" };
      const [placed] = copiedFiles({ ...step, sources: [source] }, () => listing);
      const target = inImage(root, (placed as { dest: string }).dest);
      await fs.mkdir(path.dirname(target), { recursive: true });
      const relative = path.posix.normalize(source).replace(/^\.?\/+/, "");
      await fs.cp(host, target, {
        recursive: true,
        // Links as links (node_modules/.bin), modes and times kept, as COPY does.
        verbatimSymlinks: true,
        preserveTimestamps: true,
        // From the context, what .dockerignore leaves out of a folder is not there to copy.
        filter: (file) =>
          step.from !== undefined ||
          !isIgnored(
            path.posix.join(relative, path.relative(host, file).split(path.sep).join("/")),
            ignoreRules,
          ),
      });
    }
  };

  for (const stage of dockerfile.stages) {
    const root = path.join(outDir, `${stage.index}-${stage.name ?? "image"}`);
    await fs.mkdir(root, { recursive: true });
    const parent = built.find((b) => b.stage.name === stage.base);
    if (parent) await fs.cp(parent.root, root, { recursive: true, verbatimSymlinks: true });
    for (const folder of parent ? [] : hooks.baseFolders(stage.base)) {
      await fs.mkdir(inImage(root, folder), { recursive: true, mode: 0o1777 });
      await fs.chmod(inImage(root, folder), 0o1777);
    }
    const current: BuiltStage = {
      stage,
      root,
      workdir: parent?.workdir ?? "/",
      env: new Map(parent?.env ?? [["PATH", hooks.basePath(stage.base)]]),
      user: parent?.user,
      entrypoint: parent?.entrypoint,
    };
    let copyIndex = 0;
    const steps = copySteps(stage);
    for (const instruction of stage.instructions) {
      switch (instruction.keyword) {
        case "WORKDIR":
          current.workdir = path.posix.resolve(current.workdir, instruction.args.trim());
          await fs.mkdir(inImage(root, current.workdir), { recursive: true });
          break;
        case "COPY":
          await copy(steps[copyIndex++] as CopyStep, root);
          break;
        case "RUN":
          await hooks.run(stage, instruction.args.trim(), inImage(root, current.workdir));
          break;
        case "ENV":
          for (const [key, value] of keyValues(instruction.args)) current.env.set(key, value);
          break;
        case "USER":
          current.user = instruction.args.trim();
          break;
        case "ENTRYPOINT":
          current.entrypoint = execForm(instruction.args) ?? ["/bin/sh", "-c", instruction.args.trim()];
          break;
        case "ARG":
        case "LABEL":
        case "EXPOSE":
        case "CMD":
          break;
        default:
          throw new Error(`line ${instruction.line}: ${instruction.keyword} is not carried out by this test`);
      }
    }
    built.push(current);
  }
  return built;
}
