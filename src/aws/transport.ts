/**
 * The HTTP transport of our AWS SDK clients: the SDK's own `NodeHttpHandler`, configured per
 * connection pool, with the proxy chosen per endpoint from HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
 *
 * Why NodeHttpHandler and nothing of our own: it sets the socket timeout on every request. A
 * hand-written handler that relied on the agent's socket timeout lost tasks: when the endpoint or a
 * proxy answers `Keep-Alive: timeout=5`, Node lowers a pooled socket's timeout to 4 s and does not
 * restore it when the socket is reused (nodejs/node#53458), so a long poll on a reused socket was
 * given up after 4 s while AWS could still hand it a task (test/integration/aws-transport.test.ts).
 * It also names ECONNRESET, EPIPE, ETIMEDOUT and its own timeouts `TimeoutError`, which is what the
 * SDK's retry strategy treats as transient.
 *
 * Why a routing layer above it: NodeHttpHandler picks its agent by protocol only, and whether a
 * proxy applies depends on the host (NO_PROXY). The endpoint is resolved by the SDK per request
 * (region, AWS_ENDPOINT_URL_SFN, profile), and the same handler also carries the STS calls of the
 * credential chain (IRSA), which go to another host. So each request's origin is looked up once
 * with proxy-from-env and sent through one NodeHttpHandler per proxy (usually exactly one).
 */
import http from "node:http";
import https from "node:https";
import type { HttpHandler, HttpRequest, HttpResponse } from "@smithy/core/protocols";
import { NodeHttpHandler, type NodeHttpHandlerOptions } from "@smithy/node-http-handler";
import type { HttpHandlerOptions, Logger as SdkLogger } from "@smithy/types";
import { HttpProxyAgent } from "http-proxy-agent";
import { HttpsProxyAgent } from "https-proxy-agent";
import { getProxyForUrl } from "proxy-from-env";
import { getLogger, type Logger } from "../observability/logger.ts";
import { AwsConfigError } from "./errors.ts";

/** How long a new connection (to the endpoint, or to the proxy and through its CONNECT) may take. */
export const CONNECT_TIMEOUT_MS = 5_000;

export interface PoolOptions {
  /** For logs: "poll" or "report". */
  name: string;
  /** Connections per endpoint (the agents' maxSockets). */
  maxSockets: number;
  /**
   * How long a call may wait for its answer's headers, and how long its socket may stay silent
   * (NodeHttpHandler's requestTimeout and socketTimeout); both fail the attempt with TimeoutError.
   */
  timeoutMs: number;
  /** See CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/** Origins whose route was logged: once per process, however many clients and pools use them. */
const loggedRoutes = new Set<string>();

/** One pool's handler for every endpoint its client reaches; see the module comment. */
export class AwsRequestHandler implements HttpHandler<NodeHttpHandlerOptions> {
  readonly metadata = { handlerProtocol: "http/1.1" };
  readonly #options: PoolOptions;
  readonly #log: Logger;
  /** By proxy URL; "" is the direct route. */
  readonly #handlers = new Map<string, NodeHttpHandler>();
  /** By origin ("https://states.us-east-1.amazonaws.com"): the proxy URL, "" for none. */
  readonly #routes = new Map<string, string>();

  constructor(options: PoolOptions) {
    this.#options = options;
    this.#log = options.logger ?? getLogger("aws");
  }

  handle(request: HttpRequest, options?: HttpHandlerOptions): Promise<{ response: HttpResponse }> {
    let handler: NodeHttpHandler;
    try {
      handler = this.#handlerFor(originOf(request));
    } catch (error) {
      return Promise.reject(error);
    }
    return handler.handle(request, options);
  }

  /**
   * The SDK hands its logger and a default socket timeout to the handler; both are fixed here at
   * construction (NodeHttpHandler keeps a configured logger and socketTimeout over them anyway).
   */
  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): NodeHttpHandlerOptions {
    return {
      connectionTimeout: this.#options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      requestTimeout: this.#options.timeoutMs,
      socketTimeout: this.#options.timeoutMs,
    };
  }

  destroy(): void {
    for (const handler of this.#handlers.values()) handler.destroy();
    this.#handlers.clear();
  }

  #proxyFor(origin: string): string {
    let proxy = this.#routes.get(origin);
    if (proxy === undefined) {
      proxy = proxyForUrl(origin);
      this.#routes.set(origin, proxy);
    }
    return proxy;
  }

