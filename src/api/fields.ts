/**
 * The fields a source has in every form (local-mode file, poller environment, StepFunctionSource spec),
 * as reusable zod schemas, plus the plumbing that turns zod's issues into one-line messages.
 *
 * The schemas stay free of transforms: the CRD's OpenAPI schema is generated from them, and JSON Schema
 * can express types, patterns, bounds and defaults but not conversions. Checks JSON Schema cannot express
 * (a duration's range in milliseconds, URL parsing) are refinements, which the generator leaves out and the
 * API server then does not enforce; whoever reads a spec must therefore still parse it with these schemas.
 * Conversions (duration strings to milliseconds) happen afterwards, in resolveSourceLimits.
 *
 * Every message is written to read after "field: ", e.g. `maxConcurrency: must be at most 1000, got 5000`.
 */
import { z } from "zod";
import {
  ACTIVITY_NAME_PATTERN,
  ACTIVITY_NAME_RE2_PATTERN,
  AWS_LIMITS,
  DEFAULT_CONCURRENCY_PER_POLLER,
  DEFAULT_HEARTBEAT_INTERVAL,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_REQUEST_TIMEOUT,
  MAX_CONCURRENCY_PER_POLLER,
  MAX_HEARTBEAT_INTERVAL_MS,
  MAX_MAX_CONCURRENCY,
  MAX_REQUEST_TIMEOUT_MS,
  MIN_HEARTBEAT_INTERVAL_MS,
  MIN_REQUEST_TIMEOUT_MS,
} from "./defaults.ts";
import { DURATION_REGEX, DurationError, formatDuration, parseDuration } from "./duration.ts";
import type { PollerSettings } from "./types.ts";

/**
 * A configuration that cannot be used, with every problem found (not just the first), one line each, so a
 * user fixes them all in one round. Shared by the local-mode file and the poller's environment.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** One self-contained line per problem; the message is these lines joined. */
  readonly issues: string[];

  constructor(issues: string[]) {
    super(issues.join("\n"));
    this.issues = issues;
  }
}

/** A problem with one field, before it is labelled for its form (file path or variable name). */
export interface FieldIssue {
  /** Where the field is, from the root of what was parsed: `["sources", 1, "maxConcurrency"]`. */
  path: PropertyKey[];
  /** What is wrong, written to follow "field: ". */
  message: string;
}

/** A value as a user wrote it, for the "got ..." part of a message; YAML words for YAML shapes. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    // Long values would drown the line; the start is enough to recognise them.
    const shown = value.length > 100 ? `${value.slice(0, 100)}...` : value;
    return JSON.stringify(shown);
  }
  return String(value);
}

/** Error function for a wrong type: "is required" when absent, else what was expected and what came. */
function typeError(expected: string): (issue: { input?: unknown }) => string {
  return (issue) =>
    issue.input === undefined ? "is required" : `must be ${expected}, got ${describeValue(issue.input)}`;
}

const EXPECTED_TYPE: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
};

/**
 * Per-parse error map for the issues a field schema leaves to its container (missing keys, mappings
 * and lists of the wrong type, empty lists). Pass it as `schema.safeParse(data, { error: containerErrors })`.
 */
export function containerErrors(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === "invalid_type") {
    return typeError(EXPECTED_TYPE[issue.expected] ?? `of type ${issue.expected}`)(issue);
  }
  if (issue.code === "too_small" && issue.origin === "array") return "must not be empty";
  return undefined;
}

/** Integer field with bounds and a default: maxConcurrency, concurrencyPerPoller. */
function boundedInteger(min: number, max: number, fallback: number) {
  return z
    .number({ error: typeError("a whole number") })
    .int({ error: (issue) => `must be a whole number, got ${describeValue(issue.input)}`, abort: true })
    .min(min, { error: (issue) => `must be at least ${min}, got ${describeValue(issue.input)}` })
    .max(max, { error: (issue) => `must be at most ${max}, got ${describeValue(issue.input)}` })
    .default(fallback);
}

