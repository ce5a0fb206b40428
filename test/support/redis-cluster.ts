/**
 * A real three-master Redis Cluster for tests: three `redis-server --cluster-enabled yes` processes
 * on free loopback ports, joined with `redis-cli --cluster create` (no replicas), ready once every
 * node reports `cluster_state:ok`. No persistence, as a cache-style cluster would run; each node
 * keeps its `nodes-<port>.conf`, so a node stopped and started again on its port rejoins with the
 * same identity and slots (and no data), as a crashed ElastiCache/Memorystore shard would.
 *
 * With `tls`, the nodes listen with TLS only (also on the cluster bus) with a certificate for
 * 127.0.0.1 / localhost from a test CA; with `password`, they require it (AUTH).
 *
 * `stop()` kills every process and removes the directory even when start-up failed half-way: call
 * it from `after` in any case.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { type CertPair, createPki } from "./cluster-pki.ts";

const run = promisify(execFile);

/**
 * `count` free loopback ports, all different: each is held until all are found (ports found one at a
 * time, each released before the next is asked for, can come back twice).
 */
async function distinctFreePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      servers.push(server);
    }
    return servers.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

interface ClusterNode {
  port: number;
  /** The cluster bus port: free too (the default, port + 10000, may be taken or above 65535). */
  busPort: number;
  process: ChildProcess | undefined;
  log: string;
}

export interface RedisClusterOptions {
  masters?: number;
  /** Replicas per master (redis-cli assigns them). */
  replicas?: number;
  tls?: boolean;
  password?: string;
}

export class RedisClusterServer {
  /** Temp directory holding every node's cluster config file (and the TLS files). */
  readonly dir: string;
  readonly password: string | undefined;
  /** With TLS: the CA file that signed the nodes' certificate (for NODE_EXTRA_CA_CERTS). */
  caFile: string | undefined;
  #tls: { ca: CertPair; serving: CertPair; client: CertPair } | undefined;
  readonly #nodes: ClusterNode[] = [];

