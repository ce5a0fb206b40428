/**
 * The StepFunctionSource API (group sfn-operator.dev, version v1alpha1): its spec and status as zod
 * schemas, the types the operator works with, and parseSourceSpec, which checks a spec read from the API.
 *
 * Invariants, because the CRD in crds/ is generated from these schemas (`npm run crds`, src/api/crd.ts):
 * - The fields a source shares with local mode and the poller's environment use the schemas of
 *   src/api/fields.ts, so the three forms can never disagree about a name, a bound or a default.
 * - Every check here is either expressible in the CRD (type, bounds, a pattern Go's RE2 reads the way
 *   JavaScript does, a CEL rule in `x-kubernetes-validations`) or a refinement, which the generator leaves
 *   out. Refinements are what parseSourceSpec adds to what the API server checked (duration ranges,
 *   header names in any case, label keys): whoever reads a spec from the API must parse it with it.
 * - What the API server refuses, parseSourceSpec refuses too (never the other way round), so an object
 *   the API server admitted is judged by the same rules, plus the ones it cannot apply.
 * - Every field has a description written for `kubectl explain`: what it is, its default, an example.
 */
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { z } from "zod";
import {
  MAX_HEARTBEAT_INTERVAL_MS,
  MAX_REQUEST_TIMEOUT_MS,
  MIN_HEARTBEAT_INTERVAL_MS,
  MIN_REQUEST_TIMEOUT_MS,
} from "./defaults.ts";
import { formatDuration } from "./duration.ts";
import {
  concurrencyIssues,
  containerErrors,
  describeValue,
  type FieldIssue,
  fieldIssues,
  HEADER_NAME,
  headerNameProblem,
  RESERVED_HEADER_PREFIX,
  RESERVED_HEADERS,
  type Resolved,
  redisUrlSchema,
  regionSchema,
  requestPathSchema,
  sourceFieldSchemas,
} from "./fields.ts";

export const SFS_GROUP = "sfn-operator.dev";
export const SFS_VERSION = "v1alpha1";
export const SFS_API_VERSION = `${SFS_GROUP}/${SFS_VERSION}` as const;
export const SFS_KIND = "StepFunctionSource";
export const SFS_LIST_KIND = "StepFunctionSourceList";
export const SFS_PLURAL = "stepfunctionsources";
export const SFS_SINGULAR = "stepfunctionsource";
export const SFS_SHORT_NAME = "sfs";
/** The CRD's own name: `<plural>.<group>`. */
export const SFS_CRD_NAME = `${SFS_PLURAL}.${SFS_GROUP}`;

