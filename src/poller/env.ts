/**
 * Configuration of `sfn-operator poller` from environment variables: one poller for one source. The
 * operator sets these variables on the poller Deployment; a person can set them to run a poller by hand.
 *
 * Values go through the same field schemas as the local-mode file (src/api/fields.ts), so limits,
 * defaults and messages are the same in both. An empty variable counts as unset: Kubernetes and shells
 * both make empty values easily, and "set to nothing" never means anything else here.
 */
import { hostname } from "node:os";
import { z } from "zod";
import {
  AWS_LIMITS,
  DEFAULT_CONCURRENCY_PER_POLLER,
  DEFAULT_HEARTBEAT_INTERVAL,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_REQUEST_TIMEOUT,
} from "../api/defaults.ts";
import {
  activityNameSchema,
  ConfigError,
  concurrencyIssues,
  containerErrors,
  describeValue,
  ENV_VAR_NAME,
  type FieldIssue,
  type HeaderSource,
  httpBaseUrlSchema,
  isHeaderName,
  redisUrlSchema,
  requestPathSchema,
  resolveSourceLimits,
  resolveTargetHeaders,
  sourceFieldSchemas,
  suggestKey,
} from "../api/fields.ts";
import { joinTargetUrl, type PollerSettings } from "../api/types.ts";
import { redisSettingsFromEnv } from "../semaphore/redis/settings.ts";

export { ConfigError };

/** The poller's configuration, resolved. */
export interface PollerEnvConfig {
  settings: PollerSettings;
  /** Redis for the distributed semaphore, when given. */
  redisUrl?: string;
  /**
   * SFN_LIMIT_FROM_REDIS=true (the operator's pollers): the limit is the one the operator writes to
   * Redis (src/semaphore/redis/source-state.ts), followed while the poller runs, and the poller
   * publishes its task figures there. `settings.maxConcurrency` is then 0, "none known from the
   * environment", and is not used: no task is taken until Redis holds a limit.
   */
  limitFromRedis?: true;
  /** Sent to AWS as GetActivityTask's workerName (at most 80 characters). */
  workerName: string;
  /**
   * Problems that do not stop the poller: variables with our prefix that we do not know, most likely
   * misspellings whose intended setting is silently at its default. The caller logs them.
   */
  warnings: string[];
}

/** One environment variable the poller reads, for the README table and for messages. */
export interface PollerEnvVar {
  name: string;
  /** True when the poller refuses to start without it. */
  required: boolean;
  description: string;
  /** What applies when the variable is unset, in words. */
  default?: string;
}

/** The variable names, by the field they set; POLLER_ENV_VARS documents each. */
const VAR = {
  activityName: "SFN_ACTIVITY_NAME",
  activityArn: "SFN_ACTIVITY_ARN",
  sourceName: "SFN_SOURCE_NAME",
  targetUrl: "SFN_TARGET_URL",
  targetPath: "SFN_TARGET_PATH",
  targetHeaders: "SFN_TARGET_HEADERS",
  maxConcurrency: "SFN_MAX_CONCURRENCY",
  concurrencyPerPoller: "SFN_CONCURRENCY_PER_POLLER",
  requestTimeout: "SFN_REQUEST_TIMEOUT",
  heartbeatInterval: "SFN_HEARTBEAT_INTERVAL",
  redisUrl: "SFN_REDIS_URL",
  limitFromRedis: "SFN_LIMIT_FROM_REDIS",
  workerName: "SFN_WORKER_NAME",
} as const;

type Field = keyof typeof VAR;

/** Fields in the order their problems are listed. */
const FIELDS = Object.keys(VAR) as Field[];

