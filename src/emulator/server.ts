/**
 * The emulator's HTTP server: AWS Step Functions' JSON protocol on `POST /` and the side API under
 * `/_emulator/`, on one port. Start it with `startEmulator`, point the AWS SDK at `url`
 * (`AWS_ENDPOINT_URL_SFN` or the client's `endpoint`), and close it when done.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { getLogger } from "../observability/logger.ts";
import { EmulatorCore } from "./core.ts";
import { AwsError } from "./errors.ts";
import { seededRandom } from "./faults.ts";
import { sendJson } from "./http.ts";
import { AWS_JSON_CONTENT_TYPE, handleAwsRequest } from "./protocol.ts";
import { handleSideApiRequest, SIDE_API_PREFIX } from "./side-api.ts";

/** How to run the emulator. Every field is optional. */
export interface EmulatorOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on; 127.0.0.1 by default (the emulator has no authentication). */
  host?: string;
  /** How long GetActivityTask waits for a task before answering empty; 60 as at AWS. Fractions allowed. */
  longPollSeconds?: number;
  /** Region in the ARNs; us-east-1 by default. */
  region?: string;
  /** Account id in the ARNs; 123456789012 by default. */
  accountId?: string;
  /** Waiting GetActivityTask calls allowed per activity before ActivityWorkerLimitExceeded; 1000 as at AWS. */
  maxPollersPerActivity?: number;
  /**
   * Whether a task may go to a long poll whose client has already gone away (and be lost until its
   * timeout), as at AWS. Default true: a poller that aborts polls should fail its tests.
   */
  handToDisconnectedPollers?: boolean;
  /** Closed tasks remembered before the oldest are forgotten; 100,000 by default. */
  retainClosedTasks?: number;
  /** Seed of the generator that rolls fault rates; Math.random when absent. */
  randomSeed?: number;
}

/** A started emulator. */
export interface RunningEmulator {
  /** Base URL, e.g. `http://127.0.0.1:45678` (the SDK endpoint and the side API's base). */
  readonly url: string;
  readonly port: number;
  /** The emulator's state, for in-process tests that want it without HTTP. */
  readonly state: EmulatorCore;
  /** Stop: open long polls are answered empty, timers cleared, connections closed. */
  close(): Promise<void>;
}

/** How long `close()` lets answers to ended long polls flush before cutting connections. */
const CLOSE_GRACE_MS = 250;

/** Start an emulator and resolve once it listens. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const longPollSeconds = options.longPollSeconds ?? 60;
  if (!(longPollSeconds > 0)) throw new Error("longPollSeconds must be positive");
  const core = new EmulatorCore({
    region: options.region ?? "us-east-1",
    accountId: options.accountId ?? "123456789012",
    longPollSeconds,
    maxPollersPerActivity: options.maxPollersPerActivity ?? 1000,
    handToDisconnectedPollers: options.handToDisconnectedPollers ?? true,
    retainClosedTasks: options.retainClosedTasks ?? 100_000,
    random: options.randomSeed === undefined ? Math.random : seededRandom(options.randomSeed),
  });
  const log = getLogger("emulator");
  const closing = new AbortController();
  const inFlight = new Set<Promise<void>>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (closing.signal.aborted) {
      const error = new AwsError("ServiceUnavailable", "The emulator is shutting down", 503);
      sendJson(res, 503, error.toBody(), { Connection: "close" }, AWS_JSON_CONTENT_TYPE);
      return;
    }
    const handling = req.url?.startsWith(`${SIDE_API_PREFIX}/`)
      ? handleSideApiRequest(core, log, req, res)
      : handleAwsRequest({ core, log, closing: closing.signal }, req, res);
    inFlight.add(handling);
    void handling.finally(() => inFlight.delete(handling));
  });
  // Long polls hold a request open for up to longPollSeconds: no server-side timeouts below that.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info("Step Functions emulator listening", {
    url,
    longPollSeconds,
    region: options.region ?? "us-east-1",
  });

  let closed: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    state: core,
    close() {
      closed ??= (async () => {
        closing.abort();
        core.close();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise((r) => setTimeout(r, CLOSE_GRACE_MS)),
        ]);
        server.closeAllConnections();
        await stopped;
        log.info("Step Functions emulator stopped", { url });
      })();
      return closed;
    },
  };
}
