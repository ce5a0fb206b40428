/**
 * Which backend the test harness uses for the control plane and for Redis: processes it starts
 * itself (`local`), containers through testcontainers (`docker`: k3s, redis), or what the
 * environment names (`existing`: KUBECONFIG with SFN_TEST_USE_EXISTING_CLUSTER=1, REDIS_URL).
 *
 * The decisions are pure functions of the environment and of what was found on the machine, so that a
 * unit test covers every branch (test/unit/harness-selection.test.ts); the probes are separate and
 * cheap: Docker is only asked when the decision depends on it, with a timeout. The rules:
 *
 * - an existing cluster (SFN_TEST_USE_EXISTING_CLUSTER=1) or Redis (REDIS_URL) is used as before;
 * - SFN_TEST_USE_DOCKER=1 asks for Docker, and fails when no engine answers (rather than starting a
 *   10-15 min build); SFN_TEST_USE_DOCKER=0 never uses it and never probes;
 * - unset: the local processes when what they need is there (the control plane binaries in
 *   ~/.cache/sfn-operator/bin/<versions>, redis-server on the PATH), else Docker when an engine
 *   answers, else the local processes anyway (test/cluster/build.sh builds the binaries).
 *
 * `node test/support/harness-selection-cli.ts cluster|redis` prints the decision (for the scripts).
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Where a test run gets its control plane or its Redis. */
export type Backend = "local" | "docker" | "existing";