/** The condition types the operator keeps in status, Ready first (the summary of the others). */
export const CONDITION_TYPES = [
  "Ready",
  "ActivityResolved",
  "TargetFound",
  "PollersAvailable",
  "SemaphoreHealthy",
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** At most this many target headers: a CEL rule compares them pairwise, and its cost must be bounded. */
export const MAX_TARGET_HEADERS = 32;
/** Longest header name accepted (header names are short; the bound keeps CEL's cost estimate low). */
export const MAX_HEADER_NAME_LENGTH = 256;

// ---------------------------------------------------------------------------------------------------
// Patterns. Each is read the same way by JavaScript and Go's RE2 (ASCII classes only, no lookarounds),
// so the CRD carries exactly the rule zod applies.

/** DNS-1035 label: Service names. */
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** DNS-1123 subdomain: Secret and ServiceAccount names. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A key of a Secret's data. */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
/**
 * A Service port's name, as Kubernetes checks it (a DNS-1123 label: up to 63 lowercase letters, digits
 * and "-", alphanumeric at both ends), with at least one letter so that it never reads as a number.
 * Written without a lookahead: digits and hyphens before the first letter, then the rest of a label.
 */
const PORT_NAME = /^([0-9][-0-9]*)?[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** A Kubernetes resource quantity ("100m", "96Mi", "1.5"), Kubernetes' own pattern. */
const QUANTITY =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;
/** A label value: empty, or up to 63 characters, alphanumeric at both ends. */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** A label or annotation key: an optional DNS-subdomain prefix and "/", then a name. */
const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** A container image reference: printable ASCII, no spaces (the registry checks the rest). */
const IMAGE = /^[!-~]+$/;
/**
 * A Redis URL's scheme and an authority without a user or password, and no query (ioredis reads a
 * password from `?password=` too): a password in the URL would sit in the pollers' plain environment.
 * redisUrlSchema checks the whole URL.
 */
const REDIS_URL_PREFIX = /^rediss?(\+cluster)?:\/\/[^/@?#]+(\/[^?#]*)?$/;
/** metav1.Condition's `type` and `reason` patterns. */
const CONDITION_TYPE =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/;
const CONDITION_REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

// ---------------------------------------------------------------------------------------------------
// Small schema builders, with messages written to follow "field: " (as in fields.ts).

/** Error function for a wrong type: "is required" when absent, else what was expected and what came. */
function expected(what: string): (issue: { input?: unknown }) => string {
  return (issue) =>
    issue.input === undefined ? "is required" : `must be ${what}, got ${describeValue(issue.input)}`;
}

/** A string of at most `maxLength` characters matching `pattern`, described as `what` in messages. */
function patternString(pattern: RegExp, what: string, maxLength: number) {
  return z
    .string({ error: expected(what) })
    .max(maxLength, {
      error: (issue) => `must be at most ${maxLength} characters, got ${String(issue.input).length}`,
      abort: true,
    })
    .regex(pattern, { error: (issue) => `must be ${what}, got ${describeValue(issue.input)}` });
}

/** A Kubernetes object name (Secret, ServiceAccount): a DNS-1123 subdomain. */
function objectName(kind: string) {
  return patternString(
    DNS1123_SUBDOMAIN,
    `the name of a ${kind} (lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)`,
    253,
  );
}

/** A mapping of strings with keys and values checked; issues name the key. */
function stringMap(key: z.ZodString, value: z.ZodString, what: string) {
  return z.record(key, value, {
    error: (issue) => {
      if (issue.code === "invalid_key") {
        // The issue's path names the key; the key schema's own message says what is wrong with it.
        const inner = (issue as { issues?: Array<{ message?: string }> }).issues?.[0]?.message;
        return inner ?? "is not a valid key";
      }
      return expected(what)(issue);
    },
  });
}

/** Label and annotation keys, with the length limits of each part (the pattern cannot count them). */
const qualifiedNameSchema = z
  .string()
  .regex(QUALIFIED_NAME, {
    error: (issue) =>
      `must be a key such as "example.com/team" (an optional DNS prefix and "/", then letters, digits, ` +
      `"-", "_" and "."), got ${describeValue(issue.input)}`,
    abort: true,
  })
  .superRefine((key, ctx) => {
    const slash = key.lastIndexOf("/");
    const prefix = slash < 0 ? "" : key.slice(0, slash);
    const name = key.slice(slash + 1);
    if (prefix.length > 253) {
      ctx.addIssue({ code: "custom", message: `has a prefix longer than 253 characters (${prefix.length})` });
    }
    if (name.length > 63) {
      ctx.addIssue({
        code: "custom",
        message: `has a name longer than 63 characters after its prefix (${name.length})`,
      });
    }
  });

const labelValueSchema = patternString(
  LABEL_VALUE,
  'a label value (up to 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit)',
  63,
);

// ---------------------------------------------------------------------------------------------------
// The spec.

/** A key of a Secret in the source's namespace. */
const secretKeySelectorSchema = z.strictObject(
  {
    name: objectName("Secret").describe(
      "Name of a Secret in the StepFunctionSource's namespace. Required. Example: sum-api.",
    ),
    key: patternString(SECRET_KEY, 'a key of a Secret (letters, digits, "-", "_" and ".")', 253).describe(
      "Key in that Secret's data whose value is used. Required. Example: token.",
    ),
  },
  { error: expected("a mapping with `name` and `key`") },
);

const headerNameSchema = z
  .string({ error: expected('a header name such as "Authorization"') })
  .min(1, { error: "must not be empty", abort: true })
  .max(MAX_HEADER_NAME_LENGTH, {
    error: (issue) =>
      `must be at most ${MAX_HEADER_NAME_LENGTH} characters, got ${String(issue.input).length}`,
    abort: true,
  })
  .regex(HEADER_NAME, {
    error: () => "is not a valid header name (letters, digits and ! # $ % & ' * + - . ^ _ ` | ~ only)",
    abort: true,
  })
  .superRefine((name, ctx) => {
    const problem = headerNameProblem(name);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({
    description:
      "Name of the HTTP header, as sent (header names ignore case). Required. The poller sets some headers " +
      `itself, and they cannot be configured: ${[...RESERVED_HEADERS].join(", ")} and every ` +
      `${RESERVED_HEADER_PREFIX}* header. Example: Authorization.`,
    "x-kubernetes-validations": [
      {
        rule:
          `!(self.lowerAscii() in [${[...RESERVED_HEADERS].map((name) => `'${name}'`).join(", ")}]) && ` +
          `!self.lowerAscii().startsWith('${RESERVED_HEADER_PREFIX}')`,
        messageExpression:
          `'header ' + self + ' cannot be set: the poller sets it (reserved: ` +
          `${[...RESERVED_HEADERS].join(", ")}, ${RESERVED_HEADER_PREFIX}*)'`,
        reason: "FieldValueForbidden",
      },
    ],
  });

const targetHeaderSchema = z.strictObject(
  {
    name: headerNameSchema,
    valueFrom: z
      .strictObject(
        {
          secretKeyRef: secretKeySelectorSchema.describe(
            "The Secret key holding the header's value. Required. Example: {name: sum-api, key: token}.",
          ),
        },
        { error: expected("a mapping with `secretKeyRef`") },
      )
      .describe(
        "Where the header's value comes from: only a Secret, so that a value never appears in the " +
          "StepFunctionSource, the poller Deployment or the logs. Required.",
      ),
  },
  { error: expected("a mapping with `name` and `valueFrom`") },
);

/** Headers, unique by name in any case (the CRD's list-map keys are case-sensitive; HTTP's are not). */
const targetHeadersSchema = z
  .array(targetHeaderSchema, { error: expected("a list of headers") })
  .max(MAX_TARGET_HEADERS, {
    error: (issue) =>
      `must list at most ${MAX_TARGET_HEADERS} headers, got ${(issue.input as unknown[]).length}`,
  })
  .superRefine((headers, ctx) => {
    const seen = new Map<string, string>();
    headers.forEach((header, index) => {
      const first = seen.get(header.name.toLowerCase());
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [index, "name"],
          message: `is given twice (as "${first}" too; header names ignore case)`,
        });
      } else {
        seen.set(header.name.toLowerCase(), header.name);
      }
    });
  })
  .meta({
    description:
      "HTTP headers sent with every task to the target, such as an API key or a bearer token, each value " +
      "read from a Secret: the pollers get it as an environment variable from the Secret, never as text. " +
      "Unique by name, in any case. Default: none. Example: " +
      "[{name: Authorization, valueFrom: {secretKeyRef: {name: sum-api, key: token}}}].",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
    "x-kubernetes-validations": [
      {
        rule: "self.all(h, self.exists_one(o, o.name.lowerAscii() == h.name.lowerAscii()))",
        message: "header names must be unique ignoring case (HTTP header names ignore case)",
      },
    ],
  });

const portSchema = z
  .union(
    [
      z
        .int({ error: (issue) => `must be a whole port number, got ${describeValue(issue.input)}` })
        .min(1, {
          error: (issue) => `must be a port number from 1 to 65535, got ${describeValue(issue.input)}`,
        })
        .max(65535, {
          error: (issue) => `must be a port number from 1 to 65535, got ${describeValue(issue.input)}`,
        }),
      patternString(
        PORT_NAME,
        'the name of one of the Service\'s ports (up to 63 lowercase letters, digits and "-", with at ' +
          'least one letter, such as "http")',
        63,
      ),
    ],
    { error: expected('a port number such as 8080 or a port name such as "http"') },
  )
  .describe(
    "Port of the Service tasks are sent to: its number (1-65535) or its name (such as http). " +
      "Default: the Service's first port. Example: 8080.",
  );

const targetSchema = z.strictObject(
  {
    service: patternString(
      DNS1035_LABEL,
      "the name of a Service (DNS-1035 label: lowercase letters, digits and '-', starting with a letter)",
      63,
    ).describe(
      "Name of the Service, in the StepFunctionSource's namespace, that receives the tasks over HTTP. " +
        "Required. Example: sum-svc.",
    ),
    port: portSchema.optional(),
    path: requestPathSchema.describe(
      'Request path the task input is POSTed to, starting with "/", without spaces. Required. ' +
        "Example: /step/sum.",
    ),
    headers: targetHeadersSchema.optional(),
  },
  { error: expected("a mapping with `service` and `path`") },
);

/** A resource quantity, as a string whatever way it was written (client-node's types hold strings). */
const quantitySchema = z
  .union(
    [
      z.int({ error: (issue) => `must be a whole number, got ${describeValue(issue.input)}` }).min(0, {
        error: (issue) => `must not be negative, got ${describeValue(issue.input)}`,
      }),
      z.string().regex(QUANTITY, {
        error: (issue) =>
          `must be a resource quantity such as "100m", "96Mi" or "1", got ${describeValue(issue.input)}`,
      }),
    ],
    { error: expected('a resource quantity such as "100m" or "96Mi"') },
  )
  .transform(String);

function quantities(what: string) {
  return z.record(z.string(), quantitySchema, { error: expected(`a mapping of ${what}`) });
}

const resourcesSchema = z
  .strictObject(
    {
      requests: quantities("resource requests")
        .optional()
        .describe("Resources each poller container requests. Example: {cpu: 50m, memory: 96Mi}."),
      limits: quantities("resource limits")
        .optional()
        .describe("Limits of each poller container. Example: {memory: 256Mi}."),
    },
    { error: expected("a mapping with `requests` and/or `limits`") },
  )
  .describe(
    "Compute resources of each poller container (core/v1 ResourceRequirements: requests and limits). " +
      "Default: the operator's poller resources. Example: {requests: {cpu: 50m, memory: 96Mi}, " +
      "limits: {memory: 256Mi}}.",
  );

const tolerationSchema = z.strictObject(
  {
    key: z
      .string({ error: expected("a taint key") })
      .optional()
      .describe("Taint key the toleration applies to; empty with operator Exists matches every taint."),
    operator: z
      .string({ error: expected("Exists or Equal") })
      .optional()
      .describe("Exists or Equal (the default)."),
    value: z
      .string({ error: expected("a taint value") })
      .optional()
      .describe("Taint value matched with operator Equal."),
    effect: z
      .string({ error: expected("NoSchedule, PreferNoSchedule or NoExecute") })
      .optional()
      .describe("Taint effect matched: NoSchedule, PreferNoSchedule or NoExecute; empty matches all."),
    tolerationSeconds: z
      .int({ error: expected("a whole number of seconds") })
      .optional()
      .meta({
        format: "int64",
        description: "For NoExecute: how long the pod stays bound to a node with the taint.",
      }),
  },
  { error: expected("a toleration (a mapping with key, operator, value, effect, tolerationSeconds)") },
);

const redisSchema = z
  .strictObject(
    {
      url: z
        .string({ error: expected('a URL such as "redis://other-redis:6379"') })
        .max(2048, {
          error: (issue) => `must be at most 2048 characters, got ${String(issue.input).length}`,
          abort: true,
        })
        .regex(REDIS_URL_PREFIX, {
          error: (issue) =>
            "must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL such as " +
            '"redis://other-redis:6379", without a user, password or query (it would be in the pollers\' plain ' +
            `environment: use passwordSecretRef), got ${/[@?#]/.test(String(issue.input)) ? "a URL with credentials or a query" : describeValue(issue.input)}`,
          abort: true,
        })
        .pipe(redisUrlSchema)
        .describe(
          "URL of the Redis that holds this source's semaphore: redis:// or rediss:// (TLS), " +
            "redis+cluster:// or rediss+cluster:// for Redis Cluster. No password in it: use passwordSecretRef. " +
            "Required. Example: redis://other-redis:6379.",
        ),
      passwordSecretRef: secretKeySelectorSchema
        .optional()
        .describe(
          "The Secret key holding that Redis's password. Default: none (no AUTH). " +
            "Example: {name: other-redis, key: password}.",
        ),
    },
    { error: expected("a mapping with `url`") },
  )
  .describe(
    "Another Redis for this source's semaphore, for a source that must not use the operator's. " +
      "Default: the operator's Redis. Example: {url: redis://other-redis:6379, passwordSecretRef: " +
      "{name: other-redis, key: password}}.",
  );

/** The spec's own fields, before the rule that spans two of them. */
const specShape = {
  activityName: sourceFieldSchemas.activityName.describe(
    "Name of the Step Functions activity whose tasks this source serves; the operator creates the activity " +
      "(CreateActivity returns the existing one). 1-80 characters; no white space, control characters, " +
      '< > { } [ ] ? * " # % \\ ^ | ~ ` $ & , ; : or /. Required. Example: sum.',
  ),
  target: targetSchema.describe(
    "The HTTP service in the same namespace that does the work: each task's input is POSTed to " +
      "http://<service>.<namespace>.svc:<port><path>. Required. Example: {service: sum-svc, port: 8080, " +
      "path: /step/sum}.",
  ),
  maxConcurrency: sourceFieldSchemas.maxConcurrency.describe(
    "Tasks in flight at once across ALL pollers of this source (a semaphore in Redis enforces it), " +
      "1-1000. Changing it scales the pollers without restarting them. Default: 1. Example: 10.",
  ),
  concurrencyPerPoller: sourceFieldSchemas.concurrencyPerPoller.describe(
    "Tasks one poller pod works on at once, 1-1000 and at most maxConcurrency; the operator runs " +
      "ceil(maxConcurrency / concurrencyPerPoller) pollers. Default: 1. Example: 5.",
  ),
  requestTimeout: sourceFieldSchemas.requestTimeout.describe(
    "How long one task's HTTP call may take before it fails with error Target.Timeout: a duration of numbers " +
      `with units ms, s, m, h, from ${formatDuration(MIN_REQUEST_TIMEOUT_MS)} to ` +
      `${formatDuration(MAX_REQUEST_TIMEOUT_MS)}. Default: 5m. Example: 90s or 1h30m.`,
  ),
  heartbeatInterval: sourceFieldSchemas.heartbeatInterval.describe(
    "How often SendTaskHeartbeat is sent while a task is in flight; keep it below the state machine's " +
      "HeartbeatSeconds. A duration of numbers with units ms, s, m, h, from " +
      `${formatDuration(MIN_HEARTBEAT_INTERVAL_MS)} to ${formatDuration(MAX_HEARTBEAT_INTERVAL_MS)}. ` +
      "Default: 10s. Example: 30s.",
  ),
  region: regionSchema
    .max(64, { error: (issue) => `must be at most 64 characters, got ${String(issue.input).length}` })
    .optional()
    .describe("AWS region of the activity. Default: the operator's region. Example: us-east-1."),
  serviceAccountName: objectName("ServiceAccount")
    .optional()
    .describe(
      "ServiceAccount of the poller pods, for AWS credentials (IRSA, EKS Pod Identity). Default: the " +
        "operator's poller ServiceAccount, else the namespace's default. Example: sum-poller.",
    ),
  image: patternString(IMAGE, "an image reference without spaces", 1024)
    .optional()
    .describe(
      "Container image of the pollers (it must run `sfn-operator poller`). Default: the operator's " +
        "poller image, the operator's own version. Example: registry.example.com/sfn-operator:0.1.0.",
    ),
  resources: resourcesSchema.optional(),
  nodeSelector: stringMap(qualifiedNameSchema, labelValueSchema, "node labels to label values")
    .optional()
    .describe(
      "Node labels the poller pods must be scheduled on (pod.spec.nodeSelector). Default: none. " +
        "Example: {kubernetes.io/arch: arm64}.",
    ),
  tolerations: z
    .array(tolerationSchema, { error: expected("a list of tolerations") })
    .optional()
    .describe(
      "Tolerations of the poller pods (core/v1 Toleration, pod.spec.tolerations). Default: none. " +
        "Example: [{key: dedicated, operator: Equal, value: workers, effect: NoSchedule}].",
    ),
  affinity: z
    .record(z.string(), z.unknown(), { error: expected("a mapping (core/v1 Affinity)") })
    .optional()
    .meta({
      description:
        "Affinity of the poller pods (core/v1 Affinity, pod.spec.affinity), passed on as given; see " +
        "`kubectl explain pod.spec.affinity`. Default: none. Example: {podAntiAffinity: {...}}.",
      "x-kubernetes-preserve-unknown-fields": true,
    }),
  podAnnotations: stringMap(qualifiedNameSchema, z.string(), "annotation keys to text")
    .optional()
    .describe(
      "Annotations added to the poller pods (IRSA, service meshes, cost allocation). Default: none. " +
        "Example: {sidecar.istio.io/inject: 'false'}.",
    ),
  podLabels: stringMap(qualifiedNameSchema, labelValueSchema, "label keys to label values")
    .optional()
    .describe(
      "Labels added to the poller pods (cost allocation, policies); the operator's own labels win over " +
        "these. Default: none. Example: {team: payments}.",
    ),
  redis: redisSchema.optional(),
};

/** A spec as the API server stores it (defaults applied) and as parseSourceSpec returns it. */
export const stepFunctionSourceSpecSchema = z
  .strictObject(specShape, { error: expected("a mapping (the StepFunctionSource's spec)") })
  .superRefine((spec, ctx) => {
    for (const issue of concurrencyIssues(spec)) ctx.addIssue({ code: "custom", ...issue });
  })
  .meta({
    description:
      "What the operator runs for this source: pollers that take the activity's tasks from AWS Step " +
      "Functions and POST them to a Service, never more than maxConcurrency at once.",
    "x-kubernetes-validations": [
      {
        rule: "self.concurrencyPerPoller <= self.maxConcurrency",
        // A static message: a messageExpression with string(int) has no cost bound the API server accepts.
        message:
          "concurrencyPerPoller must not exceed maxConcurrency: a poller cannot use more permits than the source has",
        fieldPath: ".concurrencyPerPoller",
        reason: "FieldValueInvalid",
      },
    ],
  });

/** The spec with defaults applied (z.output): what the operator works with. */
export type StepFunctionSourceSpec = z.output<typeof stepFunctionSourceSpecSchema>;
/** The spec as a user may write it (z.input): defaulted fields optional. */
export type StepFunctionSourceSpecInput = z.input<typeof stepFunctionSourceSpecSchema>;
/** A Secret key reference of the spec (header values, the Redis password). */
export type SecretKeySelector = z.output<typeof secretKeySelectorSchema>;
/** One entry of `spec.target.headers`. */
export type TargetHeader = z.output<typeof targetHeaderSchema>;

/** The two fields of the cross-field rule, to check it while other fields are invalid. */
const concurrencySchema = z.object({
  maxConcurrency: sourceFieldSchemas.maxConcurrency,
  concurrencyPerPoller: sourceFieldSchemas.concurrencyPerPoller,
});

/**
 * Check a spec read from the API and apply its defaults. Besides what the CRD's schema made the API
 * server check, this checks what it cannot: duration ranges, reserved header names in any case, label
 * and annotation keys, a Redis URL that parses. Every problem is returned (paths from the spec, e.g.
 * `["target", "headers", 0, "name"]`), not just the first.
 */
export function parseSourceSpec(spec: unknown): Resolved<StepFunctionSourceSpec> {
  const parsed = stepFunctionSourceSpecSchema.safeParse(spec, { error: containerErrors });
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = fieldIssues(stepFunctionSourceSpecSchema, parsed.error.issues);
  // zod skips the spec's refinement while a field is invalid; the rule is still worth reporting.
  const limits = concurrencySchema.safeParse(spec);
  if (limits.success) {
    for (const issue of concurrencyIssues(limits.data)) {
      if (!issues.some((other) => samePath(other, issue) && other.message === issue.message)) {
        issues.push(issue);
      }
    }
  }
  return { ok: false, issues };
}

function samePath(a: FieldIssue, b: FieldIssue): boolean {
  return a.path.length === b.path.length && a.path.every((step, index) => step === b.path[index]);
}

// ---------------------------------------------------------------------------------------------------
// The status, written by the operator only (status subresource).

const int32 = (description: string) => z.int().min(0).optional().meta({ format: "int32", description });
const int64 = (description: string) => z.int().min(0).optional().meta({ format: "int64", description });

const conditionSchema = z.strictObject({
  type: patternString(CONDITION_TYPE, "a condition type in CamelCase", 316).describe(
    `Type of the condition: ${CONDITION_TYPES.join(", ")}.`,
  ),
  status: z.enum(["True", "False", "Unknown"]).describe("True, False or Unknown."),
  observedGeneration: int64("The metadata.generation of the spec this condition was computed from."),
  lastTransitionTime: z.iso.datetime({ offset: true }).describe("When the status last changed (RFC 3339)."),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(CONDITION_REASON)
    .describe("Why, in one CamelCase word for programs. Example: ActivityResolved, ServiceNotFound."),
  message: z.string().max(32768).describe("Why, for humans, and what to do when something is wrong."),
});

/** One entry of `status.conditions` (metav1.Condition). */
export type Condition = z.output<typeof conditionSchema>;

export const stepFunctionSourceStatusSchema = z
  .strictObject({
    observedGeneration: int64("The metadata.generation of the spec the status describes."),
    activityArn: z
      .string()
      .optional()
      .describe(
        "ARN of the activity, resolved with CreateActivity. Example: " +
          "arn:aws:states:us-east-1:123456789012:activity:sum.",
      ),
    desiredPollers: int32("Poller pods wanted: ceil(maxConcurrency / concurrencyPerPoller)."),
    readyPollers: int32("Poller pods ready, from the poller Deployment."),
    updatedPollers: int32("Poller pods running the current pod template, from the poller Deployment."),
    pollers: z
      .string()
      .optional()
      .describe('Ready and desired poller pods as "ready/desired", for `kubectl get`. Example: 2/2.'),
    tasksInFlight: int64("Tasks being worked on now across all pollers, as the pollers last reported."),
    tasksSucceeded: int64("Tasks that succeeded (SendTaskSuccess), total since the source was created."),
    tasksFailed: int64(
      "Tasks that did not succeed (reported with SendTaskFailure, gone at AWS while they ran, or whose outcome could not be reported), total since the source was created.",
    ),
    lastTaskTime: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("When the last task finished (RFC 3339)."),
    conditions: z
      .array(conditionSchema)
      .optional()
      .meta({
        description:
          `The state of the source, one condition per type: ${CONDITION_TYPES.join(", ")}. Ready is True ` +
          "when all the others are; each message says what to do when one is not.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      }),
  })
  .describe("What the operator observed; written by the operator only.");

export type StepFunctionSourceStatus = z.output<typeof stepFunctionSourceStatusSchema>;

/**
 * A StepFunctionSource as read from the API (spec parsed with parseSourceSpec before it is trusted).
 * apiVersion and kind are plain strings so that objects parsed from JSON fit without a cast; they are
 * SFS_API_VERSION and SFS_KIND.
 */
export interface StepFunctionSource {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta;
  spec: StepFunctionSourceSpec;
  status?: StepFunctionSourceStatus;
}