  #handlerFor(origin: string): NodeHttpHandler {
    const proxy = this.#proxyFor(origin);
    if (!loggedRoutes.has(origin)) {
      loggedRoutes.add(origin);
      if (proxy)
        this.#log.info("AWS calls go through an HTTP proxy", {
          endpoint: origin,
          proxy: redactProxyUrl(proxy),
        });
      else this.#log.info("AWS calls go direct (no proxy applies)", { endpoint: origin });
    }
    let handler = this.#handlers.get(proxy);
    if (!handler) {
      handler = this.#newHandler(proxy);
      this.#handlers.set(proxy, handler);
    }
    return handler;
  }

  #newHandler(proxy: string): NodeHttpHandler {
    const { maxSockets, timeoutMs } = this.#options;
    // keepAlive: calls reuse connections (TLS set-up costs more than most calls). The agents' own
    // `timeout` closes connections left idle in the pool; NodeHttpHandler sets each call's socket
    // timeout itself, so a lowered timeout of a reused socket (see above) does not last into a call.
    const agentOptions = { keepAlive: true, maxSockets, timeout: timeoutMs };
    let proxyUrl: URL | undefined;
    if (proxy) {
      try {
        proxyUrl = new URL(proxy);
      } catch (cause) {
        throw new AwsConfigError(
          `the proxy for AWS calls is not a valid URL: ${redactProxyUrl(proxy)}`,
          "fix HTTPS_PROXY / HTTP_PROXY (e.g. http://proxy.example:3128), or unset them",
          { cause },
        );
      }
      if (proxyUrl.protocol !== "http:" && proxyUrl.protocol !== "https:")
        throw new AwsConfigError(
          `the proxy for AWS calls must be an http:// or https:// URL, not ${proxyUrl.protocol}`,
          "fix HTTPS_PROXY / HTTP_PROXY (e.g. http://proxy.example:3128), or unset them",
        );
    }
    return new NodeHttpHandler({
      // The proxy agents are http.Agents: they keep keep-alive and maxSockets. HTTPS goes through a
      // CONNECT tunnel (TLS end to end, verified against Node's CA store); HTTP as absolute-URI
      // requests to the proxy.
      httpAgent: proxyUrl ? new HttpEndpointProxyAgent(proxyUrl, agentOptions) : new http.Agent(agentOptions),
      httpsAgent: proxyUrl
        ? new HttpsEndpointProxyAgent(proxyUrl, agentOptions)
        : new https.Agent(agentOptions),
      connectionTimeout: this.#options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      socketTimeout: timeoutMs,
      requestTimeout: timeoutMs,
      // Without it a request timeout is only a warning.
      throwOnRequestTimeout: true,
      logger: sdkLogger(this.#log.child({ pool: this.#options.name })),
    });
  }
}

/*
 * The proxy agents guess whether a request is for an https endpoint from the request's options, or
 * else from the call stack (is node:https on it?). NodeHttpHandler's options carry no protocol, and
 * the agent computes a socket's pool name again when the socket is freed, asynchronously, where the
 * stack guess says "http": freed tunnels were filed under another name than the one looked up, so
 * no tunnel was ever reused (a CONNECT and a TLS handshake per call). NodeHttpHandler uses its
 * httpsAgent for https: requests only and its httpAgent for http: only, so each agent knows.
 */
class HttpsEndpointProxyAgent extends HttpsProxyAgent<string> {
  override isSecureEndpoint(): boolean {
    return true;
  }
}

class HttpEndpointProxyAgent extends HttpProxyAgent<string> {
  override isSecureEndpoint(): boolean {
    return false;
  }
}

function originOf(request: HttpRequest): string {
  const port = request.port ? `:${request.port}` : "";
  return `${request.protocol}//${request.hostname}${port}`;
}

/**
 * proxy-from-env's answer for `url`, except that a proxy variable without a scheme means http://,
 * as for curl (proxy-from-env would use the endpoint's scheme, i.e. TLS to the proxy for https).
 */
export function proxyForUrl(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const proxy = getProxyForUrl(url);
  if (!proxy) return "";
  const scheme = new URL(url).protocol.slice(0, -1);
  const raw =
    env[`${scheme}_proxy`] || env[`${scheme.toUpperCase()}_PROXY`] || env.all_proxy || env.ALL_PROXY || "";
  return raw && !raw.includes("://") ? `http://${raw}` : proxy;
}

/** A proxy URL fit for logs and errors: user and password replaced. */
export function redactProxyUrl(proxy: string): string {
  try {
    const url = new URL(proxy);
    if (url.username || url.password) {
      url.username = "***";
      url.password = url.password ? "***" : "";
    }
    return url.href.replace(/\/$/, "");
  } catch {
    // Not a URL: keep only what cannot be a credential (nothing before an "@").
    return proxy.replace(/^(.*:\/\/)?[^@/]*@/, "$1***@");
  }
}

/** NodeHttpHandler's warnings (socket pool at capacity) into our log. */
function sdkLogger(log: Logger): SdkLogger {
  return {
    debug: (...content: unknown[]) => log.debug(content.map(String).join(" ")),
    info: (...content: unknown[]) => log.info(content.map(String).join(" ")),
    warn: (...content: unknown[]) => log.warn(content.map(String).join(" ")),
    error: (...content: unknown[]) => log.error(content.map(String).join(" ")),
  };
}
