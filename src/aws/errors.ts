/**
 * How we read errors from Step Functions and the network under it. Codes are AWS's (`error.name` of
 * the SDK's exceptions) or Node's socket codes.
 */

/** Answers to SendTask* that mean the task is gone at AWS: nothing left to report, move on. */
export const TASK_GONE_CODES = ["TaskDoesNotExist", "InvalidToken", "TaskTimedOut"] as const;
export type TaskGoneCode = (typeof TASK_GONE_CODES)[number];

const THROTTLING_CODES = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "ProvisionedThroughputExceededException",
]);

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** AWS's error code, Node's socket code, or the error's name: the one label we count and log. */
export function errorCode(error: unknown): string {
  if (typeof error !== "object" || error === null) return "Unknown";
  const e = error as ErrorLike;
  if (typeof e.$metadata === "object" && typeof e.name === "string" && e.name !== "Error") return e.name;
  if (typeof e.code === "string") return e.code;
  if (typeof e.name === "string" && e.name !== "Error") return e.name;
  return "Unknown";
}

export function isTaskGone(error: unknown): error is Error & { name: TaskGoneCode } {
  return (TASK_GONE_CODES as readonly string[]).includes(errorCode(error));
}

/**
 * Throttling, AWS server faults and network failures: worth trying again later. Anything else (a 4xx
 * such as ValidationException or ActivityDoesNotExist) would fail the same way again.
 */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as ErrorLike;
  const code = errorCode(error);
  if (THROTTLING_CODES.has(code) || NETWORK_CODES.has(code) || code === "TimeoutError") return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === "number") return status === 429 || status >= 500;
  if (e.$fault === "server") return true;
  // No HTTP answer at all: the request never completed (socket closed, DNS, TLS).
  return e.$metadata === undefined;
}

/**
 * A problem with our own AWS settings found before any request was made (a proxy variable that is not
 * a URL): the same on every retry until someone changes the configuration.
 */
export class AwsConfigError extends Error {
  override name = "AwsConfigError";
  /** What to change, written to follow the problem. */
  readonly hint: string;

  constructor(message: string, hint: string, options?: ErrorOptions) {
    super(message, options);
    this.hint = hint;
  }
}

/**
 * - `configuration`: the process's settings are incomplete or malformed (no region, a bad endpoint
 *   or proxy URL, no credentials anywhere in the chain); local mode exits 2.
 * - `access`: AWS answered, and refused who we are or what we asked; local mode exits 1.
 */
export type AwsProblemKind = "configuration" | "access";

/** An error that retrying cannot heal until something outside the process changes. */
export interface AwsProblem {
  kind: AwsProblemKind;
  /** The label of the error (as `errorCode`). */
  code: string;
  /** What is wrong, in a few words, without secrets. */
  summary: string;
  /** What to change. */
  hint: string;
  /** The exit code of a command that gives up on it. */
  exitCode: 1 | 2;
}

const CREDENTIALS_HINT =
  "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (with ~/.aws/config or AWS_CONFIG_FILE), " +
  "or in Kubernetes give the poller's ServiceAccount an IAM role (IRSA or EKS Pod Identity)";