/** Milliseconds of a duration string; Infinity when it cannot be parsed, so that a "max" check fails. */
function millisOrInfinity(text: string): number {
  try {
    return parseDuration(text);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** Why `value` is not a duration, in parseDuration's words. */
function durationProblem(value: unknown): string {
  try {
    parseDuration(String(value));
    return `must be a duration, got ${describeValue(value)}`;
  } catch (error) {
    if (error instanceof DurationError) return error.message;
    throw error;
  }
}

/** A bare number is the likeliest wrong type for a duration: say that it needs a unit. */
function durationTypeError(issue: { input?: unknown }): string {
  const message = typeError('a duration string such as "30s" or "5m"')(issue);
  return typeof issue.input === "number" ? `${message} (a number needs a unit)` : message;
}

/**
 * Duration-string field with bounds in milliseconds and a default: requestTimeout, heartbeatInterval. The
 * pattern is what the CRD's schema will carry; the range is checked here on the parsed milliseconds.
 */
function boundedDuration(minMs: number, maxMs: number, fallback: string) {
  return z
    .string({ error: durationTypeError })
    .regex(DURATION_REGEX, { error: (issue) => durationProblem(issue.input), abort: true })
    .refine((text) => millisOrInfinity(text) >= minMs, {
      error: (issue) => `must be at least ${formatDuration(minMs)}, got ${describeValue(issue.input)}`,
      abort: true,
    })
    .refine((text) => millisOrInfinity(text) <= maxMs, {
      error: (issue) => `must be at most ${formatDuration(maxMs)}, got ${describeValue(issue.input)}`,
    })
    .default(fallback);
}

/** The characters of `name` that ACTIVITY_NAME_PATTERN refuses, quoted and without repeats. */
function refusedCharacters(name: string): string[] {
  const refused = new Set<string>();
  for (const char of name) {
    // A character is refused exactly when a one-character name made of it does not match the pattern.
    if (!ACTIVITY_NAME_PATTERN.test(char)) refused.add(JSON.stringify(char));
  }
  return [...refused];
}

/** Step Functions activity name: 1-80 characters, none of those AWS refuses in resource names. */
export const activityNameSchema = z
  .string({ error: typeError("a string") })
  .min(1, { error: "must not be empty", abort: true })
  .max(AWS_LIMITS.activityNameLength, {
    error: (issue) =>
      `must be at most ${AWS_LIMITS.activityNameLength} characters, got ${String(issue.input).length}`,
    abort: true,
  })
  .regex(ACTIVITY_NAME_PATTERN, {
    error: (issue) =>
      `must not contain ${refusedCharacters(String(issue.input)).join(", ")} (AWS refuses white space, ` +
      '< > { } [ ], wildcards ? *, control characters and " # % \\ ^ | ~ ` $ & , ; : /), ' +
      `got ${describeValue(issue.input)}`,
  })
  // What the CRD's schema carries: the same set of names in a spelling Go's RE2 reads the same way.
  .meta({ pattern: ACTIVITY_NAME_RE2_PATTERN });

/** Tasks in flight at once across every poller of a source. */
export const maxConcurrencySchema = boundedInteger(1, MAX_MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY);

/** Concurrent task loops in one poller process. */
export const concurrencyPerPollerSchema = boundedInteger(
  1,
  MAX_CONCURRENCY_PER_POLLER,
  DEFAULT_CONCURRENCY_PER_POLLER,
);

/** How long one task's HTTP call may take, as a duration string. */
export const requestTimeoutSchema = boundedDuration(
  MIN_REQUEST_TIMEOUT_MS,
  MAX_REQUEST_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT,
);

/** How often SendTaskHeartbeat is sent while a task is in flight, as a duration string. */
export const heartbeatIntervalSchema = boundedDuration(
  MIN_HEARTBEAT_INTERVAL_MS,
  MAX_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_INTERVAL,
);

/**
 * AWS region name. Only the shape is checked (lowercase letters, digits, hyphens), not a list of regions,
 * so that new regions and emulators' made-up regions keep working.
 */
export const regionSchema = z
  .string({ error: typeError('a region name such as "us-east-1"') })
  .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, {
    error: (issue) =>
      `must be an AWS region name such as "us-east-1" (lowercase letters, digits and hyphens), ` +
      `got ${describeValue(issue.input)}`,
  });

/** The fields every form of a source shares, to spread into each form's object schema. */
export const sourceFieldSchemas = {
  activityName: activityNameSchema,
  maxConcurrency: maxConcurrencySchema,
  concurrencyPerPoller: concurrencyPerPollerSchema,
  requestTimeout: requestTimeoutSchema,
  heartbeatInterval: heartbeatIntervalSchema,
};

/** Parse `text` as a URL, or undefined when it is not one. */
function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/**
 * Base URL of an HTTP service (local file `target`, SFN_TARGET_URL). No query or fragment: the request
 * path is appended to it, which would land after them.
 */
export const httpBaseUrlSchema = z
  .string({ error: typeError('a URL such as "http://127.0.0.1:8080"') })
  .superRefine((text, ctx) => {
    const url = parseUrl(text);
    if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
      ctx.addIssue({
        code: "custom",
        message: `must be an http:// or https:// URL such as "http://127.0.0.1:8080", got ${describeValue(text)}`,
      });
    } else if (url.search !== "" || url.hash !== "" || /[?#]/.test(text)) {
      ctx.addIssue({
        code: "custom",
        message: `must be a base URL without a query or fragment (the path is appended to it), got ${describeValue(text)}`,
      });
    }
  });

/**
 * requestPathSchema's pattern for Go's RE2 (CRD schemas): the same paths as `/^\/\S*$/` in JavaScript,
 * whose `\S` excludes Unicode's white space where Go's excludes ASCII's only (see ACTIVITY_NAME_RE2_PATTERN).
 */
export const REQUEST_PATH_RE2_PATTERN = "^/[^\\p{Z}\\x{FEFF}\\x09-\\x0d]*$";

/** Request path tasks are POSTed to, relative to the target: starts with "/", no white space. */
export const requestPathSchema = z
  .string({ error: typeError('a path such as "/step/sum"') })
  .regex(/^\/\S*$/, {
    error: (issue) =>
      `must be a path that starts with "/" and has no spaces, got ${describeValue(issue.input)}`,
  })
  .meta({ pattern: REQUEST_PATH_RE2_PATTERN });

/**
 * URL schemes that choose Redis Cluster mode (the `+cluster` suffix, TLS or not). A scheme rather than
 * a query parameter: the mode changes which client is used and what the rest of the URL means (a seed
 * node, database 0 only), so it belongs where a reader looks first, and `redis+cluster` is a valid
 * RFC 3986 scheme that `new URL` parses like `redis:`.
 */
export const REDIS_CLUSTER_PROTOCOLS: readonly string[] = ["redis+cluster:", "rediss+cluster:"];
const REDIS_PROTOCOLS: readonly string[] = ["redis:", "rediss:", ...REDIS_CLUSTER_PROTOCOLS];

/** Whether a (valid) Redis URL chooses cluster mode by its scheme. */
export function isRedisClusterUrl(text: string): boolean {
  const url = parseUrl(text);
  return url !== undefined && REDIS_CLUSTER_PROTOCOLS.includes(url.protocol);
}

/**
 * Whether a Redis URL carries a password: in its user info, or as `?password=`, which ioredis reads
 * too. Such a URL must not reach a plain environment or a log as it is.
 */
export function redisUrlHasPassword(url: URL): boolean {
  return url.password !== "" || url.searchParams.has("password");
}

/** Redis connection URL for the distributed semaphore. */
export const redisUrlSchema = z
  .string({ error: typeError('a URL such as "redis://127.0.0.1:6379"') })
  .superRefine((text, ctx) => {
    const url = parseUrl(text);
    if (url !== undefined && url.hostname !== "" && REDIS_PROTOCOLS.includes(url.protocol)) return;
    // A scheme that tries to say "cluster" in another spelling: name the ones that work.
    const message =
      url !== undefined && /cluster/i.test(url.protocol)
        ? `must be a redis+cluster:// or rediss+cluster:// URL for Redis Cluster, such as "redis+cluster://127.0.0.1:7000", got ${describeValue(text)}`
        : `must be a redis:// or rediss:// URL such as "redis://127.0.0.1:6379", got ${describeValue(text)}`;
    ctx.addIssue({ code: "custom", message });
  });

/** The numeric parts of PollerSettings, which resolveSourceLimits derives from the shared fields. */
export type SourceLimits = Pick<
  PollerSettings,
  "maxConcurrency" | "concurrencyPerPoller" | "requestTimeoutMs" | "heartbeatIntervalMs"
>;

/** The shared numeric fields as a form holds them once parsed (defaults applied, durations as text). */
export interface SourceLimitFields {
  maxConcurrency: number;
  concurrencyPerPoller: number;
  requestTimeout: string;
  heartbeatInterval: string;
}

/**
 * The rule between the two concurrency fields, on its own so that a form can check it even while other
 * fields of the same source are invalid (all problems at once): a poller can never use more loops than
 * the source has permits, so concurrencyPerPoller must not exceed maxConcurrency.
 */
export function concurrencyIssues(
  fields: Pick<SourceLimitFields, "maxConcurrency" | "concurrencyPerPoller">,
  nameOf: (field: keyof SourceLimitFields) => string = (field) => field,
): FieldIssue[] {
  if (fields.concurrencyPerPoller <= fields.maxConcurrency) return [];
  return [
    {
      path: ["concurrencyPerPoller"],
      message:
        `must not exceed ${nameOf("maxConcurrency")} (${fields.maxConcurrency}), ` +
        `got ${fields.concurrencyPerPoller}`,
    },
  ];
}

/** Either a value or every problem that prevented it. */
export type Resolved<T> = { ok: true; value: T } | { ok: false; issues: FieldIssue[] };

/**
 * Turn the shared fields into milliseconds and check the rules that span fields (concurrencyIssues).
 * `nameOf` renames fields in messages (the poller's environment speaks of variables, not fields).
 */
export function resolveSourceLimits(
  fields: SourceLimitFields,
  nameOf: (field: keyof SourceLimitFields) => string = (field) => field,
): Resolved<SourceLimits> {
  const issues: FieldIssue[] = [];
  const millis = (field: "requestTimeout" | "heartbeatInterval"): number => {
    try {
      return parseDuration(fields[field]);
    } catch (error) {
      if (!(error instanceof DurationError)) throw error;
      issues.push({ path: [field], message: error.message });
      return Number.NaN;
    }
  };
  const requestTimeoutMs = millis("requestTimeout");
  const heartbeatIntervalMs = millis("heartbeatInterval");
  issues.push(...concurrencyIssues(fields, nameOf));
  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    value: {
      maxConcurrency: fields.maxConcurrency,
      concurrencyPerPoller: fields.concurrencyPerPoller,
      requestTimeoutMs,
      heartbeatIntervalMs,
    },
  };
}

