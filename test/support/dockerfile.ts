/**
 * Reads this project's Dockerfile and .dockerignore well enough to check the image without a Docker
 * engine (test/unit/dockerfile.test.ts, test/integration/image.test.ts): stages and their
 * instructions (line continuations joined, comments dropped), global ARGs substituted into FROM,
 * what each COPY puts where, and Docker's .dockerignore matching. Not a general parser: heredocs,
 * the escape directive, globs in COPY sources and ADD are refused with an error, so that a
 * Dockerfile using them fails the tests instead of being misread.
 */
import path from "node:path";

export interface Instruction {
  /** Upper case: FROM, COPY, RUN, ... */
  keyword: string;
  /** Leading `--name=value` flags (COPY --from=build); a bare `--link` has the value "". */
  flags: Record<string, string>;
  /** The text after the keyword and its flags. */
  args: string;
  /** 1-based line of the instruction's first line. */
  line: number;
}

export interface Stage {
  index: number;
  /** FROM's image with the global ARGs substituted, or an earlier stage's name. */
  base: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Map<string, string | undefined>;
  stages: Stage[];
}

const FLAGGED = new Set(["FROM", "COPY", "ADD", "RUN"]);

/** Instructions with their line numbers, continuations joined and comments and blank lines dropped. */
function logicalLines(text: string): Array<{ text: string; line: number }> {
  const out: Array<{ text: string; line: number }> = [];
  let pending: { text: string; line: number } | undefined;
  text.split("\n").forEach((raw, i) => {
    const trimmed = raw.trim();
    // A comment or blank line is dropped, also inside a continued instruction (as Docker does).
    if (trimmed === "" || trimmed.startsWith("#")) return;
    if (/^[A-Za-z]+\s+<</.test(trimmed) && !pending)
      throw new Error(`line ${i + 1}: heredocs are not supported`);
    const continued = trimmed.endsWith("\\");
    const part = continued ? trimmed.slice(0, -1).trimEnd() : trimmed;
    pending = pending ? { text: `${pending.text} ${part}`, line: pending.line } : { text: part, line: i + 1 };
    if (!continued) {
      out.push(pending);
      pending = undefined;
    }
  });
  if (pending) throw new Error(`line ${pending.line}: the file ends inside a continued instruction`);
  return out;
}

/** Replaces `$NAME` and `${NAME}` with the given values (unknown names become ""), as Docker does. */
export function substitute(text: string, values: Map<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced, bare) => {
    return values.get((braced ?? bare) as string) ?? "";
  });
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string | undefined>();
  const stages: Stage[] = [];
  for (const { text: instruction, line } of logicalLines(text)) {
    const match = /^(\S+)\s*(.*)$/.exec(instruction);
    if (!match) continue;
    const keyword = (match[1] as string).toUpperCase();
    let args = match[2] as string;
    const flags: Record<string, string> = {};
    if (FLAGGED.has(keyword)) {
      for (;;) {
        const flag = /^--([A-Za-z-]+)(?:=(\S*))?\s*/.exec(args);
        if (!flag) break;
        flags[flag[1] as string] = flag[2] ?? "";
        args = args.slice(flag[0].length);
      }
    }
    if (keyword === "ADD") throw new Error(`line ${line}: ADD is not supported here; use COPY`);
    if (keyword === "FROM") {
      const [image, as, name, ...rest] = args.split(/\s+/);
      if (!image || (as !== undefined && (as.toUpperCase() !== "AS" || !name)) || rest.length > 0) {
        throw new Error(`line ${line}: cannot read FROM ${args}`);
      }
      stages.push({ index: stages.length, base: substitute(image, globalArgs), name, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) {
      if (keyword !== "ARG") throw new Error(`line ${line}: ${keyword} before the first FROM`);
      const [name, value] = splitOnce(args.trim(), "=");
      globalArgs.set(name, value);
      continue;
    }
    stage.instructions.push({ keyword, flags, args, line });
  }
  return { globalArgs, stages };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}

/** Splits arguments into words as Docker's shell-like parsing does: whitespace, '…' and "…" quotes. */
export function words(text: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) word += text[++i] as string;
      else word += c;
    } else if (/\s/.test(c)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= "";
    } else if (c === "\\" && i + 1 < text.length) {
      word = (word ?? "") + (text[++i] as string);
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new Error(`unclosed quote in ${text}`);
  if (word !== undefined) out.push(word);
  return out;
}

/** The JSON array of an exec-form instruction (ENTRYPOINT ["node", ...]), or undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trim().startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((w) => typeof w === "string")) {
    throw new Error(`not an array of strings: ${args}`);
  }
  return parsed;
}

/** `key=value` pairs of ENV and LABEL (also the old `ENV key value` form). */
export function keyValues(args: string): Map<string, string> {
  const list = words(args);
  const first = list[0];
  if (first !== undefined && !first.includes("=")) return new Map([[first, list.slice(1).join(" ")]]);
  return new Map(
    list.map((w) => {
      const [key, value] = splitOnce(w, "=");
      return [key, value ?? ""];
    }),
  );
}

