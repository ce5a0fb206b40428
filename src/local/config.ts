/**
 * The local-mode sources file (`sfn-operator local -f sources.yaml`, format in DESIGN.md "Local mode").
 *
 * Strict on purpose: an unknown key is an error (with the nearest known key suggested), because a
 * misspelt `maxConcurency` silently falling back to its default is worse than a refusal. Every problem in
 * the file is reported at once, one line each, naming the file, the source and the field.
 */
import { readFile } from "node:fs/promises";
import { getSystemErrorMessage } from "node:util";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import {
  ConfigError,
  concurrencyIssues,
  containerErrors,
  describeValue,
  type FieldIssue,
  fieldIssues,
  httpBaseUrlSchema,
  redisUrlSchema,
  regionSchema,
  requestPathSchema,
  resolveSourceLimits,
  resolveTargetHeaders,
  sourceFieldSchemas,
  targetHeadersSchema,
} from "../api/fields.ts";
import { joinTargetUrl, type PollerSettings } from "../api/types.ts";
import { formatRedisProblem, redisSettingsFromEnv } from "../semaphore/redis/settings.ts";

export { ConfigError };

/** A sources file, checked and resolved: what local mode runs. */
export interface LocalConfig {
  /** Redis for the distributed semaphore; without it local mode uses an in-process one. */
  redisUrl?: string;
  /** AWS region; the SDK's usual resolution when absent. */
  region?: string;
  /** One entry per source, in file order; sourceName is the activity name. */
  sources: PollerSettings[];
}

/** One entry of `sources`. */
const sourceSchema = z.strictObject({
  activityName: sourceFieldSchemas.activityName,
  target: httpBaseUrlSchema,
  path: requestPathSchema,
  maxConcurrency: sourceFieldSchemas.maxConcurrency,
  concurrencyPerPoller: sourceFieldSchemas.concurrencyPerPoller,
  requestTimeout: sourceFieldSchemas.requestTimeout,
  heartbeatInterval: sourceFieldSchemas.heartbeatInterval,
  /**
   * Headers sent with every call to the target, e.g. `Authorization: { valueFromEnv: SUM_API_TOKEN }`.
   * Each value is either a literal (`value:`) or read from an environment variable (`valueFromEnv:`),
   * said explicitly so that a reader sees which values are secrets kept out of the file; the same
   * indirection as the poller's SFN_TARGET_HEADERS and Kubernetes' `valueFrom`.
   */
  headers: targetHeadersSchema.optional(),
});

/** The whole file. */
const fileSchema = z.strictObject({
  redis: redisUrlSchema.optional(),
  region: regionSchema.optional(),
  sources: z.array(sourceSchema).min(1, { error: "must list at least one source" }),
});

/**
 * Read and check a sources file; a file that cannot be read is a ConfigError naming the OS reason.
 * `env` holds the variables that `valueFromEnv` headers name.
 */
export async function loadLocalConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<LocalConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError([`${path}: cannot read the file: ${osReason(error)}`]);
  }
  return parseLocalConfig(text, path, env);
}

/** The OS's words for a failed file operation ("no such file or directory (ENOENT)"). */
function osReason(error: unknown): string {
  if (error instanceof Error) {
    const { code, errno } = error as NodeJS.ErrnoException;
    if (typeof errno === "number" && typeof code === "string")
      return `${getSystemErrorMessage(errno)} (${code})`;
    return error.message;
  }
  return String(error);
}

/**
 * Check and resolve the text of a sources file. `fileName` only labels the messages; `env` holds the
 * variables `valueFromEnv` headers name. Throws ConfigError listing every problem: YAML syntax (with
 * line:col), unknown keys, wrong types and values, duplicate activity names, concurrencyPerPoller above
 * maxConcurrency, and headers that cannot be sent (messages name headers and variables, never values).
 */
export function parseLocalConfig(
  text: string,
  fileName: string,
  env: NodeJS.ProcessEnv = process.env,
): LocalConfig {
  const lineCounter = new LineCounter();
  // Unique keys: a key given twice in YAML is an error, not "the last one wins".
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return `${fileName}:${line}:${col}: ${firstLine(error.message)}`;
      }),
    );
  }
  let raw: unknown;
  try {
    raw = document.toJS();
  } catch (error) {
    // yaml refuses to expand aliases without bound (the "billion laughs" file) at this step.
    throw new ConfigError([`${fileName}: ${error instanceof Error ? error.message : String(error)}`]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError([`${fileName}: is empty; it must be a mapping with a "sources" list`]);
  }
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError([
      `${fileName}: must be a mapping with a "sources" list at the top level, got ${describeValue(raw)}`,
    ]);
  }

  const parsed = fileSchema.safeParse(raw, { error: containerErrors });
  const issues = parsed.success ? [] : fieldIssues(fileSchema, parsed.error.issues);
  const rawSources = (raw as { sources?: unknown }).sources;
  const entries = Array.isArray(rawSources) ? rawSources : [];
  issues.push(...duplicateNames(entries), ...crossFieldIssues(entries));
  const headers = entries.map((entry, index) => headerIssuesAndValues(entry, index, env));
  for (const resolved of headers) if (!resolved.ok) issues.push(...resolved.issues);
  // Problems of environment variables are named by the variable, not the file: listed after the file's.
  const variableProblems: string[] = [];
  const redis = redisUrlSchema.safeParse((raw as { redis?: unknown }).redis);
  if (redis.success) {
    const urlSetting = `${fileName} (redis)`;
    for (const problem of redisSettingsFromEnv(redis.data, env, urlSetting).problems) {
      if (problem.setting === urlSetting) issues.push({ path: ["redis"], message: problem.message });
      else variableProblems.push(formatRedisProblem(problem));
    }
  }

  if (!parsed.success || issues.length > 0 || variableProblems.length > 0) {
    throw new ConfigError([
      ...sortBySource(issues).map((issue) => formatIssue(fileName, entries, issue)),
      ...variableProblems,
    ]);
  }
  const file = parsed.data;
  return {
    ...(file.redis !== undefined && { redisUrl: file.redis }),
    ...(file.region !== undefined && { region: file.region }),
    sources: file.sources.map((source, index) => {
      const limits = resolveSourceLimits(source);
      // Cannot fail: the schema accepted the durations and crossFieldIssues found nothing.
      if (!limits.ok) throw new ConfigError(limits.issues.map((issue) => issue.message));
      const targetHeaders = headers[index];
      return {
        sourceName: source.activityName,
        activityName: source.activityName,
        targetUrl: joinTargetUrl(source.target, source.path),
        ...limits.value,
        ...(targetHeaders?.ok &&
          Object.keys(targetHeaders.value).length > 0 && { targetHeaders: targetHeaders.value }),
      };
    }),
  };
}

