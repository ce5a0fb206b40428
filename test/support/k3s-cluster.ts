/**
 * The test control plane in Docker (docs/cluster.md "With Docker"), for machines with a Docker engine
 * and no binaries built by test/cluster/build.sh: k3s (testcontainers' k3s module) of the Kubernetes
 * release the local processes run, and kwok in a second container on the same Docker network,
 * managing the same fake Node ({@link FAKE_NODE}) as the local control plane does.
 *
 * Why kwok next to k3s: k3s has a real kubelet, which would pull and run the pods' images. The
 * suites' pods are not meant to run (the operator's and the pollers' images are not published; the
 * tests run those processes locally with the environment read back from the Deployments), and they
 * expect them Running and Ready on `kwok-node-0`. So k3s's own node is tainted NoSchedule, and test
 * pods go to the fake Node, whose kwok marks them Running and Ready without running anything: the
 * same behaviour as the local control plane. k3s's packaged add-ons (coredns, traefik, servicelb,
 * local-storage, metrics-server) are off: nothing in the tests needs them, and they would land on the
 * fake Node.
 *
 * What differs from the local control plane: the API server cannot be stopped alone
 * (`stopApiServer` and friends throw, so the robustness tests skip, as on an existing cluster); the
 * release is k3s's build of it (`/version` says `v1.36.3+k3s1`); there is no audit log. Never run on
 * the CI machines (no Docker there): typechecked, and its selection unit-tested.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { finished } from "node:stream/promises";
import {
  FAKE_NODE,
  fakeNode,
  KWOK_NODE_ARGS,
  pinnedVersions,
  type TestCluster,
  WithoutApiServerControl,
  waitFor,
} from "./cluster.ts";
import {
  type KubectlOptions,
  type KubectlResult,
  kubectl,
  writeServiceAccountKubeconfig,
} from "./cluster-kubectl.ts";
import { tail } from "./cluster-processes.ts";

/** The k3s container's name on the Docker network (kwok reaches the API server by it). */
const K3S_ALIAS = "k3s";
const K3S_API_PORT = 6443;
/** kwok's /healthz (its --server-address). */
const KWOK_PORT = 10247;

/** Taint of k3s's own (real) node: no test pod lands there, they all go to the kwok node. */
export const K3S_NODE_TAINT = "sfn-operator.dev/test-pods=kwok-only:NoSchedule";

/** The pinned images (test/cluster/versions.env). */
export function dockerImages(): { k3s: string; kwok: string } {
  const versions = pinnedVersions();
  if (!versions.K3S_IMAGE || !versions.KWOK_VERSION) {
    throw new Error("test/cluster/versions.env names no K3S_IMAGE or KWOK_VERSION");
  }
  return { k3s: versions.K3S_IMAGE, kwok: `registry.k8s.io/kwok/kwok:${versions.KWOK_VERSION}` };
}

/** Something to stop on the way out (containers, then their network). */
interface Stoppable {
  stop(): Promise<unknown>;
}

/** k3s and kwok in Docker (see {@link startK3sCluster}). */
export class K3sCluster extends WithoutApiServerControl implements TestCluster {
  protected readonly description = "k3s in Docker (one process serves the whole control plane)";
  readonly kind = "docker";
  readonly dir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly logFiles: Readonly<Record<string, string>>;
  /** The folder belongs to this cluster alone (a test run's), and goes when it stops. */
  ephemeral = false;
  readonly #stoppables: Stoppable[];
  readonly #logStreams: WriteStream[];
  private saCount = 0;

  constructor(options: {
    dir: string;
    kubeconfig: string;
    server: string;
    logFiles: Record<string, string>;
    stoppables: Stoppable[];
    logStreams: WriteStream[];
  }) {
    super();
    this.dir = options.dir;
    this.kubeconfig = options.kubeconfig;
    this.server = options.server;
    this.logFiles = options.logFiles;
    this.#stoppables = options.stoppables;
    this.#logStreams = options.logStreams;
  }

  kubectl(args: string[], options?: KubectlOptions): Promise<KubectlResult> {
    return kubectl(this.kubeconfig, args, options);
  }

  serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    this.saCount += 1;
    const file = path.join(this.dir, "kubeconfigs", `sa-${namespace}-${name}-${this.saCount}.yaml`);
    return writeServiceAccountKubeconfig(this.kubeconfig, namespace, name, file);
  }

  logTails(lines = 40): string {
    return Object.entries(this.logFiles)
      .map(([name, file]) => `----- ${name} (${file}), last ${lines} lines -----\n${tail(file, lines)}`)
      .join("\n");
  }

  /** Stops and removes the containers and their network (testcontainers' Ryuk does it if we die first). */
  async stop(options: { keepFiles?: boolean } = {}): Promise<void> {
    await stopAll(this.#stoppables);
    await Promise.all(this.#logStreams.map(endStream));
    if (this.ephemeral && !options.keepFiles) await fs.rm(this.dir, { recursive: true, force: true });
  }
}

async function stopAll(stoppables: Stoppable[]): Promise<void> {
  // Last started first: the network goes once no container is attached to it.
  for (const stoppable of [...stoppables].reverse()) {
    try {
      await stoppable.stop();
    } catch {
      // Already gone; Ryuk removes what is left when this process exits.
    }
  }
}

async function endStream(stream: WriteStream): Promise<void> {
  if (stream.writableFinished || stream.destroyed) return;
  stream.end();
  await finished(stream).catch(() => undefined);
}

/** Options of {@link startK3sCluster}. */
export interface K3sStartOptions {
  /** Folder of the cluster: admin kubeconfig, ServiceAccount kubeconfigs, `logs/<container>.log`. */
  dir: string;
  log?: (message: string) => void;
  /** For each container's start (the first run pulls the images) and for the node to be Ready. */
  timeoutMs?: number;
}

/**
 * Starts k3s and kwok in Docker, creates the fake Node, and waits until it is Ready and the `default`
 * ServiceAccount of `default` exists (as startLocalCluster does).
 */
export async function startK3sCluster(options: K3sStartOptions): Promise<K3sCluster> {
  const { dir } = options;
  const log = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 240_000;
  const images = dockerImages();
  const began = Date.now();
  const elapsed = (): string => `${((Date.now() - began) / 1000).toFixed(1)} s`;
  const { GenericContainer, Network, Wait, getContainerRuntimeClient } = await import("testcontainers");
  const { K3sContainer } = await import("@testcontainers/k3s");

  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.join(dir, "logs"), { recursive: true });
  const stoppables: Stoppable[] = [];
  const logStreams: WriteStream[] = [];
  const logFiles: Record<string, string> = {};
  const keepLogs = async (name: string, container: { logs(): Promise<NodeJS.ReadableStream> }) => {
    const file = path.join(dir, "logs", `${name}.log`);
    const stream = createWriteStream(file);
    logStreams.push(stream);
    logFiles[name] = file;
    (await container.logs()).pipe(stream);
  };

  try {
    const network = await new Network().start();
    stoppables.push(network);
    // The API server's certificate must name the host the tests reach it by (a remote DOCKER_HOST).
    const host = (await getContainerRuntimeClient()).info.containerRuntime.host;
    log(`starting ${images.k3s} (the first run pulls it)`);
    const k3s = await new K3sContainer(images.k3s)
      .withNetwork(network)
      .withNetworkAliases(K3S_ALIAS)
      // The module appends --tls-san=<the network aliases>.
      .withCommand([
        "server",
        "--disable=traefik,servicelb,metrics-server,local-storage,coredns",
        `--node-taint=${K3S_NODE_TAINT}`,
        `--tls-san=${host}`,
      ])
      .withStartupTimeout(timeoutMs)
      .start();
    stoppables.push(k3s);
    await keepLogs("k3s", k3s);
    const kubeconfig = path.join(dir, "kubeconfig");
    await fs.writeFile(kubeconfig, k3s.getKubeConfig(), { mode: 0o600 });
    const server = `https://${k3s.getHost()}:${k3s.getMappedPort(K3S_API_PORT)}`;
    log(`k3s ready at ${server} (${elapsed()})`);

    log(`starting ${images.kwok}`);
    const kwok = await new GenericContainer(images.kwok)
      .withNetwork(network)
      .withCopyContentToContainer([
        { content: k3s.getAliasedKubeConfig(K3S_ALIAS), target: "/etc/kwok/kubeconfig", mode: 0o644 },
      ])
      .withCommand([
        "--kubeconfig=/etc/kwok/kubeconfig",
        ...KWOK_NODE_ARGS,
        `--server-address=0.0.0.0:${KWOK_PORT}`,
      ])
      .withExposedPorts(KWOK_PORT)
      .withWaitStrategy(Wait.forHttp("/healthz", KWOK_PORT))
      .withStartupTimeout(timeoutMs)
      .start();
    stoppables.push(kwok);
    await keepLogs("kwok", kwok);
    log(`kwok healthy (${elapsed()})`);

    await kubectl(kubeconfig, ["create", "-f", "-"], { input: JSON.stringify(fakeNode(110)) });
    await waitFor(
      `Node ${FAKE_NODE} Ready`,
      async () => {
        const { stdout } = await kubectl(kubeconfig, [
          "get",
          "node",
          FAKE_NODE,
          "-o",
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ]);
        return stdout === "True";
      },
      [],
      timeoutMs,
    );
    // Pods need their namespace's `default` ServiceAccount (ServiceAccount admission).
    await waitFor(
      "ServiceAccount default/default",
      async () =>
        (
          await kubectl(kubeconfig, ["get", "serviceaccount", "default", "-n", "default"], {
            allowFailure: true,
          })
        ).code === 0,
      [],
      timeoutMs,
    );
    log(`k3s and kwok ready in ${elapsed()}: KUBECONFIG=${kubeconfig}`);
    return new K3sCluster({ dir, kubeconfig, server, logFiles, stoppables, logStreams });
  } catch (error) {
    await stopAll(stoppables);
    await Promise.all(logStreams.map(endStream));
    throw error;
  }
}