/** Every variable the poller reads: the single source of truth for their documentation. */
export const POLLER_ENV_VARS: readonly PollerEnvVar[] = [
  {
    name: VAR.activityName,
    required: false,
    description: `Step Functions activity name; required unless ${VAR.activityArn} is set.`,
    default: `the name in ${VAR.activityArn}`,
  },
  {
    name: VAR.activityArn,
    required: false,
    description:
      "Activity ARN (`arn:<partition>:states:<region>:<account>:activity:<name>`); when set the poller " +
      "does not call CreateActivity.",
    default: "resolved from the name with CreateActivity",
  },
  {
    name: VAR.sourceName,
    required: false,
    description: "Name used in logs and metric labels (`namespace/name` when the operator runs the poller).",
    default: "the activity name",
  },
  {
    name: VAR.targetUrl,
    required: true,
    description: "Base URL (http:// or https://) of the service that receives the tasks.",
  },
  {
    name: VAR.targetPath,
    required: true,
    description: "Request path (starting with `/`) the task input is POSTed to, appended to the base URL.",
  },
  {
    name: VAR.targetHeaders,
    required: false,
    description:
      "Headers sent with every target request, as `Name=VARIABLE` pairs separated by commas " +
      "(`Authorization=API_TOKEN,X-Team=TEAM`): each value is read from the named variable, e.g. one " +
      "set from a Secret with `valueFrom.secretKeyRef`. Values are never logged.",
    default: "none",
  },
  {
    name: VAR.maxConcurrency,
    required: false,
    description: `Tasks in flight at once across all pollers of the source (1-1000); must be unset with ${VAR.limitFromRedis}=true.`,
    default: String(DEFAULT_MAX_CONCURRENCY),
  },
  {
    name: VAR.concurrencyPerPoller,
    required: false,
    description:
      `Concurrent task loops in this poller (1-1000, at most ${VAR.maxConcurrency}; with ` +
      `${VAR.limitFromRedis}=true any number: loops beyond the live limit wait for a permit).`,
    default: String(DEFAULT_CONCURRENCY_PER_POLLER),
  },
  {
    name: VAR.requestTimeout,
    required: false,
    description: 'How long one task\'s HTTP call may take (duration such as "30s", "5m"; 100ms-24h).',
    default: DEFAULT_REQUEST_TIMEOUT,
  },
  {
    name: VAR.heartbeatInterval,
    required: false,
    description: "How often SendTaskHeartbeat is sent while a task is in flight (duration; 1s-1h).",
    default: DEFAULT_HEARTBEAT_INTERVAL,
  },
  {
    name: VAR.redisUrl,
    required: false,
    description:
      "redis:// or rediss:// URL of the Redis that holds the source's distributed semaphore; " +
      "redis+cluster:// or rediss+cluster:// for a Redis Cluster (see SFN_REDIS_CLUSTER).",
    default: "none: the limit then holds within this process only",
  },
  {
    name: VAR.limitFromRedis,
    required: false,
    description:
      `\`true\` (the operator sets it): the limit is read from Redis, where the operator writes the ` +
      "source's maxConcurrency, and followed while the poller runs (a change needs no restart); while " +
      "Redis holds none (a new source, or Redis lost its data) the poller takes no task and /readyz " +
      "says why. The poller also publishes its task figures there for the source's status. Requires " +
      `${VAR.redisUrl}; ${VAR.maxConcurrency} must then be unset.`,
    default: "false: the limit is SFN_MAX_CONCURRENCY",
  },
  {
    name: VAR.workerName,
    required: false,
    description: "workerName sent to AWS with GetActivityTask (truncated to 80 characters).",
    default: "`POD_NAME`, else the host name",
  },
];

/** `arn:<partition>:states:<region>:<account>:activity:<name>`; the name is checked on its own. */
const ACTIVITY_ARN = /^arn:[a-z][a-z0-9-]*:states:[a-z0-9]+(?:-[a-z0-9]+)*:[0-9]{12}:activity:(?<name>.*)$/;

const activityArnSchema = z.string().regex(ACTIVITY_ARN, {
  error: (issue) =>
    `must be an activity ARN such as "arn:aws:states:us-east-1:123456789012:activity:sum", ` +
    `got ${describeValue(issue.input)}`,
});

