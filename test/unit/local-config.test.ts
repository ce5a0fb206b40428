import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { z } from "zod";
import { DURATION_PATTERN } from "../../src/api/duration.ts";
import { resolveSourceLimits, sourceFieldSchemas, suggestKey } from "../../src/api/fields.ts";
import { ConfigError, type LocalConfig, loadLocalConfig, parseLocalConfig } from "../../src/local/config.ts";

/** The issues parseLocalConfig reports for `text`, as lines. */
function issues(text: string): string[] {
  try {
    parseLocalConfig(text, "sources.yaml");
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.message).to.equal(configError.issues.join("\n"));
    return configError.issues;
  }
  throw new Error("expected the file to be refused");
}

/** A file with one source made of `fields`. */
function oneSource(fields: string): string {
  return `sources:\n  - activityName: sum\n    target: http://127.0.0.1:8080\n    path: /step/sum\n${fields}`;
}

describe("local-mode sources file", () => {
  describe("valid files", () => {
    it("reads the DESIGN.md example", () => {
      const config = parseLocalConfig(
        [
          "redis: redis://127.0.0.1:6379     # optional",
          "region: us-east-1",
          "sources:",
          "  - activityName: sum",
          "    target: http://127.0.0.1:8080 # base URL of the service",
          "    path: /step/sum",
          "    maxConcurrency: 10",
          "    concurrencyPerPoller: 5",
          "    requestTimeout: 90s",
          "    heartbeatInterval: 2m30.5s",
        ].join("\n"),
        "sources.yaml",
      );
      expect(config).to.deep.equal({
        redisUrl: "redis://127.0.0.1:6379",
        region: "us-east-1",
        sources: [
          {
            sourceName: "sum",
            activityName: "sum",
            targetUrl: "http://127.0.0.1:8080/step/sum",
            maxConcurrency: 10,
            concurrencyPerPoller: 5,
            requestTimeoutMs: 90_000,
            heartbeatIntervalMs: 150_500,
          },
        ],
      } satisfies LocalConfig);
    });

    it("applies the defaults and leaves out redis and region when absent", () => {
      const config = parseLocalConfig(
        "sources:\n  - activityName: a\n    target: https://svc.example/base/\n    path: /run\n",
        "f.yaml",
      );
      expect(config).to.deep.equal({
        sources: [
          {
            sourceName: "a",
            activityName: "a",
            targetUrl: "https://svc.example/base/run",
            maxConcurrency: 1,
            concurrencyPerPoller: 1,
            requestTimeoutMs: 300_000,
            heartbeatIntervalMs: 10_000,
          },
        ],
      });
      expect(config).not.to.have.property("redisUrl");
      expect(config).not.to.have.property("region");
    });

    it("keeps several sources in file order, and accepts rediss:// and flow style", () => {
      const config = parseLocalConfig(
        [
          "redis: rediss://user:pw@redis.example:6380/2",
          "sources:",
          "  - {activityName: one, target: 'http://a', path: /1, maxConcurrency: 1000, concurrencyPerPoller: 1000}",
          "  - {activityName: two, target: 'http://b:81', path: /2, requestTimeout: 100ms, heartbeatInterval: 1h}",
        ].join("\n"),
        "f.yaml",
      );
      expect(config.redisUrl).to.equal("rediss://user:pw@redis.example:6380/2");
      expect(config.sources.map((source) => source.activityName)).to.deep.equal(["one", "two"]);
      expect(config.sources[0]?.maxConcurrency).to.equal(1000);
      expect(config.sources[1]?.targetUrl).to.equal("http://b:81/2");
      expect(config.sources[1]?.requestTimeoutMs).to.equal(100);
      expect(config.sources[1]?.heartbeatIntervalMs).to.equal(3_600_000);
    });

    it("accepts the bounds of every range", () => {
      const config = parseLocalConfig(
        oneSource("    requestTimeout: 24h\n    heartbeatInterval: 1s\n    maxConcurrency: 1\n"),
        "f.yaml",
      );
      expect(config.sources[0]?.requestTimeoutMs).to.equal(86_400_000);
      expect(config.sources[0]?.heartbeatIntervalMs).to.equal(1000);
    });
  });

  describe("YAML and top level", () => {
    it("reports syntax errors with line:col", () => {
      const lines = issues("sources:\n  - activityName: sum\n    target: [http://x\n");
      expect(lines).to.have.length.greaterThan(0);
      for (const line of lines) expect(line).to.match(/^sources\.yaml:\d+:\d+: \S/);
      expect(issues("sources: [")[0]).to.match(/^sources\.yaml:1:\d+: /);
    });

    it("refuses a key given twice, with its line", () => {
      expect(issues("sources: []\nsources: []\n")).to.deep.equal([
        "sources.yaml:2:1: Map keys must be unique",
      ]);
    });

    it("refuses a file whose aliases would expand without bound", () => {
      const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
      for (const [index, name] of [..."bcdefghijklm"].entries()) {
        const previous = String.fromCharCode(97 + index);
        lines.push(`${name}: &${name} [${Array(10).fill(`*${previous}`).join(", ")}]`);
      }
      expect(issues(lines.join("\n"))).to.deep.equal([
        "sources.yaml: Excessive alias count indicates a resource exhaustion attack",
      ]);
    });

    it("refuses an empty file", () => {
      expect(issues("")).to.deep.equal([
        'sources.yaml: is empty; it must be a mapping with a "sources" list',
      ]);
      expect(issues("# nothing\n")).to.deep.equal([
        'sources.yaml: is empty; it must be a mapping with a "sources" list',
      ]);
    });

    it("refuses a top level that is not a mapping", () => {
      expect(issues("- activityName: sum\n")).to.deep.equal([
        'sources.yaml: must be a mapping with a "sources" list at the top level, got a list',
      ]);
      expect(issues("just text")).to.deep.equal([
        'sources.yaml: must be a mapping with a "sources" list at the top level, got "just text"',
      ]);
    });

    it("refuses a missing, empty or wrongly typed sources list", () => {
      expect(issues("region: us-east-1\n")).to.deep.equal(["sources.yaml: sources: is required"]);
      expect(issues("sources: []\n")).to.deep.equal(["sources.yaml: sources: must list at least one source"]);
      expect(issues("sources:\n")).to.deep.equal([
        "sources.yaml: sources: must be a list, got an empty value",
      ]);
      expect(issues("sources: {a: 1}\n")).to.deep.equal([
        "sources.yaml: sources: must be a list, got a mapping",
      ]);
    });

    it("refuses a source that is not a mapping", () => {
      expect(issues("sources:\n  - [1]\n  -\n")).to.deep.equal([
        "sources.yaml: sources[0]: must be a mapping, got a list",
        "sources.yaml: sources[1]: must be a mapping, got an empty value",
      ]);
    });
  });

  describe("unknown keys", () => {
    it("suggests the closest known key for a near-miss", () => {
      expect(issues(oneSource("    maxconcurrency: 3\n"))).to.deep.equal([
        'sources.yaml: sources[0] (sum): maxconcurrency: unknown key (did you mean "maxConcurrency"?)',
      ]);
      expect(issues(oneSource("    requestTimout: 5s\n"))).to.deep.equal([
        'sources.yaml: sources[0] (sum): requestTimout: unknown key (did you mean "requestTimeout"?)',
      ]);
      expect(issues("sourcse: []\n")).to.deep.equal([
        "sources.yaml: sources: is required",
        'sources.yaml: sourcse: unknown key (did you mean "sources"?)',
      ]);
    });

    it("lists the known keys when nothing is close", () => {
      expect(issues(oneSource("    replicas: 3\n"))).to.deep.equal([
        "sources.yaml: sources[0] (sum): replicas: unknown key (known keys: activityName, target, path, " +
          "maxConcurrency, concurrencyPerPoller, requestTimeout, heartbeatInterval, headers)",
      ]);
      expect(issues(`logLevel: debug\n${oneSource("")}`)).to.deep.equal([
        "sources.yaml: logLevel: unknown key (known keys: redis, region, sources)",
      ]);
    });
  });

  describe("field values", () => {
    it("names the file, source and field: the example of the brief", () => {
      const text = [
        "sources:",
        "  - {activityName: one, target: 'http://a', path: /1}",
        "  - {activityName: sum, target: 'http://a', path: /2, maxConcurrency: 5000}",
      ].join("\n");
      expect(issues(text)).to.deep.equal([
        "sources.yaml: sources[1] (sum): maxConcurrency: must be at most 1000, got 5000",
      ]);
    });

    it("refuses missing required fields", () => {
      expect(issues("sources:\n  - maxConcurrency: 2\n")).to.deep.equal([
        "sources.yaml: sources[0]: activityName: is required",
        "sources.yaml: sources[0]: target: is required",
        "sources.yaml: sources[0]: path: is required",
      ]);
    });

    it("refuses wrong types", () => {
      expect(
        issues(
          [
            "sources:",
            "  - activityName: 42",
            "    target: [http://a]",
            "    path: {a: 1}",
            '    maxConcurrency: "10"',
            "    concurrencyPerPoller: true",
            "    requestTimeout: 30",
            "    heartbeatInterval: null",
          ].join("\n"),
        ),
      ).to.deep.equal([
        "sources.yaml: sources[0]: activityName: must be a string, got 42",
        'sources.yaml: sources[0]: target: must be a URL such as "http://127.0.0.1:8080", got a list',
        'sources.yaml: sources[0]: path: must be a path such as "/step/sum", got a mapping',
        'sources.yaml: sources[0]: maxConcurrency: must be a whole number, got "10"',
        "sources.yaml: sources[0]: concurrencyPerPoller: must be a whole number, got true",
        'sources.yaml: sources[0]: requestTimeout: must be a duration string such as "30s" or "5m", got 30 ' +
          "(a number needs a unit)",
        'sources.yaml: sources[0]: heartbeatInterval: must be a duration string such as "30s" or "5m", ' +
          "got an empty value",
      ]);
    });

    it("refuses out-of-range and non-integer numbers", () => {
      expect(
        issues(oneSource("    maxConcurrency: 0\n    concurrencyPerPoller: 2.5\n")).concat(
          issues(oneSource("    maxConcurrency: -3\n    concurrencyPerPoller: 1001\n")),
        ),
      ).to.deep.equal([
        "sources.yaml: sources[0] (sum): maxConcurrency: must be at least 1, got 0",
        "sources.yaml: sources[0] (sum): concurrencyPerPoller: must be a whole number, got 2.5",
        "sources.yaml: sources[0] (sum): maxConcurrency: must be at least 1, got -3",
        "sources.yaml: sources[0] (sum): concurrencyPerPoller: must be at most 1000, got 1001",
      ]);
    });

    it("refuses bad and out-of-range durations", () => {
      expect(issues(oneSource('    requestTimeout: 5d\n    heartbeatInterval: "-1s"\n'))).to.deep.equal([
        'sources.yaml: sources[0] (sum): requestTimeout: has an unknown unit "d" (use ms, s, m or h), got "5d"',
        'sources.yaml: sources[0] (sum): heartbeatInterval: must not be negative, got "-1s"',
      ]);
      expect(issues(oneSource("    requestTimeout: 50ms\n    heartbeatInterval: 2h\n"))).to.deep.equal([
        'sources.yaml: sources[0] (sum): requestTimeout: must be at least 100ms, got "50ms"',
        'sources.yaml: sources[0] (sum): heartbeatInterval: must be at most 1h, got "2h"',
      ]);
      expect(issues(oneSource("    requestTimeout: 24h1ms\n    heartbeatInterval: 999ms\n"))).to.deep.equal([
        'sources.yaml: sources[0] (sum): requestTimeout: must be at most 24h, got "24h1ms"',
        'sources.yaml: sources[0] (sum): heartbeatInterval: must be at least 1s, got "999ms"',
      ]);
      expect(issues(oneSource("    requestTimeout: 99999999999999999999h\n"))).to.deep.equal([
        'sources.yaml: sources[0] (sum): requestTimeout: must be at most 24h, got "99999999999999999999h"',
      ]);
    });

    it("refuses bad target URLs and paths", () => {
      const source = (target: string, path: string) =>
        `sources:\n  - activityName: sum\n    target: "${target}"\n    path: "${path}"\n`;
      expect(issues(source("localhost:8080", "step/sum"))).to.deep.equal([
        'sources.yaml: sources[0] (sum): target: must be an http:// or https:// URL such as "http://127.0.0.1:8080", got "localhost:8080"',
        'sources.yaml: sources[0] (sum): path: must be a path that starts with "/" and has no spaces, got "step/sum"',
      ]);
      expect(issues(source("ftp://a", "/a b"))).to.deep.equal([
        'sources.yaml: sources[0] (sum): target: must be an http:// or https:// URL such as "http://127.0.0.1:8080", got "ftp://a"',
        'sources.yaml: sources[0] (sum): path: must be a path that starts with "/" and has no spaces, got "/a b"',
      ]);
      expect(issues(source("http://a/?x=1", "/a"))).to.deep.equal([
        "sources.yaml: sources[0] (sum): target: must be a base URL without a query or fragment " +
          '(the path is appended to it), got "http://a/?x=1"',
      ]);
      expect(issues(source("not a url", "/a"))[0]).to.include("target: must be an http:// or https:// URL");
    });

    it("refuses a bad redis URL and region", () => {
      expect(issues(`redis: http://127.0.0.1:6379\nregion: US East\n${oneSource("")}`)).to.deep.equal([
        'sources.yaml: redis: must be a redis:// or rediss:// URL such as "redis://127.0.0.1:6379", got "http://127.0.0.1:6379"',
        'sources.yaml: region: must be an AWS region name such as "us-east-1" (lowercase letters, digits and hyphens), got "US East"',
      ]);
      expect(issues(`redis: 6379\n${oneSource("")}`)).to.deep.equal([
        'sources.yaml: redis: must be a URL such as "redis://127.0.0.1:6379", got 6379',
      ]);
    });

    it("refuses activity names AWS refuses, naming the characters", () => {
      const named = (name: string) =>
        `sources:\n  - activityName: ${JSON.stringify(name)}\n    target: http://a\n    path: /\n`;
      expect(issues(named("a b:c"))).to.deep.equal([
        'sources.yaml: sources[0] (a b:c): activityName: must not contain " ", ":" (AWS refuses white space, ' +
          '< > { } [ ], wildcards ? *, control characters and " # % \\ ^ | ~ ` $ & , ; : /), got "a b:c"',
      ]);
      expect(issues(named("tab\there"))[0]).to.match(
        /^sources\.yaml: sources\[0\] \("tab\\there"\): activityName: must not contain "\\t" /,
      );
      expect(issues(named(""))).to.deep.equal(["sources.yaml: sources[0]: activityName: must not be empty"]);
      expect(issues(named("x".repeat(81)))[0]).to.match(
        /: activityName: must be at most 80 characters, got 81$/,
      );
    });
  });

  describe("rules across fields and sources", () => {
    it("refuses concurrencyPerPoller above maxConcurrency, including the default of 1", () => {
      expect(issues(oneSource("    maxConcurrency: 4\n    concurrencyPerPoller: 5\n"))).to.deep.equal([
        "sources.yaml: sources[0] (sum): concurrencyPerPoller: must not exceed maxConcurrency (4), got 5",
      ]);
      expect(issues(oneSource("    concurrencyPerPoller: 2\n"))).to.deep.equal([
        "sources.yaml: sources[0] (sum): concurrencyPerPoller: must not exceed maxConcurrency (1), got 2",
      ]);
    });

    it("refuses duplicate activity names, naming both indexes", () => {
      const text = [
        "sources:",
        "  - {activityName: sum, target: 'http://a', path: /1}",
        "  - {activityName: other, target: 'http://a', path: /2}",
        "  - {activityName: sum, target: 'http://b', path: /3}",
      ].join("\n");
      expect(issues(text)).to.deep.equal([
        "sources.yaml: sources[2] (sum): activityName: duplicate of sources[0]",
      ]);
    });

    it("reports every problem at once, grouped by source", () => {
      const text = [
        "redis: http://x",
        "extra: 1",
        "sources:",
        "  - activityName: sum",
        "    target: http://a",
        "    path: /1",
        "    maxConcurrency: 5000",
        "    concurrencyPerPoller: 3",
        "    heartbeatInterval: 5",
        "  - activityName: sum",
        "    target: http://a",
        "    path: nope",
        "    concurrencyPerPoller: 2",
        "    requestTimeout: soon",
      ].join("\n");
      expect(issues(text)).to.deep.equal([
        'sources.yaml: redis: must be a redis:// or rediss:// URL such as "redis://127.0.0.1:6379", got "http://x"',
        "sources.yaml: extra: unknown key (known keys: redis, region, sources)",
        "sources.yaml: sources[0] (sum): maxConcurrency: must be at most 1000, got 5000",
        'sources.yaml: sources[0] (sum): heartbeatInterval: must be a duration string such as "30s" or "5m", got 5 ' +
          "(a number needs a unit)",
        'sources.yaml: sources[1] (sum): path: must be a path that starts with "/" and has no spaces, got "nope"',
        'sources.yaml: sources[1] (sum): requestTimeout: must be a duration such as "30s", "5m" or "1h30m" ' +
          '(numbers with units ms, s, m or h, nothing else), got "soon"',
        "sources.yaml: sources[1] (sum): activityName: duplicate of sources[0]",
        "sources.yaml: sources[1] (sum): concurrencyPerPoller: must not exceed maxConcurrency (1), got 2",
      ]);
    });
  });

  describe("loadLocalConfig", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "sfn-local-config-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("reads a file and names it in messages", async () => {
      const good = join(dir, "good.yaml");
      await writeFile(good, oneSource(""));
      expect((await loadLocalConfig(good)).sources[0]?.targetUrl).to.equal("http://127.0.0.1:8080/step/sum");

      const bad = join(dir, "bad.yaml");
      await writeFile(bad, oneSource("    maxConcurrency: 0\n"));
      const error = await loadLocalConfig(bad).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).issues).to.deep.equal([
        `${bad}: sources[0] (sum): maxConcurrency: must be at least 1, got 0`,
      ]);
    });

    it("turns a missing or unreadable file into a ConfigError with the OS reason", async () => {
      const missing = join(dir, "missing.yaml");
      const error = await loadLocalConfig(missing).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).issues).to.deep.equal([
        `${missing}: cannot read the file: no such file or directory (ENOENT)`,
      ]);
      const directory = await loadLocalConfig(dir).catch((caught: unknown) => caught);
      expect((directory as ConfigError).message).to.equal(
        `${dir}: cannot read the file: illegal operation on a directory (EISDIR)`,
      );
    });
  });
});

