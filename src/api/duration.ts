/**
 * Duration strings in the Go / Kubernetes style ("500ms", "90s", "1h30m", "2m30.5s"), as used by
 * `requestTimeout` and `heartbeatInterval` in every form of a source.
 *
 * Hand-written rather than taken from a library: what we accept has to be exactly what the CRD's schema
 * pattern (DURATION_PATTERN) accepts, so that an object the API server admits never fails here and vice
 * versa; libraries such as `ms` accept other forms ("2 days", bare numbers). It is small enough to own.
 *
 * Compared with Go's time.ParseDuration we deliberately accept less: no sign (a negative timeout means
 * nothing here), no "ns"/"us"/"µs" (timers have millisecond resolution), no bare "0", and every number
 * needs digits on both sides of a decimal point.
 */

/** Units we accept, with their length in milliseconds. "ms" is listed first so a regex tries it before "m". */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
type Unit = keyof typeof UNIT_MS;

/**
 * The accepted syntax as a regular-expression source, for a CRD's OpenAPI `pattern` (ECMA-262 and Go's
 * RE2 both read it the same way). One or more `<number><unit>` parts, e.g. "1h30m" or "2.5s".
 */
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";

/** DURATION_PATTERN compiled. */
export const DURATION_REGEX = new RegExp(DURATION_PATTERN);

/** One `<number><unit>` part; the unit is any run of letters so that unknown units can be named. */
const PART = /([0-9]+)(?:\.([0-9]+))?([a-zA-Zµμ]*)/y;

/** Thrown for a string that is not an accepted duration; the message reads well after "field: ". */
export class DurationError extends Error {
  override name = "DurationError";
}

const EXAMPLES = 'such as "30s", "5m" or "1h30m"';

/**
 * Parse a duration string into milliseconds, rounded to the nearest millisecond (so "1.5ms" is 2).
 * Accepts exactly what DURATION_PATTERN matches; throws DurationError, saying what is wrong, otherwise.
 */
export function parseDuration(text: string): number {
  if (!DURATION_REGEX.test(text)) throw new DurationError(diagnose(text));
  let total = 0;
  PART.lastIndex = 0;
  for (let match = PART.exec(text); match !== null && match[0] !== ""; match = PART.exec(text)) {
    const [, whole = "", fraction = "", unit] = match;
    // Scale before dividing so that "2.3s" is exactly 2300, not 2299.9999999999995.
    const digits = Number(whole + fraction);
    total += (digits * UNIT_MS[unit as Unit]) / 10 ** fraction.length;
  }
  const ms = Math.round(total);
  if (!Number.isSafeInteger(ms)) throw new DurationError(`is too long, got "${text}"`);
  return ms;
}

/** Explain why `text` does not match DURATION_PATTERN, as precisely as we can. */
function diagnose(text: string): string {
  const got = `got ${JSON.stringify(text)}`;
  if (text === "") return `must be a duration ${EXAMPLES}, got an empty string`;
  if (/\s/.test(text)) return `must not contain spaces, ${got}`;
  if (text.startsWith("-")) return `must not be negative, ${got}`;
  if (/^[0-9]+(\.[0-9]+)?$/.test(text)) return `needs a unit (ms, s, m or h), ${got}`;
  PART.lastIndex = 0;
  for (let match = PART.exec(text); match !== null && match[0] !== ""; match = PART.exec(text)) {
    const unit = match[3] ?? "";
    if (unit === "" && PART.lastIndex === text.length) {
      return `needs a unit (ms, s, m or h) after every number, ${got}`;
    }
    if (unit === "") break;
    if (!Object.hasOwn(UNIT_MS, unit)) {
      const hint = ["ns", "us", "µs", "μs"].includes(unit)
        ? " (the finest unit is ms)"
        : " (use ms, s, m or h)";
      return `has an unknown unit "${unit}"${hint}, ${got}`;
    }
  }
  return `must be a duration ${EXAMPLES} (numbers with units ms, s, m or h, nothing else), ${got}`;
}

/**
 * Print milliseconds in the shortest form parseDuration reads back to the same value: "1h30m", "1m30.5s",
 * "500ms", "0s". Throws RangeError for negative or non-integer input, which has no such form.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError(`a duration must be a whole, non-negative number of milliseconds, got ${ms}`);
  }
  if (ms === 0) return "0s";
  if (ms < UNIT_MS.s) return `${ms}ms`;
  const hours = Math.floor(ms / UNIT_MS.h);
  const minutes = Math.floor((ms % UNIT_MS.h) / UNIT_MS.m);
  const millis = ms % UNIT_MS.m;
  let text = "";
  if (hours > 0) text += `${hours}h`;
  if (minutes > 0) text += `${minutes}m`;
  if (millis > 0) {
    const seconds = Math.floor(millis / UNIT_MS.s);
    const rest = millis % UNIT_MS.s;
    // Either "30.5s" or "30s1ms", whichever is shorter ("1m0.5s", but "1m1ms"); Go's form on a tie.
    const decimal = `${seconds}.${String(rest).padStart(3, "0").replace(/0+$/, "")}s`;
    const split = `${seconds > 0 ? `${seconds}s` : ""}${rest}ms`;
    if (rest === 0) text += `${seconds}s`;
    else text += split.length < decimal.length ? split : decimal;
  }
  return text;
}
