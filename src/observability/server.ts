/**
 * The process's HTTP endpoint for Kubernetes probes and Prometheus: `/metrics`, `/healthz` (the
 * process is alive) and `/readyz` (it can take tasks now; the body says why not).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { describeError, getLogger } from "./logger.ts";

export interface Readiness {
  ready: boolean;
  /** Why not, when not ready. */
  reasons: string[];
}

export interface ObservabilityServer {
  port: number;
  close(): Promise<void>;
}

export async function startObservabilityServer(options: {
  port: number;
  host?: string;
  registry: Registry;
  readiness: () => Readiness;
}): Promise<ObservabilityServer> {
  const log = getLogger("http");
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const readiness = options.readiness();
      res
        .writeHead(readiness.ready ? 200 : 503, { "content-type": "text/plain" })
        .end(readiness.ready ? "ok\n" : `not ready: ${readiness.reasons.join("; ")}\n`);
    } else if (path === "/metrics") {
      options.registry
        .metrics()
        .then((body) => res.writeHead(200, { "content-type": options.registry.contentType }).end(body))
        .catch((error: unknown) => {
          log.error("collecting metrics failed", { error: describeError(error) });
          res.writeHead(500).end();
        });
    } else {
      res
        .writeHead(404, { "content-type": "text/plain" })
        .end("not found: try /metrics, /healthz or /readyz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info("serving /metrics, /healthz and /readyz", { port });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
