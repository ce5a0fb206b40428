import { hostname } from "node:os";
import { expect } from "chai";
import { ConfigError, POLLER_ENV_VARS, pollerConfigFromEnv } from "../../src/poller/env.ts";

const ARN = "arn:aws:states:us-east-1:123456789012:activity:sum";

/** The smallest valid environment. */
const base = { SFN_ACTIVITY_NAME: "sum", SFN_TARGET_URL: "http://svc.ns:8080", SFN_TARGET_PATH: "/step/sum" };

/** The issues pollerConfigFromEnv reports for `env`. */
function issues(env: NodeJS.ProcessEnv): string[] {
  try {
    pollerConfigFromEnv(env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.message).to.equal(configError.issues.join("\n"));
    return configError.issues;
  }
  throw new Error("expected the environment to be refused");
}

describe("poller environment", () => {
  describe("valid environments", () => {
    it("applies the defaults", () => {
      expect(pollerConfigFromEnv(base)).to.deep.equal({
        settings: {
          sourceName: "sum",
          activityName: "sum",
          targetUrl: "http://svc.ns:8080/step/sum",
          maxConcurrency: 1,
          concurrencyPerPoller: 1,
          requestTimeoutMs: 300_000,
          heartbeatIntervalMs: 10_000,
        },
        workerName: hostname().slice(0, 80),
        warnings: [],
      });
    });

    it("reads every variable", () => {
      const config = pollerConfigFromEnv({
        SFN_ACTIVITY_NAME: "sum",
        SFN_ACTIVITY_ARN: ARN,
        SFN_SOURCE_NAME: "team-a/sum",
        SFN_TARGET_URL: "https://svc.ns.svc:8443/api/",
        SFN_TARGET_PATH: "/step/sum",
        SFN_MAX_CONCURRENCY: "10",
        SFN_CONCURRENCY_PER_POLLER: "5",
        SFN_REQUEST_TIMEOUT: "90s",
        SFN_HEARTBEAT_INTERVAL: "1m30s",
        SFN_REDIS_URL: "redis://redis.ns:6379/0",
        SFN_WORKER_NAME: "worker-1",
        POD_NAME: "ignored-when-worker-name-is-set",
      });
      expect(config).to.deep.equal({
        settings: {
          sourceName: "team-a/sum",
          activityName: "sum",
          activityArn: ARN,
          targetUrl: "https://svc.ns.svc:8443/api/step/sum",
          maxConcurrency: 10,
          concurrencyPerPoller: 5,
          requestTimeoutMs: 90_000,
          heartbeatIntervalMs: 90_000,
        },
        redisUrl: "redis://redis.ns:6379/0",
        workerName: "worker-1",
        warnings: [],
      });
    });

    it("takes the activity name from the ARN's last segment when only the ARN is given", () => {
      const { SFN_ACTIVITY_NAME: _, ...withoutName } = base;
      const config = pollerConfigFromEnv({
        ...withoutName,
        SFN_ACTIVITY_ARN: "arn:aws-us-gov:states:us-gov-west-1:123456789012:activity:my-activity",
      });
      expect(config.settings.activityName).to.equal("my-activity");
      expect(config.settings.sourceName).to.equal("my-activity");
      expect(config.settings.activityArn).to.equal(
        "arn:aws-us-gov:states:us-gov-west-1:123456789012:activity:my-activity",
      );
    });

    it("names the worker after POD_NAME, truncated to 80 characters", () => {
      expect(pollerConfigFromEnv({ ...base, POD_NAME: "poller-abc" }).workerName).to.equal("poller-abc");
      const long = `${"p".repeat(79)}😀tail`;
      expect(pollerConfigFromEnv({ ...base, SFN_WORKER_NAME: long }).workerName).to.equal(
        `${"p".repeat(79)}😀`,
      );
    });

    it("treats empty and blank variables as unset, and trims values", () => {
      const config = pollerConfigFromEnv({
        ...base,
        SFN_MAX_CONCURRENCY: " 4 ",
        SFN_REDIS_URL: "",
        SFN_SOURCE_NAME: "  ",
        SFN_REQUEST_TIMEOUT: "",
      });
      expect(config.settings.maxConcurrency).to.equal(4);
      expect(config.settings.sourceName).to.equal("sum");
      expect(config.settings.requestTimeoutMs).to.equal(300_000);
      expect(config).not.to.have.property("redisUrl");
    });

    it("warns about unknown SFN_ variables, suggesting the closest name", () => {
      const config = pollerConfigFromEnv({
        ...base,
        SFN_MAX_CONCURENCY: "5",
        SFN_SOMETHING_ELSE: "x",
        OTHER: "y",
      });
      expect(config.warnings).to.deep.equal([
        "SFN_MAX_CONCURENCY: unknown variable, ignored (did you mean SFN_MAX_CONCURRENCY?)",
        "SFN_SOMETHING_ELSE: unknown variable, ignored",
      ]);
      expect(config.settings.maxConcurrency).to.equal(1);
    });
  });

  describe("errors", () => {
    it("requires the activity name or ARN, the target URL and the target path", () => {
      expect(issues({})).to.deep.equal([
        "SFN_ACTIVITY_NAME: is required unless SFN_ACTIVITY_ARN is set",
        "SFN_TARGET_URL: is required",
        "SFN_TARGET_PATH: is required",
      ]);
    });

    it("validates the ARN and the name inside it", () => {
      expect(
        issues({ ...base, SFN_ACTIVITY_ARN: "arn:aws:states:us-east-1:123:activity:sum" }),
      ).to.deep.equal([
        'SFN_ACTIVITY_ARN: must be an activity ARN such as "arn:aws:states:us-east-1:123456789012:activity:sum", ' +
          'got "arn:aws:states:us-east-1:123:activity:sum"',
      ]);
      expect(
        issues({ ...base, SFN_ACTIVITY_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:sum" })[0],
      ).to.match(/^SFN_ACTIVITY_ARN: must be an activity ARN/);
      const { SFN_ACTIVITY_NAME: _, ...withoutName } = base;
      expect(
        issues({ ...withoutName, SFN_ACTIVITY_ARN: "arn:aws:states:us-east-1:123456789012:activity:a b" }),
      ).to.deep.equal([
        'SFN_ACTIVITY_ARN: activity name must not contain " " (AWS refuses white space, < > { } [ ], wildcards ' +
          '? *, control characters and " # % \\ ^ | ~ ` $ & , ; : /), got "a b"',
      ]);
    });

    it("refuses a name that differs from the ARN's", () => {
      expect(issues({ ...base, SFN_ACTIVITY_NAME: "other", SFN_ACTIVITY_ARN: ARN })).to.deep.equal([
        'SFN_ACTIVITY_NAME: must match the name in SFN_ACTIVITY_ARN ("sum"), got "other"',
      ]);
    });

    it("refuses a bad activity name", () => {
      expect(issues({ ...base, SFN_ACTIVITY_NAME: "a/b" })[0]).to.match(
        /^SFN_ACTIVITY_NAME: must not contain "\/" \(AWS refuses/,
      );
      expect(issues({ ...base, SFN_ACTIVITY_NAME: "x".repeat(81) })).to.deep.equal([
        "SFN_ACTIVITY_NAME: must be at most 80 characters, got 81",
      ]);
    });

    it("refuses bad URLs and paths", () => {
      expect(
        issues({
          ...base,
          SFN_TARGET_URL: "svc:8080",
          SFN_TARGET_PATH: "step",
          SFN_REDIS_URL: "localhost:6379",
        }),
      ).to.deep.equal([
        'SFN_TARGET_URL: must be an http:// or https:// URL such as "http://127.0.0.1:8080", got "svc:8080"',
        'SFN_TARGET_PATH: must be a path that starts with "/" and has no spaces, got "step"',
        'SFN_REDIS_URL: must be a redis:// or rediss:// URL such as "redis://127.0.0.1:6379", got "localhost:6379"',
      ]);
    });

    it("refuses non-numbers, non-integers and out-of-range numbers", () => {
      expect(
        issues({ ...base, SFN_MAX_CONCURRENCY: "ten", SFN_CONCURRENCY_PER_POLLER: "1.5" }),
      ).to.deep.equal([
        'SFN_MAX_CONCURRENCY: must be a whole number, got "ten"',
        "SFN_CONCURRENCY_PER_POLLER: must be a whole number, got 1.5",
      ]);
      expect(issues({ ...base, SFN_MAX_CONCURRENCY: "5000", SFN_CONCURRENCY_PER_POLLER: "0" })).to.deep.equal(
        [
          "SFN_MAX_CONCURRENCY: must be at most 1000, got 5000",
          "SFN_CONCURRENCY_PER_POLLER: must be at least 1, got 0",
        ],
      );
      expect(issues({ ...base, SFN_MAX_CONCURRENCY: "1e3" })).to.deep.equal([
        'SFN_MAX_CONCURRENCY: must be a whole number, got "1e3"',
      ]);
    });

    it("refuses bad and out-of-range durations", () => {
      expect(issues({ ...base, SFN_REQUEST_TIMEOUT: "30", SFN_HEARTBEAT_INTERVAL: "500ms" })).to.deep.equal([
        'SFN_REQUEST_TIMEOUT: needs a unit (ms, s, m or h), got "30"',
        'SFN_HEARTBEAT_INTERVAL: must be at least 1s, got "500ms"',
      ]);
      expect(issues({ ...base, SFN_REQUEST_TIMEOUT: "25h", SFN_HEARTBEAT_INTERVAL: "-10s" })).to.deep.equal([
        'SFN_REQUEST_TIMEOUT: must be at most 24h, got "25h"',
        'SFN_HEARTBEAT_INTERVAL: must not be negative, got "-10s"',
      ]);
    });

    it("refuses a Redis lease TTL that one slow refresh could outlive, with the other problems", () => {
      // The Redis variables are read only with a Redis URL: without one there is no lease.
      const redis = { SFN_REDIS_URL: "redis://127.0.0.1:6379" };
      expect(
        issues({ ...base, ...redis, SFN_REQUEST_TIMEOUT: "30", SFN_REDIS_LEASE_TTL: "500ms" }),
      ).to.deep.equal([
        'SFN_REQUEST_TIMEOUT: needs a unit (ms, s, m or h), got "30"',
        'SFN_REDIS_LEASE_TTL: must be from 6s to 10m, got "500ms"',
      ]);
      expect(issues({ ...base, ...redis, SFN_REDIS_LEASE_TTL: "11m" })).to.deep.equal([
        'SFN_REDIS_LEASE_TTL: must be from 6s to 10m, got "11m"',
      ]);
      expect(issues({ ...base, ...redis, SFN_REDIS_LEASE_TTL: "15" })).to.deep.equal([
        'SFN_REDIS_LEASE_TTL: needs a unit (ms, s, m or h), got "15"',
      ]);
      expect(() => pollerConfigFromEnv({ ...base, SFN_REDIS_LEASE_TTL: "6s" })).not.to.throw();
    });

    it("refuses more loops per poller than maxConcurrency, naming the variables", () => {
      expect(issues({ ...base, SFN_MAX_CONCURRENCY: "4", SFN_CONCURRENCY_PER_POLLER: "8" })).to.deep.equal([
        "SFN_CONCURRENCY_PER_POLLER: must not exceed SFN_MAX_CONCURRENCY (4), got 8",
      ]);
      expect(issues({ ...base, SFN_CONCURRENCY_PER_POLLER: "2" })).to.deep.equal([
        "SFN_CONCURRENCY_PER_POLLER: must not exceed SFN_MAX_CONCURRENCY (1), got 2",
      ]);
    });

    it("reports every bad variable at once, in a stable order", () => {
      expect(
        issues({
          SFN_ACTIVITY_ARN: "nope",
          SFN_TARGET_PATH: "x",
          SFN_MAX_CONCURRENCY: "2",
          SFN_CONCURRENCY_PER_POLLER: "3",
          SFN_REQUEST_TIMEOUT: "5d",
          SFN_REDIS_URL: "http://r",
        }),
      ).to.deep.equal([
        'SFN_ACTIVITY_ARN: must be an activity ARN such as "arn:aws:states:us-east-1:123456789012:activity:sum", got "nope"',
        "SFN_TARGET_URL: is required",
        'SFN_TARGET_PATH: must be a path that starts with "/" and has no spaces, got "x"',
        "SFN_CONCURRENCY_PER_POLLER: must not exceed SFN_MAX_CONCURRENCY (2), got 3",
        'SFN_REQUEST_TIMEOUT: has an unknown unit "d" (use ms, s, m or h), got "5d"',
        'SFN_REDIS_URL: must be a redis:// or rediss:// URL such as "redis://127.0.0.1:6379", got "http://r"',
      ]);
    });
  });

  describe("SFN_LIMIT_FROM_REDIS", () => {
    const redis = { SFN_REDIS_URL: "redis://redis.ns:6379" };

    it("takes the limit from Redis: no limit from the environment, any number of loops", () => {
      const config = pollerConfigFromEnv({
        ...base,
        ...redis,
        SFN_LIMIT_FROM_REDIS: "true",
        SFN_CONCURRENCY_PER_POLLER: "8",
      });
      expect(config).to.deep.include({ redisUrl: "redis://redis.ns:6379", limitFromRedis: true });
      // 0: none known from the environment (the poller takes no task until Redis holds one).
      expect(config.settings).to.deep.include({ maxConcurrency: 0, concurrencyPerPoller: 8 });
      expect(config.warnings).to.deep.equal([]);
    });

    it("accepts true and false in any case; false (or unset) changes nothing", () => {
      expect(
        pollerConfigFromEnv({ ...base, ...redis, SFN_LIMIT_FROM_REDIS: "TRUE" }).limitFromRedis,
      ).to.equal(true);
      for (const value of ["false", "False", "", " "]) {
        const config = pollerConfigFromEnv({
          ...base,
          ...redis,
          SFN_LIMIT_FROM_REDIS: value,
          SFN_MAX_CONCURRENCY: "3",
        });
        expect(config, JSON.stringify(value)).not.to.have.property("limitFromRedis");
        expect(config.settings.maxConcurrency).to.equal(3);
      }
      expect(issues({ ...base, ...redis, SFN_LIMIT_FROM_REDIS: "yes" })).to.deep.equal([
        'SFN_LIMIT_FROM_REDIS: must be true or false, got "yes"',
      ]);
    });

    it("requires SFN_REDIS_URL", () => {
      expect(issues({ ...base, SFN_LIMIT_FROM_REDIS: "true" })).to.deep.equal([
        "SFN_LIMIT_FROM_REDIS: requires SFN_REDIS_URL: the limit is read from that Redis",
      ]);
    });

    it("refuses SFN_MAX_CONCURRENCY with it, even a valid one", () => {
      expect(
        issues({ ...base, ...redis, SFN_LIMIT_FROM_REDIS: "true", SFN_MAX_CONCURRENCY: "4" }),
      ).to.deep.equal([
        "SFN_MAX_CONCURRENCY: must not be set with SFN_LIMIT_FROM_REDIS=true: the limit is read from Redis (the operator writes it there)",
      ]);
    });

    it("lists its problems with the others, in order", () => {
      expect(
        issues({
          SFN_ACTIVITY_NAME: "sum",
          SFN_TARGET_URL: "http://t",
          SFN_MAX_CONCURRENCY: "5000",
          SFN_CONCURRENCY_PER_POLLER: "20",
          SFN_LIMIT_FROM_REDIS: "true",
          SFN_REDIS_LEASE_TTL: "1s",
        }),
      ).to.deep.equal([
        "SFN_TARGET_PATH: is required",
        "SFN_MAX_CONCURRENCY: must be at most 1000, got 5000",
        "SFN_MAX_CONCURRENCY: must not be set with SFN_LIMIT_FROM_REDIS=true: the limit is read from Redis (the operator writes it there)",
        "SFN_LIMIT_FROM_REDIS: requires SFN_REDIS_URL: the limit is read from that Redis",
      ]);
    });
  });

  describe("POLLER_ENV_VARS", () => {
    it("documents every variable the poller reads, once, with a description", () => {
      const names = POLLER_ENV_VARS.map((variable) => variable.name);
      expect(names).to.deep.equal([
        "SFN_ACTIVITY_NAME",
        "SFN_ACTIVITY_ARN",
        "SFN_SOURCE_NAME",
        "SFN_TARGET_URL",
        "SFN_TARGET_PATH",
        "SFN_TARGET_HEADERS",
        "SFN_MAX_CONCURRENCY",
        "SFN_CONCURRENCY_PER_POLLER",
        "SFN_REQUEST_TIMEOUT",
        "SFN_HEARTBEAT_INTERVAL",
        "SFN_REDIS_URL",
        "SFN_LIMIT_FROM_REDIS",
        "SFN_WORKER_NAME",
      ]);
      for (const variable of POLLER_ENV_VARS) expect(variable.description, variable.name).to.not.equal("");
    });

    it("marks exactly the variables without which the poller refuses to start as required", () => {
      const required = POLLER_ENV_VARS.filter((variable) => variable.required).map(
        (variable) => variable.name,
      );
      expect(required).to.deep.equal(["SFN_TARGET_URL", "SFN_TARGET_PATH"]);
      const missing = issues({ SFN_ACTIVITY_NAME: "sum" }).map((line) => line.split(":")[0]);
      expect(missing).to.deep.equal(required);
      for (const variable of POLLER_ENV_VARS) {
        if (!variable.required) expect(variable.default, variable.name).to.be.a("string");
      }
    });

    it("states the same defaults the poller applies", () => {
      const byName = new Map(POLLER_ENV_VARS.map((variable) => [variable.name, variable.default]));
      const { settings } = pollerConfigFromEnv(base);
      expect(byName.get("SFN_MAX_CONCURRENCY")).to.equal(String(settings.maxConcurrency));
      expect(byName.get("SFN_CONCURRENCY_PER_POLLER")).to.equal(String(settings.concurrencyPerPoller));
      expect(byName.get("SFN_REQUEST_TIMEOUT")).to.equal("5m");
      expect(settings.requestTimeoutMs).to.equal(300_000);
      expect(byName.get("SFN_HEARTBEAT_INTERVAL")).to.equal("10s");
      expect(settings.heartbeatIntervalMs).to.equal(10_000);
    });
  });
});

describe("poller environment: SFN_TARGET_HEADERS", () => {
  const secrets = { API_TOKEN: "Bearer s3cr3t-token", TEAM: "payments", SFN_TEAM_KEY: "k3y" };

  it("reads Name=VARIABLE pairs, values from the named variables", () => {
    const config = pollerConfigFromEnv({
      ...base,
      ...secrets,
      SFN_TARGET_HEADERS: " Authorization=API_TOKEN , X-Team = TEAM,X-Key=SFN_TEAM_KEY,",
    });
    expect(config.settings.targetHeaders).to.deep.equal({
      Authorization: "Bearer s3cr3t-token",
      "X-Team": "payments",
      "X-Key": "k3y",
    });
    // A variable the headers name is read, so it is not an unknown SFN_* variable.
    expect(config.warnings).to.deep.equal([]);
  });

  it("has no targetHeaders when unset or empty", () => {
    expect(pollerConfigFromEnv(base).settings).not.to.have.property("targetHeaders");
    expect(pollerConfigFromEnv({ ...base, SFN_TARGET_HEADERS: " " }).settings).not.to.have.property(
      "targetHeaders",
    );
  });

  it("lists every problem, naming headers and variables but never values", () => {
    const found = issues({
      ...base,
      ...secrets,
      SFN_MAX_CONCURRENCY: "0",
      NEWLINE: "s3cr3t\n",
      EMPTY: "",
      SFN_TARGET_HEADERS: [
        "Authorization=MISSING",
        "X-Empty=EMPTY",
        "X-Newline=NEWLINE",
        "Content-Length=TEAM",
        "step-func-task-id=TEAM",
        "x-team=TEAM",
        "X-TEAM=TEAM",
        "Bearer s3cr3t-inline",
        "X-Pasted=Bearer s3cr3t-pasted",
        "Bad Name=TEAM",
        "=TEAM",
      ].join(","),
    });
    expect(found).to.deep.equal([
      "SFN_TARGET_HEADERS: item 8: must be Header-Name=VARIABLE (the variable that holds the value)",
      'SFN_TARGET_HEADERS: X-Pasted: the text after "=" is not an environment variable name (letters, digits, _): give the name of the variable that holds the value, not the value',
      'SFN_TARGET_HEADERS: item 10: the text before "=" is not a valid header name (letters, digits and ! # $ % & \' * + - . ^ _ ` | ~ only)',
      "SFN_TARGET_HEADERS: item 11: must be Header-Name=VARIABLE (the variable that holds the value)",
      "SFN_TARGET_HEADERS: Authorization: environment variable MISSING is not set",
      "SFN_TARGET_HEADERS: X-Empty: environment variable EMPTY is empty",
      "SFN_TARGET_HEADERS: X-Newline: the value of NEWLINE ends with a line feed (LF); header values must not contain CR, LF, NUL or other control characters (a trailing newline from the file a Secret was made from?)",
      "SFN_TARGET_HEADERS: Content-Length: cannot be set by configuration: the poller sets it",
      "SFN_TARGET_HEADERS: step-func-task-id: cannot be set by configuration: step-func-* headers are set by the poller (task id, deadline, activity ARN)",
      'SFN_TARGET_HEADERS: X-TEAM: is given twice (as "x-team" too; header names ignore case)',
      "SFN_MAX_CONCURRENCY: must be at least 1, got 0",
    ]);
    expect(found.join("\n")).not.to.contain("s3cr3t");
  });

  it("is documented with the other variables", () => {
    expect(POLLER_ENV_VARS.map((v) => v.name)).to.include("SFN_TARGET_HEADERS");
  });
});
