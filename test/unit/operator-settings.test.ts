import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { expect } from "chai";
import {
  OPERATOR_SETTINGS,
  type OperatorSettings,
  operatorSettingsFrom,
  resourcesFromJson,
} from "../../src/operator/settings.ts";

const REQUIRED = {
  SFN_POLLER_IMAGE: "example/sfn-operator:0.1.0",
  SFN_REDIS_URL: "redis://redis.sfn-system:6379",
};
const ENV = { POD_NAMESPACE: "sfn-system", POD_NAME: "sfn-operator-5d8f-abcde" };

function settingsOf(
  values: Record<string, string | undefined>,
  env: NodeJS.ProcessEnv = ENV,
  labelOf?: (variable: string) => string,
): OperatorSettings {
  const result = operatorSettingsFrom({ ...REQUIRED, ...values }, env, labelOf);
  expect(result.problems, result.problems.join("\n")).to.deep.equal([]);
  expect(result.settings).to.not.equal(undefined);
  return result.settings as OperatorSettings;
}

function problemsOf(
  values: Record<string, string | undefined>,
  env: NodeJS.ProcessEnv = ENV,
  labelOf?: (variable: string) => string,
): string[] {
  const result = operatorSettingsFrom(values, env, labelOf);
  expect(result.problems, "problems").to.not.deep.equal([]);
  expect(result.settings, "no settings with problems").to.equal(undefined);
  return result.problems;
}

/** The flag of a variable, as the CLI labels problems. */
function flagOf(variable: string): string {
  return OPERATOR_SETTINGS.find((setting) => setting.env === variable)?.flag ?? variable;
}

