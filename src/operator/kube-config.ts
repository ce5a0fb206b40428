/**
 * A KubeConfig whose API calls share their connections.
 *
 * client-node 2.0.1 builds a new undici Agent for every request (KubeConfig.applySecurityAuthentication
 * creates a dispatcher each time), so every call opened a new TCP connection and made a new TLS
 * handshake, and the connection then sat idle in its throw-away agent until the keep-alive timeout.
 * The operator benchmark (bench/operator.ts) showed what that costs at scale: about 75 ms of CPU per
 * source in a burst (11 calls each) and an RSS that grew with the number of calls in flight; a plain
 * GET took 3.4-4.5 ms of CPU this way against 1.0-1.2 ms over a kept connection.
 *
 * Here the first dispatcher built for a cluster and user is kept and every later call, watches
 * included, goes through it; the one client-node has just built for that call is closed unused (it
 * has no connection yet). Headers are still set per call by client-node, so a rotated ServiceAccount
 * token is picked up as before. The key is the one client-node's own agent cache (for WebSockets)
 * uses: the cluster's and the user's names; a client certificate replaced under the same user name
 * is not picked up without a restart (nor is it by client-node's WebSocket agents).
 */
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

export class PooledKubeConfig extends KubeConfig {
  readonly #dispatchers = new Map<string, Dispatcher>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const built = context.getDispatcher();
    // No TLS options (plain http): fetch's global dispatcher, which pools already.
    if (built === undefined) return;
    const key = JSON.stringify([this.getCurrentCluster()?.name, this.getCurrentUser()?.name]);
    const kept = this.#dispatchers.get(key);
    if (kept === undefined) {
      this.#dispatchers.set(key, built);
      return;
    }
    built.close().catch(() => {});
    context.setDispatcher(kept);
  }

  /** How many dispatchers are kept (one per cluster and user used). */
  get dispatcherCount(): number {
    return this.#dispatchers.size;
  }

  /** Closes the kept connections (requests in flight finish first). */
  async close(): Promise<void> {
    const dispatchers = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(dispatchers.map((dispatcher) => dispatcher.close().catch(() => {})));
  }
}
