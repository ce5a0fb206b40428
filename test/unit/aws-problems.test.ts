/** Non-healing AWS errors: classification, how a poller repeats the warning; proxy variables. */
import { expect } from "chai";
import winston from "winston";
import { AwsConfigError, isRetryable, nonHealingProblem } from "../../src/aws/errors.ts";
import { AwsProblemLog } from "../../src/aws/problems.ts";
import { proxyForUrl, redactProxyUrl } from "../../src/aws/transport.ts";

function named(name: string, message = "", extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name }, extra);
}

/** An AWS service exception as the SDK gives it. */
function awsError(name: string, status: number): Error {
  return named(name, "refused", { $fault: "client", $metadata: { httpStatusCode: status } });
}

describe("nonHealingProblem", () => {
  it("names the fix for each configuration problem (exit 2)", () => {
    const cases: Array<[unknown, string, string]> = [
      [new Error("Region is missing"), "RegionMissing", "AWS_REGION"],
      [
        new Error('Region not accepted: region="x y" is not a valid hostname component.'),
        "InvalidRegion",
        "AWS_REGION",
      ],
      [
        named("CredentialsProviderError", "Could not load credentials from any providers", {
          tryNextLink: false,
        }),
        "CredentialsProviderError",
        "AWS_ACCESS_KEY_ID",
      ],
      [
        Object.assign(new TypeError("Invalid URL"), { code: "ERR_INVALID_URL", input: "not a url" }),
        "InvalidEndpointUrl",
        "AWS_ENDPOINT_URL_SFN",
      ],
      [new AwsConfigError("the proxy is not a URL", "fix HTTPS_PROXY"), "AwsConfigError", "HTTPS_PROXY"],
      [awsError("Unknown", 407), "Unknown", "HTTPS_PROXY"],
    ];
    for (const [error, code, fix] of cases) {
      const problem = nonHealingProblem(error);
      expect(problem, String(error)).to.include({ kind: "configuration", code, exitCode: 2 });
      expect(problem?.hint).to.contain(fix);
    }
  });

  it("an unreadable web identity token file is named only when it is AWS_WEB_IDENTITY_TOKEN_FILE", () => {
    const enoent = Object.assign(new Error("ENOENT: no such file"), {
      code: "ENOENT",
      path: "/var/run/token",
    });
    expect(nonHealingProblem(enoent, { AWS_WEB_IDENTITY_TOKEN_FILE: "/var/run/token" })?.hint).to.contain(
      "AWS_WEB_IDENTITY_TOKEN_FILE",
    );
    expect(nonHealingProblem(enoent, {})).to.equal(undefined);
  });

  it("AWS refusing the credentials or the call is an access problem (exit 1)", () => {
    for (const code of [
      "AccessDeniedException",
      "AccessDenied",
      "UnrecognizedClientException",
      "InvalidClientTokenId",
      "InvalidSignatureException",
      "SignatureDoesNotMatch",
      "ExpiredTokenException",
      "InvalidIdentityToken",
    ]) {
      const problem = nonHealingProblem(awsError(code, 400));
      expect(problem, code).to.include({ kind: "access", code, exitCode: 1 });
      expect(problem?.hint.length).to.be.greaterThan(20);
    }
    expect(nonHealingProblem(awsError("AccessDeniedException", 400))?.hint).to.contain(
      "states:GetActivityTask",
    );
  });

  it("leaves transient and task errors alone", () => {
    for (const error of [
      awsError("ThrottlingException", 400),
      awsError("ServiceUnavailable", 503),
      awsError("TaskTimedOut", 400),
      awsError("ValidationException", 400),
      Object.assign(new Error("socket hang up"), { name: "TimeoutError", code: "ECONNRESET" }),
      Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      awsError("constructor", 400),
      "a string",
      undefined,
    ]) {
      expect(nonHealingProblem(error), String(error)).to.equal(undefined);
    }
    // Unchanged: a missing credential may still appear, so reports keep retrying it within their window.
    expect(isRetryable(named("CredentialsProviderError"))).to.equal(true);
  });
});

describe("AwsProblemLog (poller mode)", () => {
  it("warns when a problem first shows, when it changes, and then once per interval; says when it is over", () => {
    const records: Array<{ level: string; message: string; failuresSinceLastWarning?: number }> = [];
    const logger = winston.createLogger({
      level: "debug",
      transports: [new winston.transports.Console({ silent: true })],
    });
    logger.on("data", (info: { level: string; message: string; failuresSinceLastWarning?: number }) =>
      records.push(info),
    );
    let now = 0;
    const log = new AwsProblemLog(logger, { repeatMs: 60_000, now: () => now });
    const noCredentials = nonHealingProblem(named("CredentialsProviderError", "none"));
    const denied = nonHealingProblem(awsError("AccessDeniedException", 400));
    if (!noCredentials || !denied) throw new Error("classification");
    for (let i = 0; i < 10; i++) {
      log.failed(noCredentials, "CreateActivity");
      now += 5_000; // 10 retries over 50 s
    }
    expect(records.map((r) => r.level)).to.deep.equal(["warn"]);
    expect(records[0]?.message).to.contain("no AWS credentials found").and.contain("AWS_PROFILE");
    now = 61_000;
    log.failed(noCredentials, "CreateActivity");
    expect(records).to.have.length(2);
    expect(records[1]?.failuresSinceLastWarning).to.equal(9);
    log.failed(denied, "GetActivityTask");
    expect(records).to.have.length(3);
    expect(records[2]?.message).to.contain("AccessDeniedException");
    log.recovered();
    log.recovered();
    expect(records.map((r) => r.level)).to.deep.equal(["warn", "warn", "warn", "info"]);
  });
});

describe("proxy variables", () => {
  it("a proxy without a scheme is an http:// proxy, as for curl", () => {
    const saved = { ...process.env };
    try {
      for (const name of [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
      ])
        delete process.env[name];
      process.env.HTTPS_PROXY = "proxy.internal:3128";
      expect(proxyForUrl("https://states.us-east-1.amazonaws.com")).to.equal("http://proxy.internal:3128");
      process.env.HTTPS_PROXY = "https://proxy.internal:3129";
      expect(proxyForUrl("https://states.us-east-1.amazonaws.com")).to.equal("https://proxy.internal:3129");
      process.env.NO_PROXY = ".amazonaws.com";
      expect(proxyForUrl("https://states.us-east-1.amazonaws.com")).to.equal("");
      expect(proxyForUrl("http://127.0.0.1:8083"), "no HTTP_PROXY").to.equal("");
    } finally {
      process.env = saved;
    }
  });

  it("redacts proxy credentials", () => {
    expect(redactProxyUrl("http://user:s3cret@proxy:3128")).to.equal("http://***:***@proxy:3128");
    expect(redactProxyUrl("http://token@proxy:3128/")).to.equal("http://***@proxy:3128");
    expect(redactProxyUrl("http://proxy:3128")).to.equal("http://proxy:3128");
    expect(redactProxyUrl("not a url user:pw@x")).to.not.contain("pw");
  });
});