describe("operator settings", () => {
  it("applies the defaults", () => {
    const settings = settingsOf({});
    expect(settings).to.deep.equal({
      namespace: "sfn-system",
      watchNamespaces: [],
      leaderElection: {
        enabled: true,
        leaseName: "sfn-operator",
        identity: "sfn-operator-5d8f-abcde",
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
      poller: {
        image: "example/sfn-operator:0.1.0",
        imagePullPolicy: "IfNotPresent",
        resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } },
        redisUrl: "redis://redis.sfn-system:6379",
        redisEnv: {},
        proxyEnv: {},
        logLevel: "info",
      },
      redisUrl: "redis://redis.sfn-system:6379",
      workers: 8,
      resyncPeriodMs: 300_000,
      statusIntervalMs: 5_000,
      apiTimeoutMs: 30_000,
    });
  });

  it("reads every setting", () => {
    const settings = settingsOf(
      {
        SFN_POLLER_REDIS_PASSWORD_SECRET: "redis-auth:password",
        SFN_NAMESPACE: "operators",
        SFN_WATCH_NAMESPACES: "team-a,team-b",
        SFN_REGION: "eu-west-1",
        SFN_POLLER_SERVICE_ACCOUNT: "sfn-poller",
        SFN_POLLER_RESOURCES: '{"requests":{"cpu":"10m"}}',
        SFN_POLLER_IMAGE_PULL_POLICY: "Always",
        SFN_POLLER_AWS_ENDPOINT_URL: "http://sfn-emulator.test:8083",
        SFN_POLLER_LOG_LEVEL: "debug",
        SFN_POLLER_PROXY: "none",
        SFN_LEADER_ELECT: "false",
        SFN_LEASE_NAME: "sfn-operator-b",
        SFN_LEASE_DURATION: "30s",
        SFN_RENEW_DEADLINE: "20s",
        SFN_RETRY_PERIOD: "4s",
        SFN_WORKERS: "16",
        SFN_RESYNC_PERIOD: "10m",
        SFN_STATUS_INTERVAL: "2s",
        SFN_API_TIMEOUT: "1m",
      },
      {
        ...ENV,
        SFN_REDIS_LEASE_TTL: "20s",
        SFN_REDIS_CLUSTER: "true",
        SFN_REDIS_PASSWORD: "not-passed-on",
        HTTPS_PROXY: "http://proxy.corp:3128",
      },
    );
    expect(settings.namespace).to.equal("operators");
    expect(settings.watchNamespaces).to.deep.equal(["team-a", "team-b"]);
    expect(settings.leaderElection).to.deep.equal({
      enabled: false,
      leaseName: "sfn-operator-b",
      identity: "sfn-operator-5d8f-abcde",
      leaseDurationMs: 30_000,
      renewDeadlineMs: 20_000,
      retryPeriodMs: 4_000,
    });
    expect(settings.poller).to.deep.equal({
      image: "example/sfn-operator:0.1.0",
      imagePullPolicy: "Always",
      serviceAccountName: "sfn-poller",
      resources: { requests: { cpu: "10m" } },
      region: "eu-west-1",
      awsEndpointUrl: "http://sfn-emulator.test:8083",
      redisUrl: "redis://redis.sfn-system:6379",
      redisPasswordSecret: { name: "redis-auth", key: "password" },
      // The operator's password is never passed on as a value: pollers get it from the Secret.
      redisEnv: { SFN_REDIS_CLUSTER: "true", SFN_REDIS_LEASE_TTL: "20s" },
      // SFN_POLLER_PROXY=none: the operator's proxy stays its own.
      proxyEnv: {},
      logLevel: "debug",
    });
    expect(JSON.stringify(settings)).to.not.contain("not-passed-on");
    expect(settings.workers).to.equal(16);
    expect(settings.resyncPeriodMs).to.equal(600_000);
    expect(settings.statusIntervalMs).to.equal(2_000);
    expect(settings.apiTimeoutMs).to.equal(60_000);
  });

  describe("required settings", () => {
    it("requires the poller image and the Redis URL, both listed at once", () => {
      const problems = problemsOf({});
      expect(problems).to.have.length(2);
      expect(problems[0]).to.match(/^SFN_POLLER_IMAGE: is required/);
      expect(problems[1]).to.match(/^SFN_REDIS_URL: is required/);
    });

    it("counts empty and blank values as unset", () => {
      const problems = problemsOf({ SFN_POLLER_IMAGE: "", SFN_REDIS_URL: "   " });
      expect(problems.map((line) => line.split(":")[0])).to.deep.equal(["SFN_POLLER_IMAGE", "SFN_REDIS_URL"]);
    });

    it("refuses an image with white space and a URL that is not Redis's", () => {
      const problems = problemsOf({
        SFN_POLLER_IMAGE: "example/sfn operator",
        SFN_REDIS_URL: "http://redis:6379",
      });
      expect(problems).to.have.length(2);
      expect(problems[0]).to.match(/^SFN_POLLER_IMAGE: must be an image reference/);
      expect(problems[1]).to.match(/^SFN_REDIS_URL: /);
    });

    it("refuses a password in the Redis URL, which the pollers would get in plain text", () => {
      const problems = problemsOf({ ...REQUIRED, SFN_REDIS_URL: "redis://:hunter2-pw@redis:6379" });
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^SFN_REDIS_URL: must not contain a password/);
      expect(problems[0]).to.contain("SFN_POLLER_REDIS_PASSWORD_SECRET");
      expect(problems[0]).to.not.contain("hunter2-pw");
      // ioredis reads a password from the query too.
      const query = problemsOf({ ...REQUIRED, SFN_REDIS_URL: "redis://redis:6379/0?password=hunter2-pw" });
      expect(query).to.have.length(1);
      expect(query[0]).to.match(/^SFN_REDIS_URL: must not contain a password/);
      expect(query[0]).to.not.contain("hunter2-pw");
      // A user name alone is no secret.
      expect(settingsOf({ SFN_REDIS_URL: "redis://sfn@redis:6379" }).poller.redisUrl).to.equal(
        "redis://sfn@redis:6379",
      );
    });

    it("requires the pollers' password Secret when the operator has a Redis password", () => {
      const problems = problemsOf(REQUIRED, { ...ENV, SFN_REDIS_PASSWORD: "hunter2-pw" });
      expect(problems).to.deep.equal([
        "SFN_POLLER_REDIS_PASSWORD_SECRET: is required when SFN_REDIS_PASSWORD is set: the pollers need the password too, from a Secret in each source's namespace",
      ]);
      const settings = settingsOf(
        { ...REQUIRED, SFN_POLLER_REDIS_PASSWORD_SECRET: "redis-auth:password" },
        { ...ENV, SFN_REDIS_PASSWORD: "hunter2-pw" },
      );
      expect(settings.poller.redisPasswordSecret).to.deep.equal({ name: "redis-auth", key: "password" });
    });
  });

  it("lists every problem at once, each under its own name", () => {
    const problems = problemsOf(
      {
        SFN_POLLER_REDIS_PASSWORD_SECRET: "just-a-name",
        SFN_POLLER_REDIS_CA_SECRET: "ca.crt",
        SFN_NAMESPACE: "Not_A_Namespace",
        SFN_WATCH_NAMESPACES: "team-a,Team B",
        SFN_REGION: "US East 1",
        SFN_POLLER_SERVICE_ACCOUNT: "Bad Account",
        SFN_POLLER_RESOURCES: "{",
        SFN_POLLER_IMAGE_PULL_POLICY: "always",
        SFN_POLLER_AWS_ENDPOINT_URL: "sfn-emulator:8083",
        SFN_POLLER_LOG_LEVEL: "verbose",
        SFN_POLLER_PROXY: "sometimes",
        SFN_LEADER_ELECT: "yes",
        SFN_LEASE_NAME: "Lease!",
        SFN_LEASE_DURATION: "15",
        SFN_RENEW_DEADLINE: "ten seconds",
        SFN_RETRY_PERIOD: "-2s",
        SFN_WORKERS: "0",
        SFN_RESYNC_PERIOD: "5 m",
        SFN_STATUS_INTERVAL: "0s",
        SFN_API_TIMEOUT: "30x",
      },
      { ...ENV, SFN_REDIS_CLUSTER: "maybe" },
    );
    const named = problems.map((line) => line.slice(0, line.indexOf(":")));
    expect(named).to.have.members([
      "SFN_POLLER_IMAGE",
      "SFN_REDIS_URL",
      "SFN_POLLER_REDIS_PASSWORD_SECRET",
      "SFN_POLLER_REDIS_CA_SECRET",
      "SFN_NAMESPACE",
      "SFN_WATCH_NAMESPACES",
      "SFN_REGION",
      "SFN_POLLER_SERVICE_ACCOUNT",
      "SFN_POLLER_RESOURCES",
      "SFN_POLLER_IMAGE_PULL_POLICY",
      "SFN_POLLER_AWS_ENDPOINT_URL",
      "SFN_POLLER_LOG_LEVEL",
      "SFN_POLLER_PROXY",
      "SFN_LEADER_ELECT",
      "SFN_LEASE_NAME",
      "SFN_LEASE_DURATION",
      "SFN_RENEW_DEADLINE",
      "SFN_RETRY_PERIOD",
      "SFN_WORKERS",
      "SFN_RESYNC_PERIOD",
      "SFN_STATUS_INTERVAL",
      "SFN_API_TIMEOUT",
    ]);
    // Every setting the operator documents, bar none, can be reported.
    for (const setting of OPERATOR_SETTINGS) expect(named, setting.env).to.include(setting.env);
  });

  it("checks the Redis variables it passes on, with the URL", () => {
    const problems = problemsOf(REQUIRED, { ...ENV, SFN_REDIS_CLUSTER: "maybe", SFN_REDIS_LEASE_TTL: "1s" });
    expect(problems.map((line) => line.slice(0, line.indexOf(":")))).to.have.members([
      "SFN_REDIS_CLUSTER",
      "SFN_REDIS_LEASE_TTL",
    ]);
  });

  describe("durations and the lease", () => {
    it("refuses durations without units or with spaces, and zero", () => {
      for (const text of ["15", "15 s", "1d", "", "0s", "0ms"]) {
        if (text === "") continue; // empty is unset: the default
        const problems = problemsOf({ ...REQUIRED, SFN_STATUS_INTERVAL: text });
        expect(problems, text).to.have.length(1);
        expect(problems[0]).to.match(/^SFN_STATUS_INTERVAL: /);
      }
      expect(settingsOf({ SFN_STATUS_INTERVAL: "" }).statusIntervalMs).to.equal(5_000);
      expect(settingsOf({ SFN_API_TIMEOUT: "1m30s" }).apiTimeoutMs).to.equal(90_000);
      expect(settingsOf({ SFN_API_TIMEOUT: "250ms" }).apiTimeoutMs).to.equal(250);
    });

    it("requires lease duration > renew deadline > 1.2 x retry period", () => {
      const lease = (duration: string, deadline: string, retry: string) => ({
        ...REQUIRED,
        SFN_LEASE_DURATION: duration,
        SFN_RENEW_DEADLINE: deadline,
        SFN_RETRY_PERIOD: retry,
      });
      const named = (values: Record<string, string>) =>
        operatorSettingsFrom(values, ENV).problems.map((line) => line.slice(0, line.indexOf(":")));
      expect(named(lease("15s", "10s", "2s"))).to.deep.equal([]);
      expect(named(lease("10s", "10s", "2s"))).to.deep.equal(["SFN_LEASE_DURATION"]);
      expect(named(lease("9s", "10s", "2s"))).to.deep.equal(["SFN_LEASE_DURATION"]);
      expect(named(lease("10001ms", "10s", "2s"))).to.deep.equal([]);
      // 1.2 x 2 s = 2.4 s: the deadline must be longer.
      expect(named(lease("15s", "2400ms", "2s"))).to.deep.equal(["SFN_RENEW_DEADLINE"]);
      expect(named(lease("15s", "2401ms", "2s"))).to.deep.equal([]);
      expect(named(lease("15s", "2s", "2s"))).to.deep.equal(["SFN_RENEW_DEADLINE"]);
      expect(named(lease("2s", "2s", "2s"))).to.deep.equal(["SFN_LEASE_DURATION", "SFN_RENEW_DEADLINE"]);
      // A duration that does not parse is reported once, not again by the rules.
      expect(named(lease("15s", "soon", "2s"))).to.deep.equal(["SFN_RENEW_DEADLINE"]);
    });
  });

  describe("namespaces", () => {
    it("serves every namespace by default, or the listed ones, once each", () => {
      expect(settingsOf({}).watchNamespaces).to.deep.equal([]);
      expect(
        settingsOf({ SFN_WATCH_NAMESPACES: " team-a , team-b,,team-c, " }).watchNamespaces,
      ).to.deep.equal(["team-a", "team-b", "team-c"]);
      expect(settingsOf({ SFN_WATCH_NAMESPACES: "team-a,team-b,team-a" }).watchNamespaces).to.deep.equal([
        "team-a",
        "team-b",
      ]);
      expect(settingsOf({ SFN_WATCH_NAMESPACES: ",," }).watchNamespaces).to.deep.equal([]);
    });

    it("names each bad namespace", () => {
      const problems = problemsOf({ ...REQUIRED, SFN_WATCH_NAMESPACES: "team-a,Team_B,-c" });
      expect(problems).to.deep.equal([
        'SFN_WATCH_NAMESPACES: "Team_B" is not a namespace name',
        'SFN_WATCH_NAMESPACES: "-c" is not a namespace name',
      ]);
    });

    it("finds its own namespace in SFN_NAMESPACE, else POD_NAMESPACE, else the default", () => {
      expect(settingsOf({ SFN_NAMESPACE: "ops" }).namespace).to.equal("ops");
      expect(settingsOf({}, { POD_NAMESPACE: "from-pod" }).namespace).to.equal("from-pod");
      // An empty variable is unset, as everywhere.
      const fallback = existsSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        ? undefined
        : "default";
      if (fallback !== undefined) {
        expect(settingsOf({}, {}).namespace).to.equal(fallback);
        expect(settingsOf({}, { POD_NAMESPACE: "" }).namespace).to.equal(fallback);
        expect(settingsOf({}, { POD_NAMESPACE: "  " }).namespace).to.equal(fallback);
      }
    });
  });

  describe("identity and region", () => {
    it("is the pod's name, else the host name and process id", () => {
      expect(settingsOf({}, { POD_NAME: "op-1" }).leaderElection.identity).to.equal("op-1");
      expect(settingsOf({}, {}).leaderElection.identity).to.equal(`${hostname()}-${process.pid}`);
      expect(settingsOf({}, { POD_NAME: " " }).leaderElection.identity).to.equal(
        `${hostname()}-${process.pid}`,
      );
    });

    it("takes the region from SFN_REGION, else AWS_REGION, else none", () => {
      expect(settingsOf({ SFN_REGION: "eu-west-1" }, { AWS_REGION: "us-east-1" }).poller.region).to.equal(
        "eu-west-1",
      );
      expect(settingsOf({}, { AWS_REGION: "us-east-1" }).poller.region).to.equal("us-east-1");
      expect(settingsOf({}, {}).poller).to.not.have.property("region");
      expect(problemsOf({ ...REQUIRED }, { AWS_REGION: "Not A Region" })[0]).to.match(/^SFN_REGION: /);
    });
  });

  describe("Redis password Secret", () => {
    it("reads the pollers' Redis CA Secret and refuses a malformed one", () => {
      expect(
        settingsOf({ SFN_POLLER_REDIS_CA_SECRET: "redis-ca:ca.crt" }).poller.redisCaSecret,
      ).to.deep.equal({
        name: "redis-ca",
        key: "ca.crt",
      });
      expect(settingsOf({}).poller.redisCaSecret).to.equal(undefined);
      const problems = problemsOf({ ...REQUIRED, SFN_POLLER_REDIS_CA_SECRET: "redis-ca" });
      expect(problems).to.deep.equal([
        'SFN_POLLER_REDIS_CA_SECRET: must be <secret name>:<key>, such as "redis-ca:ca.crt", got "redis-ca"',
      ]);
    });

    it("is <secret>:<key>", () => {
      expect(
        settingsOf({ SFN_POLLER_REDIS_PASSWORD_SECRET: "redis-auth:password" }).poller.redisPasswordSecret,
      ).to.deep.equal({ name: "redis-auth", key: "password" });
      expect(
        settingsOf({ SFN_POLLER_REDIS_PASSWORD_SECRET: "redis.auth.v2:redis_PASSWORD-1.txt" }).poller
          .redisPasswordSecret,
      ).to.deep.equal({ name: "redis.auth.v2", key: "redis_PASSWORD-1.txt" });
      expect(settingsOf({}).poller).to.not.have.property("redisPasswordSecret");
    });

    for (const text of [
      "redis-auth",
      "redis-auth:",
      ":password",
      "a:b:c",
      "Redis-Auth:password",
      "redis-auth:pass word",
    ]) {
      it(`refuses ${JSON.stringify(text)}`, () => {
        const problems = problemsOf({ ...REQUIRED, SFN_POLLER_REDIS_PASSWORD_SECRET: text });
        expect(problems).to.have.length(1);
        expect(problems[0]).to.match(/^SFN_POLLER_REDIS_PASSWORD_SECRET: must be <secret name>:<key>/);
      });
    }
  });

  describe("poller resources", () => {
    it("reads requests and limits, quantities as strings", () => {
      expect(
        resourcesFromJson('{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"1Gi"}}'),
      ).to.deep.equal({
        requests: { cpu: "100m", memory: "128Mi" },
        limits: { memory: "1Gi" },
      });
      expect(
        resourcesFromJson('{"limits":{"cpu":1,"memory":"1.5Gi","ephemeral-storage":"1e9"}}'),
      ).to.deep.equal({
        limits: { cpu: "1", memory: "1.5Gi", "ephemeral-storage": "1e9" },
      });
      expect(resourcesFromJson("{}")).to.deep.equal({});
      expect(
        settingsOf({ SFN_POLLER_RESOURCES: '{"requests":{"cpu":"10m"}}' }).poller.resources,
      ).to.deep.equal({
        requests: { cpu: "10m" },
      });
    });

    const bad: Array<[string, RegExp]> = [
      ["{", /^must be JSON such as/],
      ["requests: {cpu: 1}", /^must be JSON such as/],
      ["[]", /^must be a JSON object/],
      ['"100m"', /^must be a JSON object/],
      ["null", /^must be a JSON object/],
      ['{"request":{"cpu":"1"}}', /^unknown key "request" \(requests, limits\)/],
      ['{"requests":{"cpu":"1"},"claims":[]}', /^unknown key "claims"/],
      ['{"requests":"100m"}', /^requests must be an object of quantities/],
      ['{"limits":[]}', /^limits must be an object of quantities/],
      [
        '{"requests":{"cpu":"lots"}}',
        /^requests.cpu must be a quantity such as "100m" or "128Mi", got "lots"/,
      ],
      ['{"limits":{"memory":"128MB"}}', /^limits.memory must be a quantity/],
      ['{"limits":{"memory":"128 Mi"}}', /^limits.memory must be a quantity/],
      ['{"limits":{"memory":true}}', /^limits.memory must be a quantity/],
      ['{"limits":{"memory":null}}', /^limits.memory must be a quantity/],
    ];
    for (const [text, message] of bad) {
      it(`refuses ${text}`, () => {
        const parsed = resourcesFromJson(text);
        expect(parsed).to.be.a("string").and.match(message);
        const problems = problemsOf({ ...REQUIRED, SFN_POLLER_RESOURCES: text });
        expect(problems).to.deep.equal([`SFN_POLLER_RESOURCES: ${parsed as string}`]);
      });
    }
  });

  describe("the proxy passed on to the pollers", () => {
    const proxyOf = (env: NodeJS.ProcessEnv, values: Record<string, string> = {}) =>
      settingsOf(values, { ...ENV, ...env }).poller.proxyEnv;

    it("passes nothing when the operator has no proxy", () => {
      expect(proxyOf({})).to.deep.equal({});
      // NO_PROXY alone is not passed: without a proxy it means nothing to the pollers.
      expect(proxyOf({ NO_PROXY: "10.0.0.0/8", no_proxy: ".corp" })).to.deep.equal({});
    });

    it("passes the operator's proxy variables in either case, and exempts the target Services", () => {
      expect(
        proxyOf({
          HTTPS_PROXY: " http://proxy.corp:3128 ",
          http_proxy: "proxy.corp:3128",
          NO_PROXY: "10.0.0.0/8",
        }),
      ).to.deep.equal({
        HTTPS_PROXY: "http://proxy.corp:3128",
        http_proxy: "proxy.corp:3128",
        NO_PROXY: "10.0.0.0/8,.svc",
      });
      // Without NO_PROXY the pollers get one: their targets are http://<service>.<namespace>.svc.
      expect(proxyOf({ ALL_PROXY: "http://proxy.corp:3128" })).to.deep.equal({
        ALL_PROXY: "http://proxy.corp:3128",
        NO_PROXY: ".svc",
      });
      // Each case the operator has gets it (proxy-from-env reads the lower case first).
      expect(
        proxyOf({ HTTPS_PROXY: "http://p:1", no_proxy: "a.example", NO_PROXY: "b.example" }),
      ).to.deep.equal({
        HTTPS_PROXY: "http://p:1",
        no_proxy: "a.example,.svc",
        NO_PROXY: "b.example,.svc",
      });
      // Already exempted: left as it is.
      for (const noProxy of [".svc", "*.svc", "localhost, .svc", "*"]) {
        expect(proxyOf({ HTTPS_PROXY: "http://p:1", NO_PROXY: noProxy }).NO_PROXY, noProxy).to.equal(noProxy);
      }
    });

    it("passes nothing with SFN_POLLER_PROXY=none", () => {
      expect(proxyOf({ HTTPS_PROXY: "http://proxy.corp:3128" }, { SFN_POLLER_PROXY: "none" })).to.deep.equal(
        {},
      );
    });

    it("does not pass a proxy with credentials into the Deployments' plain text, and says so", () => {
      for (const proxy of [
        "http://user:pa55@proxy.corp:3128",
        "user:pa55@proxy.corp:3128",
        "http://token@proxy.corp",
        '"http://user:pa55@proxy.corp"',
        "http:/user:pa55@proxy.corp",
      ]) {
        const result = operatorSettingsFrom(
          { ...REQUIRED },
          { ...ENV, HTTPS_PROXY: proxy, HTTP_PROXY: "http://plain.corp:3128" },
        );
        // The operator starts (it ran with this proxy before pollers inherited it) ...
        expect(result.problems, proxy).to.deep.equal([]);
        // ... the pollers get the other proxy only ...
        expect(result.settings?.poller.proxyEnv, proxy).to.deep.equal({
          HTTP_PROXY: "http://plain.corp:3128",
          NO_PROXY: ".svc",
        });
        // ... and the start-up log says why, without the password.
        expect(result.warnings, proxy).to.have.length(1);
        expect(result.warnings[0]).to.match(/^HTTPS_PROXY holds credentials/);
        expect(result.warnings[0]).to.contain("SFN_POLLER_PROXY");
        expect(result.warnings[0], "the message never repeats the password").to.not.contain("pa55");
      }
      // With none, the operator uses it for itself and nothing is said.
      const none = operatorSettingsFrom(
        { ...REQUIRED, SFN_POLLER_PROXY: "none" },
        { ...ENV, HTTPS_PROXY: "http://u:p@proxy:1" },
      );
      expect(none.settings?.poller.proxyEnv).to.deep.equal({});
      expect(none.warnings).to.deep.equal([]);
    });
  });

  describe("other settings", () => {
    it("reads whole numbers of workers from 1 to 64", () => {
      expect(settingsOf({ SFN_WORKERS: "1" }).workers).to.equal(1);
      expect(settingsOf({ SFN_WORKERS: "64" }).workers).to.equal(64);
      for (const text of ["0", "65", "2.5", "-1", "four", "1e1"]) {
        expect(problemsOf({ ...REQUIRED, SFN_WORKERS: text })[0], text).to.match(
          /^SFN_WORKERS: must be a whole number from 1 to 64/,
        );
      }
    });

    it("reads true and false in any case for leader election", () => {
      expect(settingsOf({ SFN_LEADER_ELECT: "FALSE" }).leaderElection.enabled).to.equal(false);
      expect(settingsOf({ SFN_LEADER_ELECT: "True" }).leaderElection.enabled).to.equal(true);
      expect(problemsOf({ ...REQUIRED, SFN_LEADER_ELECT: "1" })[0]).to.match(
        /^SFN_LEADER_ELECT: must be true or false/,
      );
    });

    it("reads the pull policy, log level and endpoint exactly", () => {
      for (const policy of ["Always", "IfNotPresent", "Never"]) {
        expect(settingsOf({ SFN_POLLER_IMAGE_PULL_POLICY: policy }).poller.imagePullPolicy).to.equal(policy);
      }
      for (const level of ["error", "warn", "info", "debug"]) {
        expect(settingsOf({ SFN_POLLER_LOG_LEVEL: level }).poller.logLevel).to.equal(level);
      }
      expect(
        settingsOf({ SFN_POLLER_AWS_ENDPOINT_URL: "https://vpce-1.states.us-east-1.vpce.amazonaws.com" })
          .poller.awsEndpointUrl,
      ).to.equal("https://vpce-1.states.us-east-1.vpce.amazonaws.com");
    });
  });

  describe("labels of problems", () => {
    it("names each problem as labelOf says (the CLI: the flag the user gave)", () => {
      const problems = problemsOf(
        { SFN_WORKERS: "0", SFN_LEASE_DURATION: "5s", SFN_RENEW_DEADLINE: "10s", SFN_RETRY_PERIOD: "2s" },
        ENV,
        flagOf,
      );
      expect(problems.map((line) => line.slice(0, line.indexOf(":")))).to.have.members([
        "--poller-image",
        "--redis-url",
        "--lease-duration",
        "--workers",
      ]);
      // The other setting a rule names is labelled the same way.
      expect(problems.find((line) => line.startsWith("--lease-duration"))).to.contain("--renew-deadline");
      const retry = problemsOf({ ...REQUIRED, SFN_RENEW_DEADLINE: "2s" }, ENV, flagOf);
      expect(retry).to.have.length(1);
      expect(retry[0]).to.match(/^--renew-deadline: .*--retry-period/);
    });
  });

  it("documents each setting once, with a flag", () => {
    const envs = OPERATOR_SETTINGS.map((setting) => setting.env);
    const flags = OPERATOR_SETTINGS.map((setting) => setting.flag);
    expect(new Set(envs).size).to.equal(envs.length);
    expect(new Set(flags).size).to.equal(flags.length);
    for (const setting of OPERATOR_SETTINGS) {
      expect(setting.env).to.match(/^SFN_[A-Z0-9_]+$/);
      expect(setting.flag).to.match(/^--[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(setting.description.length, setting.env).to.be.greaterThan(10);
      expect(setting.default.length, setting.env).to.be.greaterThan(0);
    }
  });
});
