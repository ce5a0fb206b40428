/**
 * What a long-running poller says about AWS errors that retrying cannot heal (errors.ts). It keeps
 * retrying (credentials can appear later: a token mounted after start, a role trust fixed), but
 * says what to fix at warn level: when the problem first shows, when it changes, and then every
 * `repeatMs` while it lasts, not on every retry; and once when calls work again.
 */
import type { Logger } from "../observability/logger.ts";
import type { AwsProblem } from "./errors.ts";

export const PROBLEM_REPEAT_MS = 5 * 60_000;

export class AwsProblemLog {
  readonly #log: Logger;
  readonly #repeatMs: number;
  readonly #now: () => number;
  #shown: { key: string; at: number; repeats: number } | undefined;

  constructor(log: Logger, options: { repeatMs?: number; now?: () => number } = {}) {
    this.#log = log;
    this.#repeatMs = options.repeatMs ?? PROBLEM_REPEAT_MS;
    this.#now = options.now ?? Date.now;
  }

  /** A call failed with `problem`. */
  failed(problem: AwsProblem, api: string): void {
    const now = this.#now();
    const key = `${problem.code}\n${problem.hint}`;
    const shown = this.#shown;
    if (shown && shown.key === key && now - shown.at < this.#repeatMs) {
      shown.repeats++;
      return;
    }
    this.#log.warn(`${problem.summary}: ${problem.hint}; retrying with backoff`, {
      api,
      code: problem.code,
      ...(shown?.key === key ? { failuresSinceLastWarning: shown.repeats } : {}),
    });
    this.#shown = { key, at: now, repeats: 0 };
  }

  /** A call succeeded after failures. */
  recovered(): void {
    if (!this.#shown) return;
    this.#log.info("AWS calls work again");
    this.#shown = undefined;
  }
}