describe("shared source fields", () => {
  it("resolves durations and checks concurrencyPerPoller against maxConcurrency", () => {
    const fields = {
      maxConcurrency: 4,
      concurrencyPerPoller: 2,
      requestTimeout: "1m",
      heartbeatInterval: "15s",
    };
    expect(resolveSourceLimits(fields)).to.deep.equal({
      ok: true,
      value: {
        maxConcurrency: 4,
        concurrencyPerPoller: 2,
        requestTimeoutMs: 60_000,
        heartbeatIntervalMs: 15_000,
      },
    });
    expect(resolveSourceLimits({ ...fields, concurrencyPerPoller: 5, requestTimeout: "1x" })).to.deep.equal({
      ok: false,
      issues: [
        { path: ["requestTimeout"], message: 'has an unknown unit "x" (use ms, s, m or h), got "1x"' },
        { path: ["concurrencyPerPoller"], message: "must not exceed maxConcurrency (4), got 5" },
      ],
    });
  });

  it("suggests keys only when they are close", () => {
    expect(suggestKey("maxconcurrency", ["maxConcurrency", "path"])).to.equal("maxConcurrency");
    expect(suggestKey("pth", ["maxConcurrency", "path"])).to.equal("path");
    expect(suggestKey("replicas", ["maxConcurrency", "path"])).to.equal(undefined);
  });

  it("converts to JSON Schema for the CRD, with patterns, bounds and defaults", () => {
    const schema = z.toJSONSchema(z.object(sourceFieldSchemas), { io: "input" }) as {
      properties: Record<string, Record<string, unknown>>;
      required: string[];
    };
    expect(schema.required).to.deep.equal(["activityName"]);
    expect(schema.properties.maxConcurrency).to.deep.include({
      type: "integer",
      minimum: 1,
      maximum: 1000,
      default: 1,
    });
    expect(schema.properties.requestTimeout).to.deep.include({
      type: "string",
      pattern: DURATION_PATTERN,
      default: "5m",
    });
    expect(schema.properties.heartbeatInterval).to.deep.include({ default: "10s" });
    expect(schema.properties.activityName).to.deep.include({ type: "string", minLength: 1, maxLength: 80 });
  });
});