/** Edit distance between two strings (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The known key `key` is most likely a misspelling of, if any is close enough: same letters in another
 * case, or a few typos away (at most a quarter of the key's length, and at least 2).
 */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** The object schema found by following `path` from `schema` (through lists, defaults, optionals). */
function objectAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject | undefined {
  let current: z.ZodType | undefined = schema;
  for (let index = 0; current !== undefined; ) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodDefault) {
      current = current.unwrap() as z.ZodType;
      continue;
    }
    if (index === path.length) return current instanceof z.ZodObject ? current : undefined;
    const step = path[index++];
    if (current instanceof z.ZodArray && typeof step === "number") current = current.element as z.ZodType;
    else if (current instanceof z.ZodObject && typeof step === "string") current = current.shape[step];
    else if (current instanceof z.ZodRecord && typeof step === "string")
      current = current.valueType as z.ZodType;
    else return undefined;
  }
  return undefined;
}

/**
 * zod's issues as FieldIssues: one per unknown key (named in the path, with the nearest known key as a
 * suggestion, else the list of known keys), every other issue as it is.
 */
export function fieldIssues(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): FieldIssue[] {
  const result: FieldIssue[] = [];
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") {
      result.push({ path: issue.path, message: issue.message });
      continue;
    }
    const known = Object.keys(objectAt(schema, issue.path)?.shape ?? {});
    for (const key of issue.keys) {
      const suggestion = suggestKey(key, known);
      let message = "unknown key";
      if (suggestion !== undefined) message += ` (did you mean "${suggestion}"?)`;
      else if (known.length > 0) message += ` (known keys: ${known.join(", ")})`;
      result.push({ path: [...issue.path, key], message });
    }
  }
  return result;
}