/** Every field as read from the environment; defaults are the shared ones. */
const envSchema = z.object({
  activityName: activityNameSchema.optional(),
  activityArn: activityArnSchema.optional(),
  sourceName: z.string().optional(),
  targetUrl: httpBaseUrlSchema,
  targetPath: requestPathSchema,
  targetHeaders: z.string().optional(),
  maxConcurrency: sourceFieldSchemas.maxConcurrency,
  concurrencyPerPoller: sourceFieldSchemas.concurrencyPerPoller,
  requestTimeout: sourceFieldSchemas.requestTimeout,
  heartbeatInterval: sourceFieldSchemas.heartbeatInterval,
  redisUrl: redisUrlSchema.optional(),
  workerName: z.string().optional(),
});

/** SFN_LIMIT_FROM_REDIS: true or false in any case (as SFN_REDIS_CLUSTER). */
const booleanSchema = z.string().regex(/^(true|false)$/i, {
  error: (issue) => `must be true or false, got ${describeValue(issue.input)}`,
});

/** The two concurrency fields alone, to check the rule between them whatever the other variables hold. */
const concurrencySchema = z.object({
  maxConcurrency: sourceFieldSchemas.maxConcurrency,
  concurrencyPerPoller: sourceFieldSchemas.concurrencyPerPoller,
});

