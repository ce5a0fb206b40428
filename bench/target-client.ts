/**
 * The benchmark's own worker processes (the bare v3 loop, the peer's task function) call the target
 * the same way: a plain node:http POST over a keep-alive agent, the answer read as UTF-8. One copy,
 * so the two yardsticks cannot drift apart.
 */
import http from "node:http";

/** A function that POSTs a body to `targetUrl` and resolves to the answer's body. */
export function targetPoster(targetUrl: string, maxSockets: number): (body: string) => Promise<string> {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const target = new URL(targetUrl);
  return (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: "POST",
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
}
