/**
 * The test harness's choice between local processes, containers and what the environment names
 * (test/support/harness-selection.ts): every branch, and Docker asked only when the choice depends
 * on it. The Docker path itself never runs here (no engine on these machines).
 */
import { expect } from "chai";
import {
  type Backend,
  chooseBackend,
  chooseRedisBackend,
  dockerCandidates,
  needsDockerProbe,
  onPath,
  useDockerSetting,
} from "../../test/support/harness-selection.ts";

type Env = Record<string, string | undefined>;

const cluster = (env: Env, binariesCached: boolean, dockerReachable?: boolean): Backend =>
  chooseBackend({ env, binariesCached, dockerReachable }).backend;

const redis = (env: Env, redisServerInstalled: boolean, dockerReachable?: boolean): Backend =>
  chooseRedisBackend({ env, redisServerInstalled, dockerReachable }).backend;

describe("harness selection", () => {
  describe("SFN_TEST_USE_DOCKER", () => {
    it("is 1, 0, or unset (empty counts as unset)", () => {
      expect(useDockerSetting({})).to.equal(undefined);
      expect(useDockerSetting({ SFN_TEST_USE_DOCKER: "" })).to.equal(undefined);
      expect(useDockerSetting({ SFN_TEST_USE_DOCKER: "1" })).to.equal("1");
      expect(useDockerSetting({ SFN_TEST_USE_DOCKER: "0" })).to.equal("0");
    });

    it("refuses any other value, for the cluster and for Redis alike", () => {
      for (const value of ["yes", "true", "2"]) {
        const env = { SFN_TEST_USE_DOCKER: value };
        expect(() => useDockerSetting(env)).to.throw(`SFN_TEST_USE_DOCKER=${value}: use 1`);
        expect(() => cluster(env, true, true)).to.throw("use 1 (Docker), 0");
        expect(() => cluster({ ...env, SFN_TEST_USE_EXISTING_CLUSTER: "1" }, true)).to.throw("use 1");
        expect(() => redis({ ...env, REDIS_URL: "redis://r:6379" }, true)).to.throw("use 1");
      }
    });
  });

  describe("the cluster (chooseBackend)", () => {
    it("SFN_TEST_USE_EXISTING_CLUSTER=1: KUBECONFIG's cluster, whatever else is there", () => {
      for (const useDocker of [undefined, "0", "1"]) {
        for (const binariesCached of [true, false]) {
          const env = { SFN_TEST_USE_EXISTING_CLUSTER: "1", SFN_TEST_USE_DOCKER: useDocker };
          const choice = chooseBackend({ env, binariesCached, dockerReachable: false });
          expect(choice).to.deep.equal({
            backend: "existing",
            reason: "SFN_TEST_USE_EXISTING_CLUSTER=1: the cluster KUBECONFIG names",
          });
        }
      }
      // Only exactly 1 (as before this choice existed).
      expect(cluster({ SFN_TEST_USE_EXISTING_CLUSTER: "true" }, true)).to.equal("local");
    });

    it("SFN_TEST_USE_DOCKER=1 with an engine: docker, even with the binaries cached", () => {
      for (const binariesCached of [true, false]) {
        expect(
          chooseBackend({ env: { SFN_TEST_USE_DOCKER: "1" }, binariesCached, dockerReachable: true }),
        ).to.deep.equal({ backend: "docker", reason: "SFN_TEST_USE_DOCKER=1" });
      }
    });

    it("SFN_TEST_USE_DOCKER=1 without an engine: an error, not a 15-minute build", () => {
      for (const binariesCached of [true, false]) {
        expect(() => cluster({ SFN_TEST_USE_DOCKER: "1" }, binariesCached, false)).to.throw(
          "SFN_TEST_USE_DOCKER=1 but no Docker engine answers",
        );
      }
    });

    it("SFN_TEST_USE_DOCKER=0: the local processes, built if need be", () => {
      for (const binariesCached of [true, false]) {
        for (const dockerReachable of [true, false, undefined]) {
          expect(
            chooseBackend({ env: { SFN_TEST_USE_DOCKER: "0" }, binariesCached, dockerReachable }),
          ).to.deep.equal({ backend: "local", reason: "SFN_TEST_USE_DOCKER=0" });
        }
      }
    });

    it("unset, binaries cached: the local processes (Docker or not)", () => {
      for (const dockerReachable of [true, false, undefined]) {
        expect(chooseBackend({ env: {}, binariesCached: true, dockerReachable })).to.deep.equal({
          backend: "local",
          reason: "the control plane binaries are cached",
        });
      }
    });

    it("unset, no binaries: docker when an engine answers, else the local build", () => {
      expect(chooseBackend({ env: {}, binariesCached: false, dockerReachable: true })).to.deep.equal({
        backend: "docker",
        reason: "no control plane binaries are cached and a Docker engine answers",
      });
      expect(
        chooseBackend({ env: { SFN_TEST_USE_DOCKER: "" }, binariesCached: false, dockerReachable: false }),
      ).to.deep.equal({
        backend: "local",
        reason: "no control plane binaries are cached and no Docker engine answers",
      });
    });

    it("refuses to decide without the probe when the choice depends on Docker", () => {
      expect(() => cluster({}, false)).to.throw("probe it first");
      expect(() => cluster({ SFN_TEST_USE_DOCKER: "1" }, true)).to.throw("probe it first");
    });
  });

  describe("Redis (chooseRedisBackend)", () => {
    it("REDIS_URL: that server, whatever else is there", () => {
      for (const useDocker of [undefined, "0", "1"]) {
        for (const installed of [true, false]) {
          const env = { REDIS_URL: "redis://elsewhere:6379", SFN_TEST_USE_DOCKER: useDocker };
          expect(chooseRedisBackend({ env, redisServerInstalled: installed })).to.deep.equal({
            backend: "existing",
            reason: "REDIS_URL names a Redis",
          });
        }
      }
      expect(redis({ REDIS_URL: "" }, true)).to.equal("local");
    });

    it("SFN_TEST_USE_DOCKER=1: a container, or an error without an engine", () => {
      expect(redis({ SFN_TEST_USE_DOCKER: "1" }, true, true)).to.equal("docker");
      expect(redis({ SFN_TEST_USE_DOCKER: "1" }, false, true)).to.equal("docker");
      expect(() => redis({ SFN_TEST_USE_DOCKER: "1" }, true, false)).to.throw("no Docker engine answers");
    });

    it("SFN_TEST_USE_DOCKER=0: redis-server, installed or not", () => {
      for (const installed of [true, false]) {
        for (const dockerReachable of [true, false, undefined]) {
          expect(redis({ SFN_TEST_USE_DOCKER: "0" }, installed, dockerReachable)).to.equal("local");
        }
      }
    });

    it("unset: redis-server when on the PATH, else a container when an engine answers, else redis-server", () => {
      expect(
        chooseRedisBackend({ env: {}, redisServerInstalled: true, dockerReachable: true }),
      ).to.deep.equal({
        backend: "local",
        reason: "redis-server is on the PATH",
      });
      expect(
        chooseRedisBackend({ env: {}, redisServerInstalled: false, dockerReachable: true }),
      ).to.deep.equal({
        backend: "docker",
        reason: "redis-server is not on the PATH and a Docker engine answers",
      });
      expect(
        chooseRedisBackend({ env: {}, redisServerInstalled: false, dockerReachable: false }),
      ).to.deep.equal({
        backend: "local",
        reason: "redis-server is not on the PATH and no Docker engine answers",
      });
      expect(() => redis({}, false)).to.throw("probe it first");
    });
  });

  describe("needsDockerProbe", () => {
    const envs: Env[] = [
      {},
      { SFN_TEST_USE_DOCKER: "0" },
      { SFN_TEST_USE_DOCKER: "1" },
      { SFN_TEST_USE_EXISTING_CLUSTER: "1" },
      { SFN_TEST_USE_EXISTING_CLUSTER: "1", SFN_TEST_USE_DOCKER: "1" },
      { REDIS_URL: "redis://r:6379" },
      { REDIS_URL: "redis://r:6379", SFN_TEST_USE_DOCKER: "1" },
    ];

    it("asks Docker only for SFN_TEST_USE_DOCKER=1, or unset with nothing local", () => {
      expect(needsDockerProbe("cluster", { env: {}, binariesCached: false })).to.equal(true);
      expect(needsDockerProbe("cluster", { env: {}, binariesCached: true })).to.equal(false);
      expect(
        needsDockerProbe("cluster", { env: { SFN_TEST_USE_DOCKER: "1" }, binariesCached: true }),
      ).to.equal(true);
      expect(
        needsDockerProbe("cluster", { env: { SFN_TEST_USE_DOCKER: "0" }, binariesCached: false }),
      ).to.equal(false);
      expect(
        needsDockerProbe("cluster", {
          env: { SFN_TEST_USE_EXISTING_CLUSTER: "1", SFN_TEST_USE_DOCKER: "1" },
          binariesCached: false,
        }),
      ).to.equal(false);
      expect(needsDockerProbe("redis", { env: {}, redisServerInstalled: false })).to.equal(true);
      expect(needsDockerProbe("redis", { env: {}, redisServerInstalled: true })).to.equal(false);
      expect(
        needsDockerProbe("redis", {
          env: { REDIS_URL: "redis://r:6379", SFN_TEST_USE_DOCKER: "1" },
          redisServerInstalled: false,
        }),
      ).to.equal(false);
    });

    it("is right: without it, the choice is the same whatever Docker would have said", () => {
      for (const env of envs) {
        for (const local of [true, false]) {
          const clusterInput = { env, binariesCached: local };
          if (!needsDockerProbe("cluster", clusterInput)) {
            const without = cluster(env, local);
            expect(cluster(env, local, true), JSON.stringify(clusterInput)).to.equal(without);
            expect(cluster(env, local, false), JSON.stringify(clusterInput)).to.equal(without);
          }
          const redisInput = { env, redisServerInstalled: local };
          if (!needsDockerProbe("redis", redisInput)) {
            const without = redis(env, local);
            expect(redis(env, local, true), JSON.stringify(redisInput)).to.equal(without);
            expect(redis(env, local, false), JSON.stringify(redisInput)).to.equal(without);
          }
        }
      }
    });
  });

  describe("dockerCandidates", () => {
    const system = (existing: string[], platform: NodeJS.Platform = "linux") => ({
      home: "/home/dev",
      uid: 1000,
      platform,
      exists: (file: string) => existing.includes(file),
    });

    it("none on a machine without Docker: testcontainers is not even loaded", () => {
      expect(dockerCandidates({}, system([]))).to.deep.equal([]);
    });

    it("finds DOCKER_HOST and the sockets and files testcontainers looks at", () => {
      expect(dockerCandidates({ DOCKER_HOST: "tcp://10.0.0.2:2376" }, system([]))).to.deep.equal([
        "DOCKER_HOST=tcp://10.0.0.2:2376",
      ]);
      expect(dockerCandidates({}, system(["/var/run/docker.sock"]))).to.deep.equal(["/var/run/docker.sock"]);
      const everywhere = [
        "/home/dev/.testcontainers.properties",
        "/var/run/docker.sock",
        "/run/xdg/docker.sock",
        "/home/dev/.docker/run/docker.sock",
        "/home/dev/.docker/desktop/docker.sock",
        "/run/user/1000/docker.sock",
      ];
      expect(dockerCandidates({ XDG_RUNTIME_DIR: "/run/xdg" }, system(everywhere))).to.deep.equal(everywhere);
      // Without XDG_RUNTIME_DIR its socket is not looked for.
      expect(dockerCandidates({}, system(["/run/xdg/docker.sock"]))).to.deep.equal([]);
      expect(dockerCandidates({}, system([], "win32"))).to.deep.equal(["//./pipe/docker_engine"]);
    });
  });

  describe("onPath", () => {
    it("finds an executable in any PATH folder", () => {
      const exists = (file: string): boolean => file === "/opt/redis/bin/redis-server";
      expect(onPath("redis-server", { PATH: "/usr/bin:/opt/redis/bin" }, exists)).to.equal(true);
      expect(onPath("redis-server", { PATH: "/usr/bin" }, exists)).to.equal(false);
      expect(onPath("redis-server", {}, exists)).to.equal(false);
    });
  });
});