/** Numeric variables become numbers when they look like one, so the schema says "at most 1000, got 5000". */
function numberOrText(text: string | undefined): number | string | undefined {
  return text !== undefined && /^[+-]?[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : text;
}

/** Truncate to `limit` characters (code points, so a surrogate pair is never cut in half). */
function truncate(text: string, limit: number): string {
  const chars = Array.from(text);
  return chars.length > limit ? chars.slice(0, limit).join("") : text;
}

/**
 * Read the poller's configuration from `env` (normally process.env). Throws ConfigError listing every
 * bad or missing variable by name, e.g. `SFN_MAX_CONCURRENCY: must be at most 1000, got 5000`.
 */
export function pollerConfigFromEnv(env: NodeJS.ProcessEnv): PollerEnvConfig {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };
  const raw = {
    activityName: read(VAR.activityName),
    activityArn: read(VAR.activityArn),
    sourceName: read(VAR.sourceName),
    targetUrl: read(VAR.targetUrl),
    targetPath: read(VAR.targetPath),
    targetHeaders: read(VAR.targetHeaders),
    maxConcurrency: numberOrText(read(VAR.maxConcurrency)),
    concurrencyPerPoller: numberOrText(read(VAR.concurrencyPerPoller)),
    requestTimeout: read(VAR.requestTimeout),
    heartbeatInterval: read(VAR.heartbeatInterval),
    redisUrl: read(VAR.redisUrl),
    workerName: read(VAR.workerName),
  };
  const limitFromRedisText = read(VAR.limitFromRedis);
  const parsed = envSchema.safeParse(raw, { error: containerErrors });
  const issues: FieldIssue[] = parsed.success
    ? []
    : parsed.error.issues.map(({ path, message }) => ({ path, message }));

  // The activity: from SFN_ACTIVITY_NAME, else from the ARN's last segment; both must agree when both given.
  const arnName =
    raw.activityArn !== undefined ? ACTIVITY_ARN.exec(raw.activityArn)?.groups?.name : undefined;
  if (arnName !== undefined && raw.activityName === undefined) {
    const checked = activityNameSchema.safeParse(arnName);
    if (!checked.success) {
      issues.push({ path: ["activityArn"], message: `activity name ${checked.error.issues[0]?.message}` });
    }
  }
  if (raw.activityName === undefined && raw.activityArn === undefined) {
    issues.push({ path: ["activityName"], message: `is required unless ${VAR.activityArn} is set` });
  }
  if (raw.activityName !== undefined && arnName !== undefined && raw.activityName !== arnName) {
    issues.push({
      path: ["activityName"],
      message: `must match the name in ${VAR.activityArn} (${JSON.stringify(arnName)}), got ${describeValue(raw.activityName)}`,
    });
  }
  // The limit from Redis: then no SFN_MAX_CONCURRENCY, and no rule between it and the loops (a live
  // limit below them leaves the loops beyond it waiting for a permit).
  const limitFromRedisParsed =
    limitFromRedisText === undefined ? undefined : booleanSchema.safeParse(limitFromRedisText);
  if (limitFromRedisParsed?.success === false) {
    issues.push({ path: ["limitFromRedis"], message: limitFromRedisParsed.error.issues[0]?.message ?? "" });
  }
  const limitFromRedis = limitFromRedisParsed?.success === true && /^true$/i.test(limitFromRedisParsed.data);
  if (limitFromRedis && raw.maxConcurrency !== undefined) {
    issues.push({
      path: ["maxConcurrency"],
      message: `must not be set with ${VAR.limitFromRedis}=true: the limit is read from Redis (the operator writes it there)`,
    });
  }
  if (limitFromRedis && raw.redisUrl === undefined) {
    issues.push({
      path: ["limitFromRedis"],
      message: `requires ${VAR.redisUrl}: the limit is read from that Redis`,
    });
  }

  // The rule between the concurrency variables, checked even when other variables are bad.
  const concurrency = concurrencySchema.safeParse(raw);
  if (concurrency.success && !limitFromRedis) issues.push(...concurrencyIssues(concurrency.data, nameOf));

  // The headers: every pair's name and variable checked, every variable read, whatever else is wrong.
  const headerPairs = parseHeaderPairs(raw.targetHeaders);
  issues.push(...headerPairs.issues);
  const headers = resolveTargetHeaders(headerPairs.pairs, env);
  if (!headers.ok) {
    issues.push(
      ...headers.issues.map((issue) => ({
        path: ["targetHeaders"],
        message: `${String(issue.path[0])}: ${issue.message}`,
      })),
    );
  }

  // The Redis variables beyond the URL (cluster mode, Sentinels, lease TTL), with the URL they go with.
  const redisUrl = raw.redisUrl !== undefined ? redisUrlSchema.safeParse(raw.redisUrl) : undefined;
  if (redisUrl?.success) {
    for (const { setting, message } of redisSettingsFromEnv(redisUrl.data, env, VAR.redisUrl).problems) {
      issues.push({ path: [setting === VAR.redisUrl ? "redisUrl" : setting], message });
    }
  }

  const activityName = raw.activityName ?? arnName;
  // With the limit from Redis there is no limit here to check the loops against.
  const limits = parsed.success
    ? resolveSourceLimits(
        limitFromRedis
          ? {
              ...parsed.data,
              maxConcurrency: Math.max(parsed.data.maxConcurrency, parsed.data.concurrencyPerPoller),
            }
          : parsed.data,
        nameOf,
      )
    : undefined;
  if (limits !== undefined && !limits.ok) issues.push(...limits.issues);
  if (issues.length > 0 || !parsed.success || !limits?.ok || !headers.ok || activityName === undefined) {
    // Variables that are not fields of this module (the Redis ones) go right after SFN_REDIS_URL.
    const order = (issue: FieldIssue): number => {
      const index = FIELDS.indexOf(issue.path[0] as Field);
      return index >= 0 ? index : FIELDS.indexOf("redisUrl") + 0.5;
    };
    const lines = issues
      .toSorted((a, b) => order(a) - order(b))
      .map((issue) => `${nameOf(issue.path[0])}: ${issue.message}`);
    // The concurrency rule is checked twice (alone, and by resolveSourceLimits): say it once.
    throw new ConfigError([...new Set(lines)]);
  }
  const data = parsed.data;
  return {
    settings: {
      sourceName: data.sourceName ?? activityName,
      activityName,
      ...(data.activityArn !== undefined && { activityArn: data.activityArn }),
      targetUrl: joinTargetUrl(data.targetUrl, data.targetPath),
      ...limits.value,
      ...(limitFromRedis && { maxConcurrency: 0 }),
      ...(Object.keys(headers.value).length > 0 && { targetHeaders: headers.value }),
    },
    ...(data.redisUrl !== undefined && { redisUrl: data.redisUrl }),
    ...(limitFromRedis && { limitFromRedis: true as const }),
    workerName: truncate(data.workerName ?? read("POD_NAME") ?? hostname(), AWS_LIMITS.workerNameLength),
    warnings: unknownVariables(env, headerPairs.pairs),
  };
}

