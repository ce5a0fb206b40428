import { expect } from "chai";
import {
  CAUSE_HEADER,
  decideOutcome,
  ERROR_HEADER,
  headerText,
  type TargetResult,
  truncateChars,
} from "../../src/target/outcome.ts";

const request = { method: "POST", path: "/step/sum" };

function response(
  status: number,
  body: string | Buffer,
  headers: Record<string, string | string[]> = {},
  bodyTruncated = false,
): TargetResult {
  return {
    kind: "response",
    status,
    statusText: status === 200 ? "OK" : "Internal Server Error",
    headers,
    body: typeof body === "string" ? Buffer.from(body) : body,
    bodyTruncated,
  };
}

/** Node hands header values over as latin1: this is what a UTF-8 header sent by a target looks like. */
function asReceived(utf8: string): string {
  return Buffer.from(utf8, "utf8").toString("latin1");
}

describe("outcome rules", () => {
  describe("200 answers", () => {
    it("a JSON body is reported as the task's output, byte for byte", () => {
      const body = '{"sum": 3, "name": "über"}';
      expect(decideOutcome(response(200, body), request)).to.deep.equal({ kind: "success", output: body });
    });

    it("any JSON value counts (numbers, strings, null)", () => {
      for (const body of ["42", '"text"', "null", "[1,2]"]) {
        expect(decideOutcome(response(200, body), request).kind).to.equal("success");
      }
    });

    it("a body of exactly 262,144 bytes is accepted", () => {
      const body = `"${"a".repeat(262_142)}"`;
      expect(Buffer.byteLength(body)).to.equal(262_144);
      expect(decideOutcome(response(200, body), request).kind).to.equal("success");
    });

    it("a body of 262,145 bytes is a failure Target.OutputTooLarge", () => {
      const body = `"${"a".repeat(262_143)}"`;
      const outcome = decideOutcome(response(200, body), request);
      expect(outcome).to.include({ kind: "failure", error: "Target.OutputTooLarge" });
      expect(outcome.kind === "failure" && outcome.cause).to.contain("262144 bytes");
    });

    it("a body cut off by the reader (truncated) is too large", () => {
      const outcome = decideOutcome(response(200, "{}", {}, true), request);
      expect(outcome).to.include({ kind: "failure", error: "Target.OutputTooLarge" });
    });

    it("a body that is not JSON is a failure Target.InvalidOutput that says why", () => {
      const outcome = decideOutcome(response(200, "hello"), request);
      expect(outcome).to.include({ kind: "failure", error: "Target.InvalidOutput" });
      expect(outcome.kind === "failure" && outcome.cause).to.match(
        /^POST \/step\/sum answered 200 with a body that is not JSON/,
      );
    });

    it("an empty body is a failure Target.InvalidOutput", () => {
      const outcome = decideOutcome(response(200, ""), request);
      expect(outcome).to.include({ kind: "failure", error: "Target.InvalidOutput" });
      expect(outcome.kind === "failure" && outcome.cause).to.contain("empty body");
    });

    it("a body that is not valid UTF-8 is a failure Target.InvalidOutput", () => {
      const outcome = decideOutcome(response(200, Buffer.from([0x22, 0xff, 0x22])), request);
      expect(outcome).to.include({ kind: "failure", error: "Target.InvalidOutput" });
      expect(outcome.kind === "failure" && outcome.cause).to.contain("not valid UTF-8");
    });

    it("error headers on a 200 do not turn it into a failure", () => {
      const outcome = decideOutcome(response(200, "{}", { [ERROR_HEADER]: "Nope" }), request);
      expect(outcome.kind).to.equal("success");
    });
  });

  describe("other statuses", () => {
    it("take error and cause from the step-func-error and step-func-cause headers", () => {
      const outcome = decideOutcome(
        response(500, "ignored", {
          [ERROR_HEADER]: "Billing.CardDeclined",
          [CAUSE_HEADER]: "card 4242 declined",
        }),
        request,
      );
      expect(outcome).to.deep.equal({
        kind: "failure",
        error: "Billing.CardDeclined",
        cause: "card 4242 declined",
      });
    });

    it("default the error to HTTP.<status> and the cause to the status line and the start of the body", () => {
      const outcome = decideOutcome(response(503, "database is down"), request);
      expect(outcome).to.deep.equal({
        kind: "failure",
        error: "HTTP.503",
        cause: "POST /step/sum answered HTTP 503 Internal Server Error: database is down",
      });
    });

    it("quote at most 1024 characters of the body in a default cause", () => {
      const outcome = decideOutcome(response(400, "x".repeat(5000)), request);
      expect(outcome.kind === "failure" && outcome.cause.length).to.equal(
        "POST /step/sum answered HTTP 400 Internal Server Error: ".length + 1024,
      );
    });

    it("treat a 201 or a redirect as a failure too (only 200 is success)", () => {
      expect(decideOutcome(response(201, "{}"), request)).to.include({ error: "HTTP.201" });
      expect(decideOutcome(response(302, ""), request)).to.include({ error: "HTTP.302" });
    });

    it("use the default only for the header that is absent", () => {
      const outcome = decideOutcome(response(422, "bad", { [CAUSE_HEADER]: "field x missing" }), request);
      expect(outcome).to.deep.equal({ kind: "failure", error: "HTTP.422", cause: "field x missing" });
    });

    it("decode UTF-8 header values (Node reads header bytes as latin1)", () => {
      const outcome = decideOutcome(
        response(500, "", {
          [ERROR_HEADER]: asReceived("Fehler.Größe"),
          [CAUSE_HEADER]: asReceived("日本語 😀"),
        }),
        request,
      );
      expect(outcome).to.deep.equal({ kind: "failure", error: "Fehler.Größe", cause: "日本語 😀" });
    });

    it("truncate the error header to exactly 256 characters", () => {
      const outcome = decideOutcome(response(500, "", { [ERROR_HEADER]: "e".repeat(300) }), request);
      expect(outcome.kind === "failure" && outcome.error).to.equal("e".repeat(256));
    });

    it("truncate the cause header to exactly 32,768 characters, multi-byte characters intact", () => {
      const cause = "é".repeat(40_000); // 2 bytes each in UTF-8
      const outcome = decideOutcome(response(500, "", { [CAUSE_HEADER]: asReceived(cause) }), request);
      expect(outcome.kind === "failure" && outcome.cause).to.equal("é".repeat(32_768));
    });

    it("decode Latin-1 header values from Node.js targets (é as the single byte 0xE9)", () => {
      const outcome = decideOutcome(
        response(500, "", { [ERROR_HEADER]: "Fehler.Größe", [CAUSE_HEADER]: "the cause, with unicode: é" }),
        request,
      );
      expect(outcome).to.deep.equal({
        kind: "failure",
        error: "Fehler.Größe",
        cause: "the cause, with unicode: é",
      });
    });

    it("truncate Latin-1 header values on the limits too", () => {
      const outcome = decideOutcome(
        response(500, "", { [ERROR_HEADER]: "é".repeat(300), [CAUSE_HEADER]: "ü".repeat(40_000) }),
        request,
      );
      expect(outcome).to.deep.equal({ kind: "failure", error: "é".repeat(256), cause: "ü".repeat(32_768) });
    });

    it("never split a 4-byte character (a surrogate pair) at the cause limit", () => {
      const cause = `${"日".repeat(32_767)}😀tail`; // the emoji would straddle the 32,768th position
      const outcome = decideOutcome(response(500, "", { [CAUSE_HEADER]: asReceived(cause) }), request);
      expect(outcome.kind === "failure" && outcome.cause).to.equal("日".repeat(32_767));
    });

    it("never split a 4-byte character (a surrogate pair) at the error limit", () => {
      const error = `${"a".repeat(255)}😀tail`; // the emoji would straddle the 256th position
      const outcome = decideOutcome(response(500, "", { [ERROR_HEADER]: asReceived(error) }), request);
      expect(outcome.kind === "failure" && outcome.error).to.equal("a".repeat(255));
    });
  });

  describe("no answer", () => {
    it("a timeout is Target.Timeout with the limit in the cause", () => {
      expect(decideOutcome({ kind: "timeout", timeoutMs: 1500 }, request)).to.deep.equal({
        kind: "failure",
        error: "Target.Timeout",
        cause: "POST /step/sum did not answer within 1500ms",
      });
      expect(decideOutcome({ kind: "timeout", timeoutMs: 30_000 }, request)).to.include({
        cause: "POST /step/sum did not answer within 30s",
      });
    });

    it("connection refused, reset and other failures are named apart", () => {
      const refused = decideOutcome(
        { kind: "connection-error", code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:1" },
        request,
      );
      expect(refused).to.include({ error: "Target.ConnectionRefused" });
      expect(refused.kind === "failure" && refused.cause).to.contain("ECONNREFUSED");
      expect(
        decideOutcome({ kind: "connection-error", code: "ECONNRESET", message: "socket hang up" }, request),
      ).to.include({ error: "Target.ConnectionReset" });
      expect(
        decideOutcome({ kind: "connection-error", code: "ENOTFOUND", message: "getaddrinfo" }, request),
      ).to.include({
        error: "Target.ConnectionFailed",
      });
    });
  });
});

describe("truncateChars", () => {
  it("keeps strings at or under the limit as they are", () => {
    expect(truncateChars("abc", 3)).to.equal("abc");
    expect(truncateChars("", 3)).to.equal("");
  });

  it("cuts at the limit", () => {
    expect(truncateChars("abcdef", 4)).to.equal("abcd");
  });

  it("counts a character outside the BMP as two and never keeps half of it", () => {
    expect(truncateChars("ab😀", 4)).to.equal("ab😀");
    expect(truncateChars("ab😀", 3)).to.equal("ab");
    expect(truncateChars("😀😀", 3)).to.equal("😀");
  });
});

describe("headerText", () => {
  it("joins repeated headers and trims", () => {
    expect(headerText(["a", "b"])).to.equal("a, b");
    expect(headerText("  x  ")).to.equal("x");
    expect(headerText(undefined)).to.equal("");
  });

  it("reads bytes that are not valid UTF-8 as Latin-1 (what a Node.js server sends)", () => {
    // Node writes header strings one byte per character: "é" is the single byte 0xE9.
    expect(headerText(Buffer.from("the cause, with unicode: é", "latin1").toString("latin1"))).to.equal(
      "the cause, with unicode: é",
    );
    expect(headerText(Buffer.from([0x41, 0xff]).toString("latin1"))).to.equal("Aÿ");
    // One invalid sequence anywhere makes the whole value Latin-1, never a mix or U+FFFD.
    expect(headerText(Buffer.from([0xc3, 0xa9, 0x20, 0xe9]).toString("latin1"))).to.equal("Ã© é");
  });

  it("reads valid UTF-8 as UTF-8", () => {
    expect(headerText(asReceived("日本語 😀 é"))).to.equal("日本語 😀 é");
  });

  it("decodes each repeated value as a whole, joined", () => {
    expect(headerText([asReceived("ü"), asReceived("😀")])).to.equal("ü, 😀");
  });
});