/** AWS answers that mean "these credentials are not accepted" or "not allowed to do this". */
const ACCESS_CODES = new Map<string, { summary: string; hint: string }>(
  Object.entries({
    AccessDeniedException: {
      summary: "AWS denied the call (AccessDeniedException)",
      hint: "allow states:CreateActivity, states:GetActivityTask, states:SendTaskSuccess, states:SendTaskFailure and states:SendTaskHeartbeat on the activity to the IAM role or user in use",
    },
    AccessDenied: {
      summary: "AWS denied the call (AccessDenied)",
      hint: "check the IAM role's trust policy (for IRSA / Pod Identity: the ServiceAccount and the OIDC provider) and its permissions",
    },
    UnrecognizedClientException: {
      summary: "AWS does not recognise the access key (UnrecognizedClientException)",
      hint: `the access key ID is wrong, deleted or for another partition: ${CREDENTIALS_HINT}`,
    },
    InvalidClientTokenId: {
      summary: "AWS does not recognise the access key (InvalidClientTokenId)",
      hint: `the access key ID is wrong, deleted or for another partition: ${CREDENTIALS_HINT}`,
    },
    InvalidSignatureException: {
      summary: "AWS rejected the request signature (InvalidSignatureException)",
      hint: "the secret access key does not match the access key ID (or the clock is far off): fix AWS_SECRET_ACCESS_KEY or the profile's aws_secret_access_key",
    },
    SignatureDoesNotMatch: {
      summary: "AWS rejected the request signature (SignatureDoesNotMatch)",
      hint: "the secret access key does not match the access key ID (or the clock is far off): fix AWS_SECRET_ACCESS_KEY or the profile's aws_secret_access_key",
    },
    ExpiredTokenException: {
      summary: "the AWS session credentials have expired (ExpiredTokenException)",
      hint: "refresh them (e.g. `aws sso login`, or new AWS_SESSION_TOKEN values); IRSA and Pod Identity refresh by themselves",
    },
    InvalidIdentityToken: {
      summary: "STS rejected the web identity token (InvalidIdentityToken)",
      hint: "check the cluster's OIDC provider in IAM and the ServiceAccount's eks.amazonaws.com/role-arn annotation",
    },
  }),
);

/**
 * The problem behind `error` when retrying cannot heal it, else undefined. Recognised: the SDK's
 * "Region is missing" and "Region not accepted", a credential chain that found nothing, an endpoint
 * URL that does not parse, our AwsConfigError (proxy variables), a proxy asking for authentication
 * (407), an unreadable web identity token file, and AWS's access and signature refusals.
 */
export function nonHealingProblem(
  error: unknown,
  env: NodeJS.ProcessEnv = process.env,
): AwsProblem | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as ErrorLike & { message?: unknown; path?: unknown; hint?: unknown };
  const code = errorCode(error);
  const message = typeof e.message === "string" ? e.message : "";
  const config = (summary: string, hint: string, label = code): AwsProblem => ({
    kind: "configuration",
    code: label,
    summary,
    hint,
    exitCode: 2,
  });
  if (error instanceof AwsConfigError) return config(error.message, error.hint);
  // The SDK throws plain Errors for these, before any request: their messages are all there is.
  if (message === "Region is missing")
    return config(
      "no AWS region configured",
      "set AWS_REGION (or AWS_DEFAULT_REGION), region: in the sources file, the source's region, or region in the AWS profile",
      "RegionMissing",
    );
  if (message.startsWith("Region not accepted"))
    return config(
      `the AWS region is not valid (${message})`,
      "set AWS_REGION to a region name such as us-east-1",
      "InvalidRegion",
    );
  if (code === "CredentialsProviderError")
    return config(`no AWS credentials found (${message})`, CREDENTIALS_HINT);
  // An AWS_ENDPOINT_URL_SFN / AWS_ENDPOINT_URL (or profile endpoint_url) that is not a URL.
  if (code === "ERR_INVALID_URL")
    return config(
      "the Step Functions endpoint URL is not a valid URL",
      "fix AWS_ENDPOINT_URL_SFN or AWS_ENDPOINT_URL (e.g. http://127.0.0.1:8083), or unset it to use AWS",
      "InvalidEndpointUrl",
    );
  // IRSA: the token file is mounted by Kubernetes; a path that cannot be read is a setup problem.
  const tokenFile = env.AWS_WEB_IDENTITY_TOKEN_FILE;
  if ((code === "ENOENT" || code === "EACCES") && tokenFile && e.path === tokenFile)
    return config(
      `the web identity token file cannot be read (${code})`,
      "check AWS_WEB_IDENTITY_TOKEN_FILE and the projected ServiceAccount token volume (IRSA)",
    );
  if (e.$metadata?.httpStatusCode === 407)
    return config(
      "the HTTP proxy asks for authentication (407)",
      "put the proxy's credentials in HTTPS_PROXY / HTTP_PROXY (http://user:password@host:port), or exempt the endpoint with NO_PROXY",
    );
  const access = ACCESS_CODES.get(code);
  if (access) return { kind: "access", code, ...access, exitCode: 1 };
  return undefined;
}