/**
 * The headers of `sources[index]` resolved, or their problems (with paths from the file's root). Only
 * entries whose `headers` the schema accepts are resolved; the schema reports the others.
 */
function headerIssuesAndValues(
  entry: unknown,
  index: number,
  env: NodeJS.ProcessEnv,
): ReturnType<typeof resolveTargetHeaders> {
  const raw =
    typeof entry === "object" && entry !== null ? (entry as { headers?: unknown }).headers : undefined;
  const parsed = targetHeadersSchema.safeParse(raw ?? {});
  if (!parsed.success) return { ok: true, value: {} };
  const resolved = resolveTargetHeaders(Object.entries(parsed.data), env);
  if (resolved.ok) return resolved;
  return {
    ok: false,
    issues: resolved.issues.map((issue) => ({
      ...issue,
      path: ["sources", index, "headers", ...issue.path],
    })),
  };
}

/** yaml's messages may carry a context excerpt after a line break; one line per problem is the rule. */
function firstLine(message: string): string {
  return message.split("\n", 1)[0] ?? message;
}

/** An activity served by two sources would have its tasks split between them at random: refuse it. */
function duplicateNames(entries: readonly unknown[]): FieldIssue[] {
  const firstIndex = new Map<string, number>();
  const issues: FieldIssue[] = [];
  entries.forEach((entry, index) => {
    const name = activityNameOf(entry);
    if (name === undefined) return;
    const first = firstIndex.get(name);
    if (first === undefined) firstIndex.set(name, index);
    else issues.push({ path: ["sources", index, "activityName"], message: `duplicate of sources[${first}]` });
  });
  return issues;
}

/** The two concurrency fields alone, to check the rule between them whatever the other fields hold. */
const concurrencySchema = z.object({
  maxConcurrency: sourceFieldSchemas.maxConcurrency,
  concurrencyPerPoller: sourceFieldSchemas.concurrencyPerPoller,
});

/** concurrencyPerPoller above maxConcurrency, for every source where both are valid (or defaulted). */
function crossFieldIssues(entries: readonly unknown[]): FieldIssue[] {
  const issues: FieldIssue[] = [];
  entries.forEach((entry, index) => {
    const fields = concurrencySchema.safeParse(entry);
    if (!fields.success) return;
    for (const issue of concurrencyIssues(fields.data)) {
      issues.push({ ...issue, path: ["sources", index, ...issue.path] });
    }
  });
  return issues;
}

/** The activity name an entry gives, when it gives one as a non-empty string. */
function activityNameOf(entry: unknown): string | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const name = (entry as { activityName?: unknown }).activityName;
  return typeof name === "string" && name !== "" ? name : undefined;
}

/** File-level issues first, then each source's in index order, keeping the order within each. */
function sortBySource(issues: FieldIssue[]): FieldIssue[] {
  const rank = (issue: FieldIssue): number =>
    issue.path[0] === "sources" && typeof issue.path[1] === "number" ? issue.path[1] : -1;
  return issues.toSorted((a, b) => rank(a) - rank(b));
}

/** `sources.yaml: sources[1] (sum): maxConcurrency: must be at most 1000, got 5000`. */
function formatIssue(fileName: string, entries: readonly unknown[], issue: FieldIssue): string {
  const parts = [fileName];
  let rest = issue.path;
  const [first, index] = rest;
  if (first === "sources" && typeof index === "number") {
    const name = activityNameOf(entries[index]);
    // Names with line breaks or other control characters are quoted, to keep one line per problem.
    const shown =
      name === undefined ? "" : /^[\x20-\x7e]+$/.test(name) ? ` (${name})` : ` (${JSON.stringify(name)})`;
    parts.push(`sources[${index}]${shown}`);
    rest = rest.slice(2);
  }
  if (rest.length > 0)
    parts.push(rest.map((step) => (typeof step === "number" ? `[${step}]` : String(step))).join("."));
  parts.push(issue.message);
  return parts.join(": ");
}
