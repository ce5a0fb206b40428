/**
 * Defaults and limits of a source's settings, shared by the local-mode file, the poller's environment
 * and the StepFunctionSource CRD, so that all three behave alike.
 */

/** One task at a time across the cluster unless asked otherwise (the seed's default). */
export const DEFAULT_MAX_CONCURRENCY = 1;
export const DEFAULT_CONCURRENCY_PER_POLLER = 1;

/**
 * AWS allows at most 1,000 concurrent GetActivityTask pollers per activity ARN; since every poll holds a
 * permit, a larger limit could never be used.
 */
export const MAX_MAX_CONCURRENCY = 1000;
export const MAX_CONCURRENCY_PER_POLLER = 1000;

/**
 * Five minutes: long enough for most synchronous HTTP work, short enough that a hung target does not
 * hold a permit for the whole activity timeout.
 */
export const DEFAULT_REQUEST_TIMEOUT = "5m";
export const MIN_REQUEST_TIMEOUT_MS = 100;
export const MAX_REQUEST_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/**
 * Ten seconds: well below the HeartbeatSeconds a state machine typically sets (30 s and up), and cheap
 * (SendTaskHeartbeat has a refill of hundreds per second per account).
 */
export const DEFAULT_HEARTBEAT_INTERVAL = "10s";
export const MIN_HEARTBEAT_INTERVAL_MS = 1000;
export const MAX_HEARTBEAT_INTERVAL_MS = 60 * 60 * 1000;

/** AWS's limits on the fields we send. */
export const AWS_LIMITS = {
  activityNameLength: 80,
  workerNameLength: 80,
  outputBytes: 262_144,
  errorLength: 256,
  causeLength: 32_768,
  taskTokenLength: 2048,
} as const;

/**
 * Characters AWS refuses in resource names: white space, brackets, wildcards, special characters
 * and control characters (see the CreateActivity API reference).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
export const ACTIVITY_NAME_PATTERN = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/;

/**
 * ACTIVITY_NAME_PATTERN for Go's RE2 (the API server checks CRD patterns with it), accepting exactly the
 * same names (test/unit/crd.test.ts compares the two on every character of the Basic Multilingual Plane).
 * Spelt differently because the two engines disagree: Go's `\s` is ASCII white space only, where
 * JavaScript's is Unicode's (`\p{Z}`, U+FEFF and the ASCII controls, listed here instead), and Go has no
 * `\uXXXX` escape (`\xHH` reads the same in both). Lengths count code points in Go and UTF-16 code units
 * in JavaScript, so only a name with characters outside the BMP can pass one and not the other.
 */
export const ACTIVITY_NAME_RE2_PATTERN =
  '^[^\\p{Z}\\x{FEFF}<>{}\\[\\]?*"#%\\\\^|~`$&,;:/\\x00-\\x1f\\x7f-\\x9f]{1,80}$';
