import { expect } from "chai";
import {
  DURATION_PATTERN,
  DURATION_REGEX,
  DurationError,
  formatDuration,
  parseDuration,
} from "../../src/api/duration.ts";

/** The message parseDuration throws for `text`. */
function problem(text: string): string {
  try {
    parseDuration(text);
  } catch (error) {
    expect(error).to.be.instanceOf(DurationError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

describe("parseDuration", () => {
  it("reads every unit and their combinations, in milliseconds", () => {
    expect(parseDuration("500ms")).to.equal(500);
    expect(parseDuration("90s")).to.equal(90_000);
    expect(parseDuration("5m")).to.equal(300_000);
    expect(parseDuration("1h")).to.equal(3_600_000);
    expect(parseDuration("1h30m")).to.equal(5_400_000);
    expect(parseDuration("1h30m15s250ms")).to.equal(5_415_250);
    expect(parseDuration("0s")).to.equal(0);
  });

  it("reads decimal fractions exactly", () => {
    expect(parseDuration("1.5h")).to.equal(5_400_000);
    expect(parseDuration("2m30.5s")).to.equal(150_500);
    // 2.3 * 1000 is 2299.9999999999995 in floating point.
    expect(parseDuration("2.3s")).to.equal(2300);
    expect(parseDuration("0.001s")).to.equal(1);
  });

  it("rounds to the nearest millisecond", () => {
    expect(parseDuration("1.5ms")).to.equal(2);
    expect(parseDuration("0.4ms")).to.equal(0);
  });

  it("accepts parts in any order, as Go does", () => {
    expect(parseDuration("30s1m")).to.equal(90_000);
  });

  it("refuses an empty string", () => {
    expect(problem("")).to.equal('must be a duration such as "30s", "5m" or "1h30m", got an empty string');
  });

  it("refuses negative durations", () => {
    expect(problem("-5s")).to.equal('must not be negative, got "-5s"');
  });

  it("refuses plain numbers, naming the units", () => {
    expect(problem("30")).to.equal('needs a unit (ms, s, m or h), got "30"');
    expect(problem("1.5")).to.equal('needs a unit (ms, s, m or h), got "1.5"');
    expect(problem("0")).to.equal('needs a unit (ms, s, m or h), got "0"');
  });

  it("refuses a trailing number without unit", () => {
    expect(problem("1h30")).to.equal('needs a unit (ms, s, m or h) after every number, got "1h30"');
  });

  it("refuses unknown units, and says ns and us are too fine", () => {
    expect(problem("5d")).to.equal('has an unknown unit "d" (use ms, s, m or h), got "5d"');
    expect(problem("5H")).to.equal('has an unknown unit "H" (use ms, s, m or h), got "5H"');
    expect(problem("1h5sec")).to.equal('has an unknown unit "sec" (use ms, s, m or h), got "1h5sec"');
    expect(problem("100ns")).to.equal('has an unknown unit "ns" (the finest unit is ms), got "100ns"');
    expect(problem("100us")).to.equal('has an unknown unit "us" (the finest unit is ms), got "100us"');
    expect(problem("5constructor")).to.include('unknown unit "constructor"');
  });

  it("refuses spaces", () => {
    expect(problem(" 5s")).to.equal('must not contain spaces, got " 5s"');
    expect(problem("1h 30m")).to.equal('must not contain spaces, got "1h 30m"');
  });

  it("refuses anything else with examples", () => {
    for (const text of ["abc", "+5s", ".5s", "5.s", "1.2.3s", "s", "5s!"]) {
      expect(problem(text)).to.match(/^must be a duration such as "30s", "5m" or "1h30m" .*, got /);
    }
  });

  it("refuses durations too long to count in milliseconds", () => {
    expect(problem("99999999999999999999h")).to.equal('is too long, got "99999999999999999999h"');
  });

  it("accepts exactly what the schema pattern accepts", () => {
    const samples = ["5s", "1h30m", "2m30.5s", "", "30", "-5s", "5d", "1 s", "1.s", ".5s", "100ns", "1h1h"];
    for (const text of samples) {
      let parsed = true;
      try {
        parseDuration(text);
      } catch {
        parsed = false;
      }
      expect(parsed, text).to.equal(DURATION_REGEX.test(text));
    }
    expect(DURATION_REGEX.source).to.equal(DURATION_PATTERN);
  });
});

describe("formatDuration", () => {
  it("prints the shortest Go-like form", () => {
    expect(formatDuration(0)).to.equal("0s");
    expect(formatDuration(500)).to.equal("500ms");
    expect(formatDuration(1000)).to.equal("1s");
    expect(formatDuration(1500)).to.equal("1.5s");
    expect(formatDuration(90_000)).to.equal("1m30s");
    expect(formatDuration(150_500)).to.equal("2m30.5s");
    expect(formatDuration(3_600_000)).to.equal("1h");
    expect(formatDuration(5_400_000)).to.equal("1h30m");
    expect(formatDuration(86_400_000)).to.equal("24h");
    expect(formatDuration(60_500)).to.equal("1m0.5s");
    expect(formatDuration(60_001)).to.equal("1m1ms");
    expect(formatDuration(1001)).to.equal("1s1ms");
    expect(formatDuration(1250)).to.equal("1.25s");
  });

  it("round-trips through parseDuration", () => {
    const values = [
      0, 1, 999, 1000, 1001, 59_999, 60_000, 61_010, 3_599_999, 3_600_001, 86_400_000, 123_456_789,
    ];
    for (const ms of values) {
      expect(parseDuration(formatDuration(ms)), String(ms)).to.equal(ms);
    }
  });

  it("refuses negative and fractional milliseconds", () => {
    expect(() => formatDuration(-1)).to.throw(RangeError);
    expect(() => formatDuration(1.5)).to.throw(RangeError);
    expect(() => formatDuration(Number.NaN)).to.throw(RangeError);
  });
});