  private constructor(password: string | undefined) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "sfn-redis-cluster-"));
    this.password = password;
  }

  /** Starts the nodes, creates the cluster and waits until every node says it is ok. */
  static async start(options: RedisClusterOptions = {}): Promise<RedisClusterServer> {
    const { masters = 3, replicas = 0 } = options;
    const server = new RedisClusterServer(options.password);
    try {
      if (options.tls) {
        const pki = await createPki(path.join(server.dir, "pki"));
        // Nodes authenticate each other on the TLS cluster bus whatever tls-auth-clients says: each
        // needs a client certificate too (the serving one is for serverAuth only).
        server.#tls = { ca: pki.ca, serving: pki.serving, client: pki.admin };
        server.caFile = pki.ca.cert;
      }
      const count = masters * (1 + replicas);
      const ports = await distinctFreePorts(2 * count);
      for (let i = 0; i < count; i++) {
        const [port, busPort] = [ports[2 * i] as number, ports[2 * i + 1] as number];
        server.#nodes.push({ port, busPort, process: undefined, log: "" });
      }
      await Promise.all(server.#nodes.map((node) => server.#startNode(node)));
      const addresses = server.#nodes.map((node) => `127.0.0.1:${node.port}`);
      try {
        const cliOptions = [
          ...(server.#tls ? ["--tls", "--cacert", server.#tls.ca.cert] : []),
          ...(server.password ? ["--no-auth-warning", "-a", server.password] : []),
        ];
        await run(
          "redis-cli",
          [
            ...cliOptions,
            "--cluster",
            "create",
            ...addresses,
            "--cluster-replicas",
            String(replicas),
            "--cluster-yes",
          ],
          { timeout: 30_000 },
        );
      } catch (error) {
        const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
        throw new Error(
          `redis-cli --cluster create failed: ${String(error)}\n${stdout}\n${stderr}\n${server.logs()}`,
        );
      }
      await server.waitUntilOk();
      if (replicas > 0) await server.#waitForReplicaLinks();
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  /** Node ports, in start order. */
  get ports(): number[] {
    return this.#nodes.map((node) => node.port);
  }

  /** The cluster spelling of the URL, seeded with the first node. */
  get url(): string {
    return `${this.#tls ? "rediss" : "redis"}+cluster://127.0.0.1:${this.ports[0]}`;
  }

  /** A plain (non-cluster) URL of the first node: what a client that does not follow MOVED sees. */
  get nodeUrl(): string {
    return `redis://127.0.0.1:${this.ports[0]}`;
  }

  /** The port of the master serving `key`'s slot, from the slot map of the first node that answers. */
  async portOf(key: string): Promise<number> {
    let lastError: unknown;
    for (const port of this.ports) {
      const client = this.nodeClient(port, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
      client.on("error", () => {}); // a stopped node: ask the next one
      try {
        const slot = Number(await client.call("CLUSTER", "KEYSLOT", key));
        const ranges = (await client.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
        for (const [from, to, [, master]] of ranges) {
          if (slot >= from && slot <= to) return Number(master);
        }
        throw new Error(`no master serves slot ${slot} (key ${key})`);
      } catch (error) {
        lastError = error;
      } finally {
        client.disconnect();
      }
    }
    throw lastError;
  }

  /** A plain client of one node (remember to disconnect). */
  nodeClient(port: number, options: RedisOptions = {}): Redis {
    return new Redis({
      host: "127.0.0.1",
      port,
      maxRetriesPerRequest: 1,
      ...this.#clientOptions(),
      ...options,
    });
  }

  /** An ioredis Cluster client for assertions (remember to disconnect). */
  client(): Cluster {
    return new Cluster(
      this.ports.map((port) => ({ host: "127.0.0.1", port })),
      { redisOptions: this.#clientOptions() },
    );
  }

  /** Empties every master (FLUSHALL runs per node in a cluster). */
  async flushAll(): Promise<void> {
    for (const port of this.ports) {
      const client = this.nodeClient(port);
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    }
  }

  /** Kills one node's process (SIGKILL: a crash, nothing flushed). */
  async stopNode(port: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const node = this.#node(port);
    const child = node.process;
    node.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }

  /** Starts a stopped node again on its port; it rejoins from its nodes-<port>.conf, empty. */
  async startNode(port: number): Promise<void> {
    await this.#startNode(this.#node(port));
  }

  /** Waits until every node reports `cluster_state:ok` (after creation, or after a node restart). */
  async waitUntilOk(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      const states = await Promise.all(this.ports.map((port) => this.#clusterState(port)));
      if (states.every((state) => state === "ok")) return;
      last = states.map((state, i) => `${this.ports[i]}=${state}`).join(" ");
      if (Date.now() > deadline) {
        throw new Error(`Redis Cluster not ok after ${timeoutMs} ms (${last}):\n${this.logs()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits until every replica has synced with its master (`master_link_status:up`). */
  async #waitForReplicaLinks(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let pending = 0;
      for (const port of this.ports) {
        const client = this.nodeClient(port);
        try {
          const info = await client.info("replication");
          if (/^role:slave/m.test(info) && !/^master_link_status:up/m.test(info)) pending += 1;
        } finally {
          client.disconnect();
        }
      }
      if (pending === 0) return;
      if (Date.now() > deadline) throw new Error(`${pending} replica(s) not synced after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The tail of every node's output, for failure messages. */
  logs(): string {
    return this.#nodes.map((node) => `--- node ${node.port}\n${node.log.slice(-2000)}`).join("\n");
  }

  async stop(): Promise<void> {
    await Promise.all(this.#nodes.map((node) => this.stopNode(node.port, "SIGTERM")));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  #node(port: number): ClusterNode {
    const node = this.#nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`no cluster node on port ${port}`);
    return node;
  }

  /** TLS (trusting the test CA) and the password, for the harness's own clients. */
  #clientOptions(): RedisOptions {
    return {
      ...(this.#tls ? { tls: { ca: fs.readFileSync(this.#tls.ca.cert) } } : {}),
      ...(this.password ? { password: this.password } : {}),
    };
  }

  async #startNode(node: ClusterNode): Promise<void> {
    const args = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    if (this.#tls) {
      // TLS only, clients and cluster bus alike; clients are not asked for certificates.
      args.push(
        "--port",
        "0",
        "--tls-port",
        String(node.port),
        "--tls-cluster",
        "yes",
        "--tls-auth-clients",
        "no",
      );
      args.push("--tls-cert-file", this.#tls.serving.cert, "--tls-key-file", this.#tls.serving.key);
      args.push("--tls-ca-cert-file", this.#tls.ca.cert);
      args.push(
        "--tls-client-cert-file",
        this.#tls.client.cert,
        "--tls-client-key-file",
        this.#tls.client.key,
      );
    } else {
      args.push("--port", String(node.port));
    }
    if (this.password) args.push("--requirepass", this.password, "--masterauth", this.password);
    // Replicas sync at once (the default waits 5 s for more replicas), and one that has not synced is
    // not promoted: start() waits for every replica's link.
    args.push("--repl-diskless-sync-delay", "0");
    args.push("--cluster-port", String(node.busPort));
    args.push(
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      path.join(this.dir, `nodes-${node.port}.conf`),
    );
    // A short node timeout lets the cluster notice a killed node (and its return) quickly.
    args.push("--cluster-node-timeout", "2000", "--dir", this.dir, "--protected-mode", "no");
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (chunk: Buffer): void => {
      node.log = (node.log + chunk.toString()).slice(-8192);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("error", (error) => {
      node.log += `\nspawn failed: ${error.message} (is redis-server installed? apt-get install redis-server)`;
    });
    node.process = child;
    const deadline = Date.now() + 10_000;
    while ((await this.#clusterState(node.port)) === "unreachable") {
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${node.port}:\n${node.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async #clusterState(port: number): Promise<string> {
    const client = this.nodeClient(port, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {}); // a node that is down reports "unreachable" below
    try {
      const info = String(await client.call("CLUSTER", "INFO"));
      return /^cluster_state:(\w+)/m.exec(info)?.[1] ?? "unknown";
    } catch {
      return "unreachable";
    } finally {
      client.disconnect();
    }
  }
}
