/**
 * Resolves activity names to ARNs for the operator with CreateActivity (idempotent by name: it returns
 * the existing ARN), one Step Functions client per region and one answer cached per region and name
 * for ARN_CACHE_MS. Pollers get the ARN in SFN_ACTIVITY_ARN so that they never call CreateActivity.
 *
 * AWS's refusals become an ActivityError whose reason the ActivityResolved condition shows; the
 * reconcile is retried with the work queue's backoff, never in a crash loop.
 */
import { errorCode, isRetryable, nonHealingProblem } from "../aws/errors.ts";
import { StepFunctions } from "../aws/step-functions.ts";
import { describeError, getLogger } from "../observability/logger.ts";
import { ActivityError } from "./reconcile.ts";

/**
 * How long a resolved ARN is trusted. An activity deleted and created again in AWS keeps its name but
 * gets a new ARN; asking again now and then (CreateActivity is idempotent and cheap) heals that.
 */
const ARN_CACHE_MS = 10 * 60_000;

/** CreateActivity's own refusals of a name. */
const NAME_CODES = new Set(["InvalidName", "ValidationException", "TooManyTags", "ActivityLimitExceeded"]);

export class ActivityResolver {
  readonly #identity: string;
  readonly #clients = new Map<string, StepFunctions>();
  readonly #arns = new Map<string, { arn: string; until: number }>();
  readonly #log = getLogger("activities");

  constructor(identity: string) {
    this.#identity = identity;
  }

  async resolve(name: string, region: string | undefined): Promise<string> {
    const key = `${region ?? ""}/${name}`;
    const cached = this.#arns.get(key);
    if (cached !== undefined && cached.until > Date.now()) return cached.arn;
    let arn: string;
    try {
      arn = await this.#client(region).resolveActivityArn(name);
    } catch (error) {
      throw describeActivityError(name, region, error);
    }
    this.#arns.set(key, { arn, until: Date.now() + ARN_CACHE_MS });
    this.#log.info("activity resolved", { activity: name, region, activityArn: arn });
    return arn;
  }

  close(): void {
    for (const client of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }

  #client(region: string | undefined): StepFunctions {
    const key = region ?? "";
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = new StepFunctions({
        ...(region !== undefined && { region }),
        workerName: this.#identity,
        maxConcurrentPolls: 1,
        // The work queue retries with its own backoff: the SDK need not hold a worker for long.
        maxAttempts: 3,
        logger: this.#log,
      });
      this.#clients.set(key, client);
    }
    return client;
  }
}

/** The condition's reason and message for a failed CreateActivity. */
export function describeActivityError(
  name: string,
  region: string | undefined,
  error: unknown,
): ActivityError {
  const code = errorCode(error);
  const where = `activity ${JSON.stringify(name)}${region ? ` in ${region}` : ""}`;
  const problem = nonHealingProblem(error);
  if (problem !== undefined) {
    const reason = problem.kind === "access" ? "AccessDenied" : "AwsConfiguration";
    return new ActivityError(
      reason,
      `CreateActivity for ${where} failed: ${problem.summary}; ${problem.hint}`,
    );
  }
  if (NAME_CODES.has(code)) {
    return new ActivityError(
      "ActivityRefused",
      `AWS refused to create ${where} (${code}): ${describeError(error)}`,
    );
  }
  if (isRetryable(error)) {
    const reason = /thrott|TooManyRequests|RequestLimit/i.test(code) ? "Throttled" : "AwsUnavailable";
    return new ActivityError(reason, `CreateActivity for ${where} failed (${code}); retrying with backoff`);
  }
  return new ActivityError(
    "AwsError",
    `CreateActivity for ${where} failed (${code}): ${describeError(error)}`,
  );
}