describe("local-mode headers", () => {
  const env = { SUM_API_TOKEN: "Bearer s3cr3t-token", EMPTY: "", NEWLINE: "s3cr3t\n", UNICODE: "grüße 日本" };

  /** The issues for a source with these `headers:` lines (YAML, indented under the source). */
  function headerIssues(lines: string[]): string[] {
    try {
      parseLocalConfig(
        oneSource(`    headers:\n${lines.map((l) => `      ${l}`).join("\n")}\n`),
        "sources.yaml",
        env,
      );
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      return (error as ConfigError).issues;
    }
    throw new Error("expected the headers to be refused");
  }

  it("reads literal values and values from the environment", () => {
    const config = parseLocalConfig(
      oneSource(
        [
          "    headers:",
          "      Authorization: { valueFromEnv: SUM_API_TOKEN }",
          "      X-Team: { value: payments }",
          "      X-Greeting:",
          "        valueFromEnv: UNICODE",
          "      X-Empty: { value: '' }",
          "",
        ].join("\n"),
      ),
      "sources.yaml",
      env,
    );
    expect(config.sources[0]?.targetHeaders).to.deep.equal({
      Authorization: "Bearer s3cr3t-token",
      "X-Team": "payments",
      "X-Greeting": "grüße 日本",
      "X-Empty": "",
    });
  });

  it("leaves targetHeaders out without headers, or with an empty mapping", () => {
    expect(parseLocalConfig(oneSource(""), "f", env).sources[0]).not.to.have.property("targetHeaders");
    expect(parseLocalConfig(oneSource("    headers: {}\n"), "f", env).sources[0]).not.to.have.property(
      "targetHeaders",
    );
  });

  it("names a variable that is not set or empty", () => {
    expect(
      headerIssues(["Authorization: { valueFromEnv: MISSING_TOKEN }", "X-Other: { valueFromEnv: EMPTY }"]),
    ).to.deep.equal([
      "sources.yaml: sources[0] (sum): headers.Authorization: environment variable MISSING_TOKEN is not set",
      "sources.yaml: sources[0] (sum): headers.X-Other: environment variable EMPTY is empty",
    ]);
  });

  it("refuses control characters in values without quoting the value", () => {
    const found = headerIssues([
      "Authorization: { valueFromEnv: NEWLINE }",
      'X-Literal: { value: "a\\rb" }',
      'X-Nul: { value: "a\\u0000" }',
      'X-Bell: { value: "a\\u0007b" }',
      'X-Tab: { value: "a\\tb" }',
    ]);
    expect(found).to.deep.equal([
      "sources.yaml: sources[0] (sum): headers.Authorization: the value of NEWLINE ends with a line feed (LF); header values must not contain CR, LF, NUL or other control characters (a trailing newline from the file a Secret was made from?)",
      "sources.yaml: sources[0] (sum): headers.X-Literal: value contains a carriage return (CR); header values must not contain CR, LF, NUL or other control characters",
      "sources.yaml: sources[0] (sum): headers.X-Nul: value ends with NUL; header values must not contain CR, LF, NUL or other control characters",
      "sources.yaml: sources[0] (sum): headers.X-Bell: value contains the control character U+0007; header values must not contain CR, LF, NUL or other control characters",
    ]);
    expect(found.join("\n")).not.to.contain("s3cr3t");
  });

  it("refuses invalid and reserved names, and a name given twice in another case", () => {
    expect(
      headerIssues([
        '"Bad Name": { value: x }',
        "Content-Type: { value: text/plain }",
        "HOST: { value: x }",
        "Step-Func-Task-Id: { value: x }",
        "step-func-anything: { value: x }",
        "Transfer-Encoding: { value: chunked }",
        "X-Key: { value: a }",
        "x-key: { value: b }",
      ]),
    ).to.deep.equal([
      "sources.yaml: sources[0] (sum): headers.Bad Name: is not a valid header name (letters, digits and ! # $ % & ' * + - . ^ _ ` | ~ only)",
      "sources.yaml: sources[0] (sum): headers.Content-Type: cannot be set by configuration: the poller sets it",
      "sources.yaml: sources[0] (sum): headers.HOST: cannot be set by configuration: the poller sets it",
      "sources.yaml: sources[0] (sum): headers.Step-Func-Task-Id: cannot be set by configuration: step-func-* headers are set by the poller (task id, deadline, activity ARN)",
      "sources.yaml: sources[0] (sum): headers.step-func-anything: cannot be set by configuration: step-func-* headers are set by the poller (task id, deadline, activity ARN)",
      "sources.yaml: sources[0] (sum): headers.Transfer-Encoding: cannot be set by configuration: the poller sets it",
      'sources.yaml: sources[0] (sum): headers.x-key: is given twice (as "X-Key" too; header names ignore case)',
    ]);
  });

  it("refuses values that are neither a literal nor a variable, without quoting them", () => {
    const found = headerIssues([
      "Authorization: Bearer inline-s3cr3t",
      "X-Both: { value: a, valueFromEnv: SUM_API_TOKEN }",
      "X-None: {}",
      "X-Number: { value: 5 }",
      "X-Var: { valueFromEnv: not-a-name }",
      "X-Typo: { valueFromEnvv: SUM_API_TOKEN }",
    ]);
    expect(found).to.deep.equal([
      "sources.yaml: sources[0] (sum): headers.Authorization: must be a mapping with `value: <text>` or `valueFromEnv: <VARIABLE>`",
      "sources.yaml: sources[0] (sum): headers.X-Both: must have only one of `value` and `valueFromEnv`",
      "sources.yaml: sources[0] (sum): headers.X-None: must have `value: <text>` or `valueFromEnv: <VARIABLE>`",
      "sources.yaml: sources[0] (sum): headers.X-Number.value: must be a string (quote it)",
      'sources.yaml: sources[0] (sum): headers.X-Var.valueFromEnv: must be an environment variable name (letters, digits, _), got "not-a-name"',
      'sources.yaml: sources[0] (sum): headers.X-Typo.valueFromEnvv: unknown key (did you mean "valueFromEnv"?)',
      "sources.yaml: sources[0] (sum): headers.X-Typo: must have `value: <text>` or `valueFromEnv: <VARIABLE>`",
    ]);
    expect(found.join("\n")).not.to.contain("s3cr3t");
  });

  it("refuses headers that are not a mapping", () => {
    expect(issues(oneSource("    headers: [Authorization]\n"))).to.deep.equal([
      "sources.yaml: sources[0] (sum): headers: must be a mapping of header names, got a list",
    ]);
  });

  it("reports header problems together with every other problem", () => {
    expect(
      issues(
        oneSource(
          "    maxConcurrency: 0\n    headers:\n      Authorization: { valueFromEnv: SFN_TEST_UNSET_VARIABLE }\n",
        ),
      ),
    ).to.deep.equal([
      "sources.yaml: sources[0] (sum): maxConcurrency: must be at least 1, got 0",
      "sources.yaml: sources[0] (sum): headers.Authorization: environment variable SFN_TEST_UNSET_VARIABLE is not set",
    ]);
  });
});
