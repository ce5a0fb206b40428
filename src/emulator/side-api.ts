/**
 * The side API under `/_emulator/`: what a state machine would do (enqueue tasks) and what a test
 * wants to see (task records, counters) or change (fault rules, reset). JSON in and out; errors are
 * `{"error": "..."}` with a 4xx status. Task tokens never appear here: clients get them only from
 * GetActivityTask, as at AWS.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { Logger } from "../observability/logger.ts";
import { type EmulatorCore, SideApiError } from "./core.ts";
import { faultRulesSchema } from "./faults.ts";
import { BodyTooLargeError, readBody, sendJson } from "./http.ts";
import { TASK_STATUSES, type TaskFilter, type TaskStatus } from "./types.ts";

/** Path prefix of the side API. */
export const SIDE_API_PREFIX = "/_emulator";

const enqueueSchema = z.strictObject({
  activityName: z.string().optional(),
  activityArn: z.string().optional(),
  input: z.unknown().optional(),
  heartbeatSeconds: z.number().optional(),
  timeoutSeconds: z.number().optional(),
  count: z.number().optional(),
});

const faultsBodySchema = z.union([faultRulesSchema, z.strictObject({ rules: faultRulesSchema })]);

const resetSchema = z.strictObject({ keepActivities: z.boolean().optional() });

interface Route {
  method: string;
  pattern: RegExp;
  handle: (core: EmulatorCore, match: RegExpExecArray, url: URL, body: unknown) => unknown;
}

const ROUTES: Route[] = [
  { method: "GET", pattern: /^\/health$/, handle: () => ({ status: "ok" }) },
  {
    method: "POST",
    pattern: /^\/tasks$/,
    handle: (core, _match, _url, body) => core.enqueue(parse(enqueueSchema, body ?? {})),
  },
  {
    method: "GET",
    pattern: /^\/tasks$/,
    handle: (core, _match, url) => ({ tasks: core.listTasks(taskFilter(core, url)) }),
  },
  {
    method: "GET",
    pattern: /^\/tasks\/([^/]+)$/,
    handle: (core, match) => core.getTask(decodeURIComponent(match[1] ?? "")),
  },
  { method: "GET", pattern: /^\/stats$/, handle: (core) => core.stats() },
  { method: "GET", pattern: /^\/faults$/, handle: (core) => ({ rules: core.faults.rules() }) },
  {
    method: "PUT",
    pattern: /^\/faults$/,
    handle: (core, _match, _url, body) => {
      const parsed = parse(faultsBodySchema, body);
      core.setFaults(Array.isArray(parsed) ? parsed : parsed.rules);
      return { rules: core.faults.rules() };
    },
  },
  {
    method: "DELETE",
    pattern: /^\/faults$/,
    handle: (core) => {
      core.clearFaults();
      return { rules: [] };
    },
  },
  {
    method: "POST",
    pattern: /^\/reset$/,
    handle: (core, _match, _url, body) => {
      core.reset(parse(resetSchema, body ?? {}));
      return {};
    },
  },
];

/** Serve one side API request. Never throws. */
export async function handleSideApiRequest(
  core: EmulatorCore,
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://emulator");
  const path = url.pathname.slice(SIDE_API_PREFIX.length).replace(/\/+$/, "");
  let status = 200;
  try {
    const bodyText = await readBody(req);
    const candidates = ROUTES.filter((route) => route.pattern.test(path));
    const route = candidates.find((candidate) => candidate.method === req.method);
    if (!route) {
      throw candidates.length > 0
        ? new SideApiError(405, `${req.method} not allowed on ${url.pathname}`)
        : new SideApiError(404, `no such endpoint: ${url.pathname}`);
    }
    const match = route.pattern.exec(path) as RegExpExecArray;
    const result = route.handle(core, match, url, parseBody(bodyText));
    sendJson(res, status, result);
  } catch (thrown) {
    status = thrown instanceof SideApiError ? thrown.status : thrown instanceof BodyTooLargeError ? 413 : 500;
    const message = thrown instanceof Error ? thrown.message : String(thrown);
    if (status === 500)
      log.error("side API request failed", { error: thrown instanceof Error ? thrown.stack : message });
    sendJson(res, status, { error: message });
  }
  log.debug("side API request", { method: req.method, path: url.pathname, status });
}

function parseBody(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new SideApiError(400, "request body is not valid JSON");
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) throw new SideApiError(400, z.prettifyError(result.error));
  return result.data;
}

/** `?activityArn=` or `?activityName=`, `?status=` and `?stepFuncTaskId=`. */
function taskFilter(core: EmulatorCore, url: URL): TaskFilter {
  const filter: TaskFilter = {};
  const arn = url.searchParams.get("activityArn");
  const name = url.searchParams.get("activityName");
  if (arn) filter.activityArn = arn;
  else if (name) filter.activityArn = core.activities.arnOf(name);
  const stepFuncTaskId = url.searchParams.get("stepFuncTaskId");
  if (stepFuncTaskId) filter.stepFuncTaskId = stepFuncTaskId;
  const status = url.searchParams.get("status");
  if (status) {
    if (!(TASK_STATUSES as readonly string[]).includes(status)) {
      throw new SideApiError(400, `status must be one of ${TASK_STATUSES.join(", ")}`);
    }
    filter.status = status as TaskStatus;
  }
  return filter;
}