/**
 * Headers a configuration cannot set. The poller sets these on every call itself: `content-type` and
 * `content-length` describe the body it sends, `host` follows the target URL, and the `step-func-*`
 * headers carry the task's id, deadline and activity (a target must be able to trust them).
 * `accept-encoding`: the answer is read uncompressed (a compressed one would be reported as invalid
 * output). The rest are hop-by-hop or framing headers that would break the connection's handling.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "content-length",
  "host",
  "accept-encoding",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
]);
export const RESERVED_HEADER_PREFIX = "step-func-";

/** RFC 9110 field name: a token. The source reads the same in Go's RE2 (CRD schemas). */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Whether `name` is a valid header name (a token); reserved names are valid names. */
export function isHeaderName(name: string): boolean {
  return HEADER_NAME.test(name);
}

/** Environment variable names as shells and Kubernetes accept them without quoting. */
export const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why `name` cannot be a configured header, if it cannot. Written to follow "<name>: ". */
export function headerNameProblem(name: string): string | undefined {
  if (!HEADER_NAME.test(name)) {
    return "is not a valid header name (letters, digits and ! # $ % & ' * + - . ^ _ ` | ~ only)";
  }
  const lower = name.toLowerCase();
  if (lower.startsWith(RESERVED_HEADER_PREFIX)) {
    return "cannot be set by configuration: step-func-* headers are set by the poller (task id, deadline, activity ARN)";
  }
  if (RESERVED_HEADERS.has(lower)) return "cannot be set by configuration: the poller sets it";
  return undefined;
}

