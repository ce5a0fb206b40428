/**
 * The benchmark's own worker processes (the bare v3 loop, the peer's task function) call the target
 * the same way: a plain node:http POST over a keep-alive agent, the answer read as UTF-8. One copy,
 * so the two yardsticks cannot drift apart. The bare loop can also call it through axios, the HTTP
 * client sfn-operator's target calls use (src/target/http-target.ts), for a yardstick on the same
 * HTTP client.
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

/**
 * The same POST through axios, set up as src/target/http-target.ts sets it up for a task (a
 * keep-alive agent, every status an answer, no redirects, the body as bytes, the answer as text);
 * without its per-call extras (timeout timer, abandonment, output cap, header decoding). axios is
 * imported here only, so that the processes that do not use it (the peer's) do not hold it.
 */
export async function axiosTargetPoster(
  targetUrl: string,
  maxSockets: number,
): Promise<(body: string) => Promise<string>> {
  const { default: axios } = await import("axios");
  const client = axios.create({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
    validateStatus: () => true,
    maxRedirects: 0,
    proxy: false,
    responseType: "text",
    transformResponse: [(data: unknown) => data],
    headers: { "content-type": "application/json" },
  });
  return async (body) => {
    const response = await client.post<string>(targetUrl, Buffer.from(body, "utf8"));
    return response.data;
  };
}
