/**
 * Fault injection: throttling, server errors and slow answers on chosen AWS actions, so that tests can
 * see how clients (the SDK's retries, our poller's backoff and reports) behave when AWS misbehaves.
 * Rules are described in `FaultRule` (types.ts) and in the README.
 */
import { z } from "zod";
import { AwsError } from "./errors.ts";
import type { FaultKind, FaultRule } from "./types.ts";

/** Validates a rule list from the side API; unknown keys are refused so that typos do not go unseen. */
export const faultRulesSchema = z.array(
  z.strictObject({
    actions: z.array(z.string().min(1)).optional(),
    throttleRate: z.number().min(0).max(1).optional(),
    errorRate: z.number().min(0).max(1).optional(),
    errorStatus: z.union([z.literal(500), z.literal(503)]).optional(),
    accessDeniedRate: z.number().min(0).max(1).optional(),
    delayMs: z.number().min(0).max(600_000).optional(),
    remaining: z.number().int().min(0).optional(),
  }),
);

/** What the rules decided for one request. */
export interface FaultDecision {
  /** Wait this long before handling (or failing) the request. */
  delayMs: number;
  /** Answer this instead of handling the request. */
  failure?: AwsError;
}

/**
 * A small seedable generator (mulberry32): tests that want a reproducible mix of failures at rates
 * between 0 and 1 pass a seed; rates 0 and 1 are exact with any generator.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function emptyCounts(): Record<FaultKind, number> {
  return { throttle: 0, accessDenied: 0, internalFailure: 0, serviceUnavailable: 0, delay: 0 };
}

/** The current rule list and the faults injected so far. */
export class FaultInjector {
  readonly #random: () => number;
  #rules: FaultRule[] = [];
  #counts = emptyCounts();

  /** `random` returns numbers in [0, 1); a rate r fails a request when random() < r. */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Replace the rule list (copied: the caller's objects are not changed by `remaining` counting). */
  setRules(rules: readonly FaultRule[]): void {
    this.#rules = rules
      .filter((rule) => rule.remaining === undefined || rule.remaining > 0)
      .map((rule) => ({ ...rule, ...(rule.actions ? { actions: [...rule.actions] } : {}) }));
  }

  /** The rules still in force, with their `remaining` counts as they are now. */
  rules(): FaultRule[] {
    return this.#rules.map((rule) => ({ ...rule }));
  }

  clear(): void {
    this.#rules = [];
  }

  /** Faults injected so far, per kind. */
  counts(): Record<FaultKind, number> {
    return { ...this.#counts };
  }

  resetCounts(): void {
    this.#counts = emptyCounts();
  }

  /** Apply the rules to one request of `action`. */
  decide(action: string): FaultDecision {
    let delayMs = 0;
    let failure: AwsError | undefined;
    for (const rule of this.#rules) {
      if (rule.actions && !rule.actions.includes(action)) continue;
      if (rule.remaining !== undefined) rule.remaining -= 1;
      if (rule.delayMs) {
        delayMs += rule.delayMs;
        this.#counts.delay += 1;
      }
      failure = this.#roll(rule);
      if (failure) break;
    }
    this.#rules = this.#rules.filter((rule) => rule.remaining === undefined || rule.remaining > 0);
    return failure ? { delayMs, failure } : { delayMs };
  }

  #roll(rule: FaultRule): AwsError | undefined {
    if (rule.throttleRate && this.#random() < rule.throttleRate) {
      this.#counts.throttle += 1;
      return new AwsError("ThrottlingException", "Rate exceeded");
    }
    if (rule.accessDeniedRate && this.#random() < rule.accessDeniedRate) {
      this.#counts.accessDenied += 1;
      return new AwsError(
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/emulator is not authorized to perform this action (injected fault)",
      );
    }
    if (rule.errorRate && this.#random() < rule.errorRate) {
      if (rule.errorStatus === 503) {
        this.#counts.serviceUnavailable += 1;
        return new AwsError("ServiceUnavailable", "Service is unavailable (injected fault)", 503);
      }
      this.#counts.internalFailure += 1;
      return new AwsError("InternalFailure", "Internal failure (injected fault)", 500);
    }
    return undefined;
  }
}
