/**
 * The operator's settings (`sfn-operator operator`), from command-line flags or environment variables
 * (a flag wins over its variable). OPERATOR_SETTINGS is the single source of truth for their names,
 * defaults and documentation: the CLI builds its options from it, the README's table is checked
 * against it, and the chart sets the variables.
 *
 * Every problem is collected and reported at once (exit 2), as for the poller.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { V1ResourceRequirements } from "@kubernetes/client-node";
import { DurationError, parseDuration } from "../api/duration.ts";
import { describeValue, redisUrlHasPassword, redisUrlSchema, regionSchema } from "../api/fields.ts";
import { redisSettingsFromEnv } from "../semaphore/redis/settings.ts";

/** A Secret key in the namespace of each source: `name:key`. */
export interface SecretKeyReference {
  name: string;
  key: string;
}

export interface LeaderElectionSettings {
  enabled: boolean;
  /** Name of the Lease in the operator's namespace. */
  leaseName: string;
  /** This process's identity in the Lease (the pod name). */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** What the operator puts into every poller Deployment unless the source says otherwise. */
export interface PollerDefaults {
  image: string;
  imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  /** Unset: the namespace's `default` ServiceAccount. */
  serviceAccountName?: string;
  resources: V1ResourceRequirements;
  /** Default AWS region of sources that name none; unset: the pods' own (AWS_REGION, IRSA...). */
  region?: string;
  /** AWS_ENDPOINT_URL_SFN for the pollers: a VPC endpoint or, in tests, an emulator. */
  awsEndpointUrl?: string;
  /** The Redis of the semaphores, as the pollers reach it. */
  redisUrl: string;
  /** Secret (in each source's namespace) holding the Redis password for the pollers. */
  redisPasswordSecret?: SecretKeyReference;
  /**
   * Secret (in each source's namespace) holding the PEM CA of a `rediss://` Redis whose certificate
   * a private CA signed: mounted into the poller pods and given to Node as NODE_EXTRA_CA_CERTS.
   */
  redisCaSecret?: SecretKeyReference;
  /** SFN_REDIS_CLUSTER, SFN_REDIS_SENTINELS, SFN_REDIS_SENTINEL_MASTER, SFN_REDIS_LEASE_TTL, passed on. */
  redisEnv: Readonly<Record<string, string>>;
  /**
   * The operator's own HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY (either case), passed on so
   * that pollers behind the same egress proxy reach AWS (SFN_POLLER_PROXY=inherit); empty with none.
   */
  proxyEnv: Readonly<Record<string, string>>;
  logLevel: string;
}

export interface OperatorSettings {
  /** The operator's own namespace: its Lease lives there. */
  namespace: string;
  /** Namespaces whose sources are served; empty: all. */
  watchNamespaces: string[];
  leaderElection: LeaderElectionSettings;
  poller: PollerDefaults;
  /** The operator's own Redis connection (same Redis as the pollers, maybe another address). */
  redisUrl: string;
  /** Reconciles run at once. */
  workers: number;
  /** Every object is listed again this often, so that a missed watch event heals. */
  resyncPeriodMs: number;
  /** How often task figures are read from Redis for the status. */
  statusIntervalMs: number;
  /** Timeout of each Kubernetes API call. */
  apiTimeoutMs: number;
}

/** One setting: its variable, its flag, what it is, and its default in words. */
export interface OperatorSettingDoc {
  env: string;
  flag: string;
  description: string;
  default: string;
}

const DEFAULT_RESOURCES: V1ResourceRequirements = {
  requests: { cpu: "50m", memory: "96Mi" },
  limits: { memory: "256Mi" },
};

/** Every setting, in the README's order. */
export const OPERATOR_SETTINGS: readonly OperatorSettingDoc[] = [
  {
    env: "SFN_POLLER_IMAGE",
    flag: "--poller-image",
    description: "Image of the poller Deployments (this project's image; the chart sets its own).",
    default: "required",
  },
  {
    env: "SFN_REDIS_URL",
    flag: "--redis-url",
    description:
      "Redis of the semaphores (redis://, rediss://, redis+cluster://), as the operator and the pollers reach it. " +
      "SFN_REDIS_PASSWORD, SFN_REDIS_CLUSTER, SFN_REDIS_SENTINELS, SFN_REDIS_SENTINEL_MASTER and " +
      "SFN_REDIS_LEASE_TTL work as for the poller and are passed on to the pollers (the password through " +
      "SFN_POLLER_REDIS_PASSWORD_SECRET). No password in the URL: the pollers get it in plain text.",
    default: "required",
  },
  {
    env: "SFN_POLLER_REDIS_PASSWORD_SECRET",
    flag: "--poller-redis-password-secret",
    description:
      "`secret:key` of a Secret in each source's namespace that holds the Redis password for the pollers.",
    default: "none (pollers connect without a password)",
  },
  {
    env: "SFN_POLLER_REDIS_CA_SECRET",
    flag: "--poller-redis-ca-secret",
    description:
      "`secret:key` of a Secret in each source's namespace that holds the PEM CA of a `rediss://` Redis " +
      "signed by a private CA; mounted into the poller pods as NODE_EXTRA_CA_CERTS (the operator itself " +
      "takes NODE_EXTRA_CA_CERTS from its own environment).",
    default: "none (Node's CA store)",
  },
  {
    env: "SFN_NAMESPACE",
    flag: "--namespace",
    description: "The operator's own namespace, where its leader-election Lease lives.",
    default: "POD_NAMESPACE, else the ServiceAccount's namespace, else `default`",
  },
  {
    env: "SFN_WATCH_NAMESPACES",
    flag: "--watch-namespaces",
    description: "Comma-separated namespaces whose StepFunctionSources are served.",
    default: "all namespaces",
  },
  {
    env: "SFN_REGION",
    flag: "--region",
    description: "AWS region of sources that set no `spec.region`.",
    default: "AWS_REGION, else the SDK's resolution",
  },
  {
    env: "SFN_POLLER_SERVICE_ACCOUNT",
    flag: "--poller-service-account",
    description:
      "ServiceAccount of poller pods whose source sets no `spec.serviceAccountName` (IRSA, Pod Identity).",
    default: "the namespace's `default`",
  },
  {
    env: "SFN_POLLER_RESOURCES",
    flag: "--poller-resources",
    description: "Resources of poller containers whose source sets none, as JSON.",
    default: JSON.stringify(DEFAULT_RESOURCES),
  },
  {
    env: "SFN_POLLER_IMAGE_PULL_POLICY",
    flag: "--poller-image-pull-policy",
    description: "imagePullPolicy of poller containers: Always, IfNotPresent or Never.",
    default: "IfNotPresent",
  },
  {
    env: "SFN_POLLER_AWS_ENDPOINT_URL",
    flag: "--poller-aws-endpoint-url",
    description: "AWS_ENDPOINT_URL_SFN for the pollers (a VPC endpoint; an emulator in tests).",
    default: "none (AWS's public endpoint)",
  },
  {
    env: "SFN_POLLER_LOG_LEVEL",
    flag: "--poller-log-level",
    description: "SFN_LOG_LEVEL of the pollers: error, warn, info or debug.",
    default: "info",
  },
  {
    env: "SFN_POLLER_PROXY",
    flag: "--poller-proxy",
    description:
      "`inherit`: the pollers get this process's HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY (either case), so they reach AWS through the same proxy; `none`: they get none. With inherit, a proxy URL with credentials is not passed on (the Deployments would hold it in plain text); a warning at start-up says so.",
    default: "inherit",
  },
  {
    env: "SFN_LEADER_ELECT",
    flag: "--leader-elect",
    description: "Elect a leader through a Lease (true/false); needed when more than one replica runs.",
    default: "true",
  },
  {
    env: "SFN_LEASE_NAME",
    flag: "--lease-name",
    description: "Name of the leader-election Lease.",
    default: "sfn-operator",
  },
  {
    env: "SFN_LEASE_DURATION",
    flag: "--lease-duration",
    description: "How long a standby waits, on its own clock, for an unrenewed Lease before taking it.",
    default: "15s",
  },
  {
    env: "SFN_RENEW_DEADLINE",
    flag: "--renew-deadline",
    description:
      "How long the leader tries to renew before it stops and exits (less than the lease duration).",
    default: "10s",
  },
  {
    env: "SFN_RETRY_PERIOD",
    flag: "--retry-period",
    description: "How often candidates and the leader try the Lease.",
    default: "2s",
  },
  {
    env: "SFN_WORKERS",
    flag: "--workers",
    description: "Sources reconciled at once (one source is never reconciled twice at once).",
    // 8: with 500 sources applied at once on a 2-core machine, more workers no longer bring every
    // source Ready much sooner (the API server and the pods' start are then the limit) and hold
    // more memory; 4 took seconds longer. `npm run bench -- --only operator --operator-workers <n>`.
    default: "8",
  },
  {
    env: "SFN_RESYNC_PERIOD",
    flag: "--resync-period",
    description: "How often everything is listed again and reconciled, so that a missed event heals.",
    default: "5m",
  },
  {
    env: "SFN_STATUS_INTERVAL",
    flag: "--status-interval",
    description: "How often task figures are read from Redis into the sources' status.",
    default: "5s",
  },
  {
    env: "SFN_API_TIMEOUT",
    flag: "--api-timeout",
    description:
      "Timeout of each Kubernetes API call the operator makes (AWS calls have their own: 20 s, 3 attempts).",
    default: "30s",
  },
];

/** The variables the operator passes on to the pollers as they are. */
const PASSED_REDIS_VARIABLES = [
  "SFN_REDIS_CLUSTER",
  "SFN_REDIS_SENTINELS",
  "SFN_REDIS_SENTINEL_MASTER",
  "SFN_REDIS_LEASE_TTL",
] as const;

/** The proxy variables Node's libraries read (lower case first, as curl and proxy-from-env do). */
const PROXY_VARIABLES = ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
const NO_PROXY_VARIABLES = ["no_proxy", "NO_PROXY"];

const SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** A DNS-1123 label: namespace and Secret-key-free names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * The settings from `values` (flag values by variable name, already merged over the environment: the
 * CLI does that) and `env` (for the Redis variables and POD_NAME/POD_NAMESPACE). Returns the settings
 * or every problem, each line starting with the setting's name as the user gave it.
 */
export function operatorSettingsFrom(
  values: Readonly<Record<string, string | undefined>>,
  env: NodeJS.ProcessEnv,
  labelOf: (variable: string) => string = (variable) => variable,
): { settings?: OperatorSettings; problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  /** What the operator logs at start-up and works around: not worth refusing to start for. */
  const warnings: string[] = [];
  const problem = (variable: string, message: string): void => {
    problems.push(`${labelOf(variable)}: ${message}`);
  };
  const read = (variable: string): string | undefined => {
    const value = values[variable]?.trim();
    return value === "" ? undefined : value;
  };
  const fallback = (variable: string): string =>
    OPERATOR_SETTINGS.find((setting) => setting.env === variable)?.default ?? "";
  const duration = (variable: string): number => {
    const text = read(variable) ?? fallback(variable);
    try {
      const ms = parseDuration(text);
      // 0 would be a busy loop (retry, status), an instant timeout, or a lease nobody can hold.
      if (ms > 0) return ms;
      problem(variable, `must be longer than 0, got ${describeValue(text)}`);
      return Number.NaN;
    } catch (error) {
      if (!(error instanceof DurationError)) throw error;
      problem(variable, error.message);
      return Number.NaN;
    }
  };
  const positiveInteger = (variable: string, max: number): number => {
    const text = read(variable) ?? fallback(variable);
    const value = Number(text);
    if (!/^[0-9]+$/.test(text) || value < 1 || value > max) {
      problem(variable, `must be a whole number from 1 to ${max}, got ${describeValue(text)}`);
      return 1;
    }
    return value;
  };
  const boolean = (variable: string): boolean => {
    const text = read(variable) ?? fallback(variable);
    if (/^true$/i.test(text)) return true;
    if (/^false$/i.test(text)) return false;
    problem(variable, `must be true or false, got ${describeValue(text)}`);
    return true;
  };

  const image = read("SFN_POLLER_IMAGE");
  if (image === undefined) problem("SFN_POLLER_IMAGE", "is required: the image of the poller Deployments");
  else if (/\s/.test(image))
    problem("SFN_POLLER_IMAGE", `must be an image reference, got ${describeValue(image)}`);

  const redisUrl = read("SFN_REDIS_URL");
  const redisEnv: Record<string, string> = {};
  if (redisUrl === undefined) {
    problem(
      "SFN_REDIS_URL",
      "is required: the pollers' distributed semaphore keeps maxConcurrency across pods in Redis",
    );
  } else {
    const parsed = redisUrlSchema.safeParse(redisUrl);
    if (!parsed.success) problem("SFN_REDIS_URL", parsed.error.issues[0]?.message ?? "is not a Redis URL");
    else if (redisUrlHasPassword(new URL(redisUrl))) {
      // The pollers get this URL in their Deployments' plain environment, readable by anyone who may
      // read Deployments in a source's namespace.
      problem(
        "SFN_REDIS_URL",
        `must not contain a password (the poller Deployments get this URL in plain text): give it in SFN_REDIS_PASSWORD, and to the pollers with ${labelOf("SFN_POLLER_REDIS_PASSWORD_SECRET")}`,
      );
    } else {
      for (const { setting, message } of redisSettingsFromEnv(redisUrl, env, "SFN_REDIS_URL").problems) {
        problems.push(`${setting === "SFN_REDIS_URL" ? labelOf(setting) : setting}: ${message}`);
      }
    }
    for (const variable of PASSED_REDIS_VARIABLES) {
      const value = env[variable]?.trim();
      if (value) redisEnv[variable] = value;
    }
  }

  const secretReference = (variable: string, example: string): SecretKeyReference | undefined => {
    const text = read(variable);
    if (text === undefined) return undefined;
    const [name = "", key = "", ...rest] = text.split(":");
    if (rest.length > 0 || !DNS_SUBDOMAIN.test(name) || !SECRET_KEY.test(key)) {
      problem(variable, `must be <secret name>:<key>, such as "${example}", got ${describeValue(text)}`);
      return undefined;
    }
    return { name, key };
  };
  const redisPasswordSecret = secretReference("SFN_POLLER_REDIS_PASSWORD_SECRET", "redis-auth:password");
  const redisCaSecret = secretReference("SFN_POLLER_REDIS_CA_SECRET", "redis-ca:ca.crt");
  if (read("SFN_POLLER_REDIS_PASSWORD_SECRET") === undefined && env.SFN_REDIS_PASSWORD) {
    // The operator would connect and every poller would be refused: say so at start-up instead.
    problem(
      "SFN_POLLER_REDIS_PASSWORD_SECRET",
      "is required when SFN_REDIS_PASSWORD is set: the pollers need the password too, from a Secret in each source's namespace",
    );
  }

  const namespace =
    read("SFN_NAMESPACE") ??
    (env.POD_NAMESPACE?.trim() || undefined) ??
    serviceAccountNamespace() ??
    "default";
  if (!DNS_LABEL.test(namespace))
    problem("SFN_NAMESPACE", `must be a namespace name, got ${describeValue(namespace)}`);

  // Once each: a namespace named twice would get two informers (every event twice) and two Roles.
  const watchNamespaces = [
    ...new Set(
      (read("SFN_WATCH_NAMESPACES") ?? "")
        .split(",")
        .map((name) => name.trim())
        .filter((name) => name !== ""),
    ),
  ];
  for (const name of watchNamespaces) {
    if (!DNS_LABEL.test(name))
      problem("SFN_WATCH_NAMESPACES", `${describeValue(name)} is not a namespace name`);
  }

  const region = read("SFN_REGION") ?? (env.AWS_REGION?.trim() || undefined);
  if (region !== undefined) {
    const parsed = regionSchema.safeParse(region);
    if (!parsed.success) problem("SFN_REGION", parsed.error.issues[0]?.message ?? "is not a region");
  }

  const serviceAccountName = read("SFN_POLLER_SERVICE_ACCOUNT");
  if (serviceAccountName !== undefined && !DNS_SUBDOMAIN.test(serviceAccountName)) {
    problem(
      "SFN_POLLER_SERVICE_ACCOUNT",
      `must be a ServiceAccount name, got ${describeValue(serviceAccountName)}`,
    );
  }

  let resources = DEFAULT_RESOURCES;
  const resourcesText = read("SFN_POLLER_RESOURCES");
  if (resourcesText !== undefined) {
    const parsed = resourcesFromJson(resourcesText);
    if (typeof parsed === "string") problem("SFN_POLLER_RESOURCES", parsed);
    else resources = parsed;
  }

  const pullPolicy = read("SFN_POLLER_IMAGE_PULL_POLICY") ?? "IfNotPresent";
  const imagePullPolicy = (["Always", "IfNotPresent", "Never"] as const).find(
    (policy) => policy === pullPolicy,
  );
  if (imagePullPolicy === undefined) {
    problem(
      "SFN_POLLER_IMAGE_PULL_POLICY",
      `must be Always, IfNotPresent or Never, got ${describeValue(pullPolicy)}`,
    );
  }

  const awsEndpointUrl = read("SFN_POLLER_AWS_ENDPOINT_URL");
  if (awsEndpointUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(awsEndpointUrl)) {
    problem(
      "SFN_POLLER_AWS_ENDPOINT_URL",
      `must be an http:// or https:// URL, got ${describeValue(awsEndpointUrl)}`,
    );
  }

  const logLevel = read("SFN_POLLER_LOG_LEVEL") ?? "info";
  if (!["error", "warn", "info", "debug"].includes(logLevel)) {
    problem(
      "SFN_POLLER_LOG_LEVEL",
      `must be one of error, warn, info, debug, got ${describeValue(logLevel)}`,
    );
  }

  const proxyMode = read("SFN_POLLER_PROXY") ?? "inherit";
  const proxyEnv: Record<string, string> = {};
  if (proxyMode !== "inherit" && proxyMode !== "none") {
    problem("SFN_POLLER_PROXY", `must be inherit or none, got ${describeValue(proxyMode)}`);
  } else if (proxyMode === "inherit") {
    for (const variable of PROXY_VARIABLES) {
      const value = env[variable]?.trim();
      if (!value) continue;
      if (proxyHasCredentials(value)) {
        // The poller Deployments' environment is readable by whoever may read Deployments in a
        // source's namespace: a proxy password must not go there. Not a reason to stop the operator
        // (it ran with this proxy before pollers inherited it): the pollers go without this one.
        warnings.push(
          `${variable} holds credentials, which the poller Deployments would get in plain text: it is not passed on to them (${labelOf("SFN_POLLER_PROXY")} is inherit). Give the pollers a proxy that needs no credentials, or set ${labelOf("SFN_POLLER_PROXY")} to none to silence this`,
        );
        continue;
      }
      proxyEnv[variable] = value;
    }
    // NO_PROXY matters to the pollers only with a proxy passed on.
    if (Object.keys(proxyEnv).length > 0) {
      for (const variable of NO_PROXY_VARIABLES) {
        const value = env[variable]?.trim();
        if (value) proxyEnv[variable] = value;
      }
      exemptServices(proxyEnv);
    }
  }

  const leaseName = read("SFN_LEASE_NAME") ?? "sfn-operator";
  if (!DNS_SUBDOMAIN.test(leaseName))
    problem("SFN_LEASE_NAME", `must be a Lease name, got ${describeValue(leaseName)}`);
  const leaseDurationMs = duration("SFN_LEASE_DURATION");
  const renewDeadlineMs = duration("SFN_RENEW_DEADLINE");
  const retryPeriodMs = duration("SFN_RETRY_PERIOD");
  // client-go's rule: the leader must give up before a standby may take over, with retries in between.
  if (leaseDurationMs <= renewDeadlineMs) {
    problem(
      "SFN_LEASE_DURATION",
      `must be longer than ${labelOf("SFN_RENEW_DEADLINE")} (a standby must not take over a leader still renewing)`,
    );
  }
  if (renewDeadlineMs <= 1.2 * retryPeriodMs) {
    problem(
      "SFN_RENEW_DEADLINE",
      `must be longer than 1.2 x ${labelOf("SFN_RETRY_PERIOD")} (time for at least one retry)`,
    );
  }

  const settings: OperatorSettings = {
    namespace,
    watchNamespaces,
    leaderElection: {
      enabled: boolean("SFN_LEADER_ELECT"),
      leaseName,
      identity: env.POD_NAME?.trim() || `${hostname()}-${process.pid}`,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
    },
    poller: {
      image: image ?? "",
      imagePullPolicy: imagePullPolicy ?? "IfNotPresent",
      ...(serviceAccountName !== undefined && { serviceAccountName }),
      resources,
      ...(region !== undefined && { region }),
      ...(awsEndpointUrl !== undefined && { awsEndpointUrl }),
      redisUrl: redisUrl ?? "",
      ...(redisPasswordSecret !== undefined && { redisPasswordSecret }),
      ...(redisCaSecret !== undefined && { redisCaSecret }),
      redisEnv,
      proxyEnv,
      logLevel,
    },
    redisUrl: redisUrl ?? "",
    workers: positiveInteger("SFN_WORKERS", 64),
    resyncPeriodMs: duration("SFN_RESYNC_PERIOD"),
    statusIntervalMs: duration("SFN_STATUS_INTERVAL"),
    apiTimeoutMs: duration("SFN_API_TIMEOUT"),
  };
  return problems.length > 0 ? { problems, warnings } : { settings, problems, warnings };
}

function serviceAccountNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Kubernetes quantities: what the API server accepts, roughly (it has the last word). */
const QUANTITY = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

/** Parse `{"requests":{...},"limits":{...}}`, or say what is wrong with it. */
export function resourcesFromJson(text: string): V1ResourceRequirements | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `must be JSON such as ${JSON.stringify(DEFAULT_RESOURCES)}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "must be a JSON object with `requests` and/or `limits`";
  }
  const result: V1ResourceRequirements = {};
  for (const [section, quantities] of Object.entries(value)) {
    if (section !== "requests" && section !== "limits")
      return `unknown key ${JSON.stringify(section)} (requests, limits)`;
    if (typeof quantities !== "object" || quantities === null || Array.isArray(quantities)) {
      return `${section} must be an object of quantities`;
    }
    const checked: Record<string, string> = {};
    for (const [name, quantity] of Object.entries(quantities as Record<string, unknown>)) {
      const text = typeof quantity === "number" ? String(quantity) : quantity;
      if (typeof text !== "string" || !QUANTITY.test(text)) {
        return `${section}.${name} must be a quantity such as "100m" or "128Mi", got ${describeValue(quantity)}`;
      }
      checked[name] = text;
    }
    result[section] = checked;
  }
  return result;
}

/**
 * Whether a proxy variable may carry a user or password: any `@` (a proxy host never has one), so
 * that no spelling a URL parser reads differently (quotes, `http:/`, backslashes) slips through.
 */
function proxyHasCredentials(value: string): boolean {
  return value.includes("@");
}

/**
 * The pollers call their targets at `http://<service>.<namespace>.svc:<port>`: in-cluster Services,
 * which an egress proxy cannot reach (or should not see). With a proxy passed on, their NO_PROXY
 * (each case the operator has, else NO_PROXY) gets `.svc` unless it already exempts it.
 */
function exemptServices(proxyEnv: Record<string, string>): void {
  const present = NO_PROXY_VARIABLES.filter((variable) => proxyEnv[variable] !== undefined);
  for (const variable of present.length > 0 ? present : ["NO_PROXY"]) {
    const entries = (proxyEnv[variable] ?? "").split(/[\s,]+/).filter(Boolean);
    if (entries.some((entry) => entry === "*" || entry === ".svc" || entry === "*.svc")) continue;
    proxyEnv[variable] = [...entries, ".svc"].join(",");
  }
}
