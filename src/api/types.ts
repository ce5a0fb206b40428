/**
 * The settings one poller works with, whatever they came from: a local-mode sources file
 * (src/local/config.ts), the poller's environment (src/poller/env.ts), or, later, a
 * StepFunctionSource object. Durations are already resolved to milliseconds here.
 */
export interface PollerSettings {
  /** Name used in logs and metric labels: the activity name locally, `namespace/name` in a cluster. */
  sourceName: string;
  /** Step Functions activity name (resolved to an ARN with CreateActivity when no ARN is given). */
  activityName: string;
  /** The activity ARN when already resolved (the operator hands it to the pollers it runs). */
  activityArn?: string;
  /** Full URL tasks are POSTed to: the target's base URL joined with the path. */
  targetUrl: string;
  /** Tasks in flight at once across every poller of this source. */
  maxConcurrency: number;
  /** Concurrent task loops in one poller process. */
  concurrencyPerPoller: number;
  /** How long one task's HTTP call may take, in ms. */
  requestTimeoutMs: number;
  /** How often SendTaskHeartbeat is sent while a task is in flight, in ms. */
  heartbeatIntervalMs: number;
  /**
   * Headers sent with every call to the target (API keys, tokens), already validated. The values are
   * secrets: log the names only, never the values or this object.
   */
  targetHeaders?: Readonly<Record<string, string>>;
}

/** Join a base URL and a request path without losing a path prefix on the base (`new URL` would). */
export function joinTargetUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}