const CONTROL_NAMES: Record<string, string> = {
  "\r": "a carriage return (CR)",
  "\n": "a line feed (LF)",
  "\0": "NUL",
};

/**
 * Why `value` cannot be sent as a header value, if it cannot. Never quotes the value (it may be a
 * secret): it names the character and where it is. Characters outside ASCII are fine (sent as UTF-8).
 */
export function headerValueProblem(value: string): string | undefined {
  // Tab is the one control character a header value may hold (RFC 9110 field-vchar / OWS).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
  const index = value.search(/[\u0000-\u0008\u000a-\u001f\u007f]/);
  if (index < 0) return undefined;
  const char = value.charAt(index);
  const what =
    CONTROL_NAMES[char] ??
    `the control character U+${char.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  const where = index === value.length - 1 ? "ends with" : "contains";
  const hint =
    index === value.length - 1 && char === "\n"
      ? " (a trailing newline from the file a Secret was made from?)"
      : "";
  return `${where} ${what}; header values must not contain CR, LF, NUL or other control characters${hint}`;
}

/**
 * One configured header before its value is known: a literal, or the name of a variable that holds it
 * (`valueFromEnv` wins when a caller gives both; headerSourceSchema refuses that).
 */
export interface HeaderSource {
  value?: string | undefined;
  valueFromEnv?: string | undefined;
}

/**
 * A header's value from local mode's file: exactly one of `value` (a literal) and `valueFromEnv` (the
 * name of an environment variable, so that secrets stay out of the file). Messages never quote the
 * value given.
 */
export const headerSourceSchema = z
  .strictObject(
    {
      value: z
        .string({
          error: (issue) => (issue.input === undefined ? "is required" : "must be a string (quote it)"),
        })
        .optional(),
      valueFromEnv: z
        .string({ error: typeError("the name of an environment variable") })
        .regex(ENV_VAR_NAME, {
          error: (issue) =>
            `must be an environment variable name (letters, digits, _), got ${describeValue(issue.input)}`,
        })
        .optional(),
    },
    { error: () => "must be a mapping with `value: <text>` or `valueFromEnv: <VARIABLE>`" },
  )
  .superRefine((source, ctx) => {
    const given = Number(source.value !== undefined) + Number(source.valueFromEnv !== undefined);
    if (given !== 1) {
      ctx.addIssue({
        code: "custom",
        message:
          given === 0
            ? "must have `value: <text>` or `valueFromEnv: <VARIABLE>`"
            : "must have only one of `value` and `valueFromEnv`",
      });
    }
  });

/** Local mode's `headers:` of a source: header name to where its value comes from. */
export const targetHeadersSchema = z.record(z.string(), headerSourceSchema, {
  error: (issue) =>
    issue.input === undefined
      ? "is required"
      : `must be a mapping of header names, got ${describeValue(issue.input)}`,
});

/**
 * Resolves configured headers: checks every name (token, not reserved, no duplicate in another
 * case), reads every `valueFromEnv` variable (it must be set and not empty) and checks every value.
 * Issues have the header's name as their path, so a form can place them (`headers.Authorization`,
 * `SFN_TARGET_HEADERS: Authorization`).
 */
export function resolveTargetHeaders(
  headers: ReadonlyArray<readonly [string, HeaderSource]>,
  env: NodeJS.ProcessEnv,
): Resolved<Record<string, string>> {
  const issues: FieldIssue[] = [];
  const value: Record<string, string> = {};
  const seen = new Map<string, string>();
  for (const [name, source] of headers) {
    const problem = headerNameProblem(name);
    if (problem !== undefined) issues.push({ path: [name], message: problem });
    const first = seen.get(name.toLowerCase());
    if (first !== undefined) {
      issues.push({ path: [name], message: `is given twice (as "${first}" too; header names ignore case)` });
    }
    seen.set(name.toLowerCase(), first ?? name);
    let text: string;
    let origin = "value";
    const variable = source.valueFromEnv;
    if (variable !== undefined) {
      origin = `the value of ${variable}`;
      const fromEnv = env[variable];
      if (fromEnv === undefined || fromEnv === "") {
        issues.push({
          path: [name],
          message: `environment variable ${variable} ${fromEnv === undefined ? "is not set" : "is empty"}`,
        });
        continue;
      }
      text = fromEnv;
    } else {
      text = source.value ?? "";
    }
    const valueProblem = headerValueProblem(text);
    if (valueProblem !== undefined) issues.push({ path: [name], message: `${origin} ${valueProblem}` });
    else if (problem === undefined) value[name] = text;
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value };
}