/**
 * SFN_TARGET_HEADERS split into (header name, variable) pairs: `Authorization=API_TOKEN,X-Team=TEAM`.
 * White space around items, names and variables is ignored, and so are empty items (a trailing
 * comma). Only references are allowed, never literal values: a value in this variable would sit in
 * the Deployment's plain environment, where a Secret's value must not be.
 */
function parseHeaderPairs(text: string | undefined): {
  pairs: Array<[string, HeaderSource]>;
  issues: FieldIssue[];
} {
  const pairs: Array<[string, HeaderSource]> = [];
  const issues: FieldIssue[] = [];
  const items = (text ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  // Messages quote header names only once they are known to be names: an item that is not one may
  // well be a secret pasted in place of a variable name.
  items.forEach((item, index) => {
    const equals = item.indexOf("=");
    const name = item.slice(0, Math.max(equals, 0)).trim();
    const variable = item.slice(equals + 1).trim();
    const problem = (message: string): void => {
      issues.push({ path: ["targetHeaders"], message });
    };
    if (equals < 0 || name === "" || variable === "") {
      problem(`item ${index + 1}: must be Header-Name=VARIABLE (the variable that holds the value)`);
    } else if (!isHeaderName(name)) {
      problem(
        `item ${index + 1}: the text before "=" is not a valid header name (letters, digits and ! # $ % & ' * + - . ^ _ \` | ~ only)`,
      );
    } else if (!ENV_VAR_NAME.test(variable)) {
      problem(
        `${name}: the text after "=" is not an environment variable name (letters, digits, _): give the name of the variable that holds the value, not the value`,
      );
    } else {
      pairs.push([name, { valueFromEnv: variable }]);
    }
  });
  return { pairs, issues };
}

/** The variable that sets `field` (a field of envSchema), for messages. */
function nameOf(field: PropertyKey | undefined): string {
  return typeof field === "string" && Object.hasOwn(VAR, field) ? VAR[field as Field] : String(field);
}

/**
 * `SFN_*` variables read elsewhere: by the CLI (main.ts: metrics port, logging) and by the Redis
 * connection (semaphore/factory.ts, semaphore/redis/connection.ts). Documented in the README.
 */
export const OTHER_SFN_VARS = [
  "SFN_METRICS_PORT",
  "SFN_LOG_LEVEL",
  "SFN_LOG_FORMAT",
  "SFN_REDIS_PASSWORD",
  "SFN_REDIS_CLUSTER",
  "SFN_REDIS_SENTINELS",
  "SFN_REDIS_SENTINEL_MASTER",
  "SFN_REDIS_LEASE_TTL",
] as const;

/**
 * Variables with our prefix that the poller does not read, with the nearest known name when close.
 * Variables SFN_TARGET_HEADERS names are read (for header values), so they are not unknown.
 */
function unknownVariables(
  env: NodeJS.ProcessEnv,
  headerPairs: ReadonlyArray<[string, HeaderSource]>,
): string[] {
  const known: string[] = [
    ...POLLER_ENV_VARS.map((variable) => variable.name),
    ...OTHER_SFN_VARS,
    ...headerPairs.flatMap(([, source]) => (source.valueFromEnv !== undefined ? [source.valueFromEnv] : [])),
  ];
  return Object.keys(env)
    .filter((name) => name.startsWith("SFN_") && !known.includes(name))
    .sort()
    .map((name) => {
      const suggestion = suggestKey(name, known);
      return `${name}: unknown variable, ignored${suggestion !== undefined ? ` (did you mean ${suggestion}?)` : ""}`;
    });
}