export function stageNamed(dockerfile: Dockerfile, name: string): Stage {
  const stage = dockerfile.stages.find((s) => s.name === name || String(s.index) === name);
  if (!stage) throw new Error(`no stage named ${name}`);
  return stage;
}

export function finalStage(dockerfile: Dockerfile): Stage {
  const stage = dockerfile.stages.at(-1);
  if (!stage) throw new Error("the Dockerfile has no FROM");
  return stage;
}

/** One COPY, its destination made absolute by the WORKDIR in force. */
export interface CopyStep {
  /** The stage it copies from, or undefined for the build context. */
  from: string | undefined;
  sources: string[];
  /** Absolute path in the image. */
  dest: string;
  /** The destination is a folder (it ends with / or there are several sources). */
  destIsFolder: boolean;
  line: number;
}

/** The stage's COPY instructions in order, each with its absolute destination. */
export function copySteps(stage: Stage): CopyStep[] {
  let workdir: string | undefined;
  const steps: CopyStep[] = [];
  for (const instruction of stage.instructions) {
    if (instruction.keyword === "WORKDIR") {
      workdir = path.posix.resolve(workdir ?? "/", instruction.args.trim());
    }
    if (instruction.keyword !== "COPY") continue;
    const list = execForm(instruction.args) ?? words(instruction.args);
    const dest = list.at(-1);
    const sources = list.slice(0, -1);
    if (dest === undefined || sources.length === 0)
      throw new Error(`line ${instruction.line}: COPY needs a source`);
    for (const source of sources) {
      if (/[*?[]/.test(source)) throw new Error(`line ${instruction.line}: globs in COPY are not supported`);
    }
    if (!dest.startsWith("/") && workdir === undefined) {
      throw new Error(`line ${instruction.line}: a relative COPY destination before this stage's WORKDIR`);
    }
    steps.push({
      from: instruction.flags.from,
      sources,
      dest: path.posix.resolve(workdir ?? "/", dest),
      destIsFolder: dest.endsWith("/") || sources.length > 1,
      line: instruction.line,
    });
  }
  return steps;
}

/** A COPY source as it is: a file, or a folder with these files (paths relative to it). */
export type SourceListing = { kind: "file" } | { kind: "folder"; files: string[] };

/**
 * The files a COPY writes, source and destination, with Docker's rules: a file goes to the
 * destination path (or into it, when it is a folder); a folder's contents (not the folder) go into
 * the destination.
 */
export function copiedFiles(
  step: CopyStep,
  list: (from: string | undefined, source: string) => SourceListing,
): Array<{ source: string; dest: string }> {
  const out: Array<{ source: string; dest: string }> = [];
  for (const source of step.sources) {
    const listing = list(step.from, source);
    if (listing.kind === "file") {
      out.push({
        source,
        dest: step.destIsFolder ? path.posix.join(step.dest, path.posix.basename(source)) : step.dest,
      });
    } else {
      for (const file of listing.files) {
        out.push({ source: path.posix.join(source, file), dest: path.posix.join(step.dest, file) });
      }
    }
  }
  return out;
}

/** One line of .dockerignore. */
export interface IgnoreRule {
  pattern: string;
  exclusion: boolean;
  regexp: RegExp;
}

/** .dockerignore's rules in order (comments and blank lines dropped, patterns cleaned as Docker does). */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split("\n")) {
    let pattern = raw.trim();
    if (pattern === "" || pattern.startsWith("#")) continue;
    const exclusion = pattern.startsWith("!");
    if (exclusion) pattern = pattern.slice(1).trim();
    pattern = path.posix.normalize(pattern).replace(/^\/+/, "").replace(/\/+$/, "");
    rules.push({ pattern, exclusion, regexp: globRegExp(pattern) });
  }
  return rules;
}

/** Docker's pattern syntax: `**` any number of folders, `*` and `?` within one path element. */
function globRegExp(pattern: string): RegExp {
  if (/[[\]]/.test(pattern))
    throw new Error(`character classes in .dockerignore are not supported: ${pattern}`);
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (pattern.startsWith("**/", i)) {
      source += "(?:.*/)?";
      i += 2;
    } else if (pattern.startsWith("**", i)) {
      source += ".*";
      i += 1;
    } else if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else source += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/**
 * Whether the build context leaves out this path (relative to the context, `/`-separated): the
 * last rule that matches the path or one of its parent folders decides, as in Docker's
 * patternmatcher (MatchesOrParentMatches).
 */
export function isIgnored(relative: string, rules: readonly IgnoreRule[]): boolean {
  const parts = relative.split("/");
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.regexp.test(candidate))) ignored = !rule.exclusion;
  }
  return ignored;
}