/** A decision and why, for the run's log. */
export interface Choice {
  backend: Backend;
  reason: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** What the decisions need to know about Docker: whether an engine answered (undefined: not asked). */
interface DockerInput {
  env: Env;
  dockerReachable?: boolean | undefined;
}

/** SFN_TEST_USE_DOCKER: `1` (use Docker), `0` (never), unset or empty (decide). */
export function useDockerSetting(env: Env): "1" | "0" | undefined {
  const value = env.SFN_TEST_USE_DOCKER;
  if (value === undefined || value === "") return undefined;
  if (value === "1" || value === "0") return value;
  throw new Error(
    `SFN_TEST_USE_DOCKER=${value}: use 1 (Docker), 0 (never Docker) or leave it unset (decide)`,
  );
}

/** Marks a decision that needs to know whether Docker answers before it can be made. */
const PROBE = Symbol("probe Docker");

function decide(
  input: DockerInput,
  existing: string | undefined,
  local: { available: boolean; present: string; absent: string },
): Choice | typeof PROBE {
  const setting = useDockerSetting(input.env);
  if (existing) return { backend: "existing", reason: existing };
  if (setting === "0") return { backend: "local", reason: "SFN_TEST_USE_DOCKER=0" };
  if (setting === undefined && local.available) return { backend: "local", reason: local.present };
  if (input.dockerReachable === undefined) return PROBE;
  if (setting === "1") {
    if (input.dockerReachable) return { backend: "docker", reason: "SFN_TEST_USE_DOCKER=1" };
    throw new Error(
      "SFN_TEST_USE_DOCKER=1 but no Docker engine answers (DOCKER_HOST, /var/run/docker.sock or a rootless " +
        "socket; testcontainers' rules): start Docker, or unset SFN_TEST_USE_DOCKER",
    );
  }
  return input.dockerReachable
    ? { backend: "docker", reason: `${local.absent} and a Docker engine answers` }
    : { backend: "local", reason: `${local.absent} and no Docker engine answers` };
}

function settle(choice: Choice | typeof PROBE): Choice {
  if (choice === PROBE) throw new Error("this decision depends on Docker: probe it first (needsDockerProbe)");
  return choice;
}

/** What {@link chooseBackend} is decided from. */
export interface ClusterSelectionInput extends DockerInput {
  /** Whether every control plane binary is in the binary folder (test/cluster/build.sh's). */
  binariesCached: boolean;
}

function decideCluster(input: ClusterSelectionInput): Choice | typeof PROBE {
  return decide(
    input,
    input.env.SFN_TEST_USE_EXISTING_CLUSTER === "1"
      ? "SFN_TEST_USE_EXISTING_CLUSTER=1: the cluster KUBECONFIG names"
      : undefined,
    {
      available: input.binariesCached,
      present: "the control plane binaries are cached",
      absent: "no control plane binaries are cached",
    },
  );
}

/** The control plane of a test run. Throws when it needs `dockerReachable` and was not given it. */
export function chooseBackend(input: ClusterSelectionInput): Choice {
  return settle(decideCluster(input));
}

/** What {@link chooseRedisBackend} is decided from. */
export interface RedisSelectionInput extends DockerInput {
  /** Whether `redis-server` is on the PATH. */
  redisServerInstalled: boolean;
}

function decideRedis(input: RedisSelectionInput): Choice | typeof PROBE {
  return decide(input, input.env.REDIS_URL ? "REDIS_URL names a Redis" : undefined, {
    available: input.redisServerInstalled,
    present: "redis-server is on the PATH",
    absent: "redis-server is not on the PATH",
  });
}

/** The Redis of a test run's servers. Throws when it needs `dockerReachable` and was not given it. */
export function chooseRedisBackend(input: RedisSelectionInput): Choice {
  return settle(decideRedis(input));
}

/** Whether the decision depends on Docker: only then is the engine asked. */
export function needsDockerProbe(
  what: "cluster",
  input: Omit<ClusterSelectionInput, "dockerReachable">,
): boolean;
export function needsDockerProbe(what: "redis", input: Omit<RedisSelectionInput, "dockerReachable">): boolean;
export function needsDockerProbe(
  what: "cluster" | "redis",
  input: Omit<ClusterSelectionInput, "dockerReachable"> | Omit<RedisSelectionInput, "dockerReachable">,
): boolean {
  const decision =
    what === "cluster"
      ? decideCluster({ ...(input as ClusterSelectionInput), dockerReachable: undefined })
      : decideRedis({ ...(input as RedisSelectionInput), dockerReachable: undefined });
  return decision === PROBE;
}

/**
 * Where testcontainers would look for a Docker engine (its strategies, in their order): DOCKER_HOST,
 * ~/.testcontainers.properties, /var/run/docker.sock, the rootless and Docker Desktop sockets, the
 * Windows named pipe. None: no engine, and testcontainers is not even loaded.
 */
export function dockerCandidates(
  env: Env,
  system: { home: string; uid: number; platform: NodeJS.Platform; exists: (file: string) => boolean },
): string[] {
  const found: string[] = [];
  if (env.DOCKER_HOST) found.push(`DOCKER_HOST=${env.DOCKER_HOST}`);
  const files = [
    path.join(system.home, ".testcontainers.properties"),
    "/var/run/docker.sock",
    ...(env.XDG_RUNTIME_DIR ? [path.join(env.XDG_RUNTIME_DIR, "docker.sock")] : []),
    path.join(system.home, ".docker", "run", "docker.sock"),
    path.join(system.home, ".docker", "desktop", "docker.sock"),
    `/run/user/${system.uid}/docker.sock`,
  ];
  found.push(...files.filter((file) => system.exists(file)));
  if (system.platform === "win32") found.push("//./pipe/docker_engine");
  return found;
}

/**
 * How long the Docker probe may take before it counts as "no engine": an engine answers in
 * milliseconds, but inside a container testcontainers finds the host's address by running a small
 * container, which the first time pulls its image. Reached only when a socket accepts and never
 * answers (an engine with no socket at all costs nothing; a refused connection, milliseconds).
 */
export const DOCKER_PROBE_TIMEOUT_MS = 20_000;

let dockerProbe: Promise<boolean> | undefined;

/**
 * Whether a Docker engine answers, as testcontainers finds one (`getContainerRuntimeClient`: an
 * `info` request). Cheap when there is no candidate socket (no import, no connection); never longer
 * than {@link DOCKER_PROBE_TIMEOUT_MS}. Asked once per process.
 */
export function isDockerReachable(timeoutMs = DOCKER_PROBE_TIMEOUT_MS): Promise<boolean> {
  dockerProbe ??= (async () => {
    const candidates = dockerCandidates(process.env, {
      home: os.homedir(),
      uid: process.getuid?.() ?? 0,
      platform: process.platform,
      exists: existsSync,
    });
    if (candidates.length === 0) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const probe = import("testcontainers").then(
      ({ getContainerRuntimeClient }) => getContainerRuntimeClient(),
      // Not installed (npm ci --omit=dev): no Docker path.
      () => undefined,
    );
    try {
      return await Promise.race([
        probe.then(
          (client) => client !== undefined,
          () => false,
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  })();
  return dockerProbe;
}

/** Whether an executable `name` is on the PATH of `env`. */
export function onPath(
  name: string,
  env: Env = process.env,
  exists: (file: string) => boolean = existsSync,
): boolean {
  return (env.PATH ?? "")
    .split(path.delimiter)
    .filter(Boolean)
    .some((dir) => exists(path.join(dir, name)));
}

let redisChoice: Promise<Choice> | undefined;

/** {@link chooseRedisBackend} for this process (decided once; Docker probed only when it matters). */
export function selectRedisBackend(): Promise<Choice> {
  redisChoice ??= (async () => {
    const input = { env: process.env, redisServerInstalled: onPath("redis-server") };
    const dockerReachable = needsDockerProbe("redis", input) ? await isDockerReachable() : undefined;
    return chooseRedisBackend({ ...input, dockerReachable });
  })();
  return redisChoice;
}
