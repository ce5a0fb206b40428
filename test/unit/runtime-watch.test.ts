/**
 * What the runtime says on its own: semaphore-not-ready warnings (at once, repeated, recovery),
 * the periodic and final task summaries, and the shutdown message's bounds.
 */
import { expect } from "chai";
import type { PollerActivity, PollerState } from "../../src/poller/poller.ts";
import { describeStopping } from "../../src/poller/runtime.ts";
import { MESSAGES, RuntimeWatch, type WatchedPoller } from "../../src/poller/watch.ts";
import type { SemaphoreHealth } from "../../src/semaphore/semaphore.ts";

interface Line {
  level: "info" | "warn";
  message: string;
  fields: Record<string, unknown>;
}

class FakePoller implements WatchedPoller {
  readonly settings: { sourceName: string; requestTimeoutMs: number };
  state: PollerState = "running";
  health: SemaphoreHealth = { ready: true };
  current: PollerActivity = {
    polls: 0,
    tasks: 0,
    outcomes: { succeeded: 0, failed: 0, gone: 0, unreported: 0 },
  };
  readonly semaphore = { health: () => this.health };

  constructor(sourceName: string, requestTimeoutMs = 300_000) {
    this.settings = { sourceName, requestTimeoutMs };
  }

  activity(): PollerActivity {
    return { ...this.current, outcomes: { ...this.current.outcomes } };
  }
}

function setUp(pollers: FakePoller[]) {
  const lines: Line[] = [];
  let now = 0;
  const watch = new RuntimeWatch({
    pollers,
    log: {
      info: (message, fields) => lines.push({ level: "info", message, fields }),
      warn: (message, fields) => lines.push({ level: "warn", message, fields }),
    },
    checkIntervalMs: 1000,
    warnAfterMs: 1000,
    repeatWarningMs: 30_000,
    summaryIntervalMs: 60_000,
    now: () => now,
  });
  /** Advances the clock by `ms` in checks of one second. */
  const advance = (ms: number): void => {
    for (let t = 0; t < ms; t += 1000) {
      now += 1000;
      watch.check();
    }
  };
  return { lines, watch, advance };
}

describe("runtime watch", () => {
  it("warns about a semaphore that is not ready within two seconds, repeats every 30 s, says when it recovers", () => {
    const redis = new FakePoller("redis-source");
    const fine = new FakePoller("fine-source");
    const { lines, advance } = setUp([redis, fine]);
    redis.health = { ready: false, reason: "Redis unreachable: connect ECONNREFUSED 127.0.0.1:1" };
    advance(2000);
    const warnings = () => lines.filter((line) => line.message === MESSAGES.notReady);
    expect(warnings()).to.have.length(1);
    expect(warnings()[0]).to.deep.include({ level: "warn" });
    expect(warnings()[0]?.fields).to.include({
      source: "redis-source",
      reason: "Redis unreachable: connect ECONNREFUSED 127.0.0.1:1",
    });
    advance(28_000);
    expect(warnings()).to.have.length(1);
    advance(2000);
    expect(warnings()).to.have.length(2);
    redis.health = { ready: true };
    advance(1000);
    const recovered = lines.filter((line) => line.message === MESSAGES.ready);
    expect(recovered).to.have.length(1);
    expect(recovered[0]).to.deep.include({ level: "info" });
    expect(recovered[0]?.fields.source).to.equal("redis-source");
    advance(10_000);
    expect(lines.filter((line) => line.message === MESSAGES.ready)).to.have.length(1);
    expect(
      lines.filter((line) => line.fields.source === "fine-source" && line.level === "warn"),
    ).to.deep.equal([]);
  });

  it("says nothing about a not-ready spell shorter than the grace, nor while stopping", () => {
    const poller = new FakePoller("blip");
    const { lines, advance } = setUp([poller]);
    poller.health = { ready: false, reason: "re-registering leases after reconnecting to Redis" };
    advance(1000);
    poller.health = { ready: true };
    advance(1000);
    poller.state = "stopping";
    poller.health = { ready: false, reason: "semaphore closed" };
    advance(5000);
    expect(lines.filter((line) => line.level === "warn" || line.message === MESSAGES.ready)).to.deep.equal(
      [],
    );
  });

  it("summarises each source every interval (counts in the window, totals) and over the whole run at the end", () => {
    const a = new FakePoller("a");
    const b = new FakePoller("b");
    const { lines, watch, advance } = setUp([a, b]);
    a.current.outcomes.succeeded = 5;
    a.current.outcomes.failed = 1;
    a.current.tasks = 2;
    advance(59_000);
    expect(lines.filter((line) => line.message === MESSAGES.summary)).to.deep.equal([]);
    advance(1000);
    const first = lines.filter((line) => line.message === MESSAGES.summary);
    expect(first.map((line) => line.fields)).to.deep.equal([
      {
        source: "a",
        window: "1m",
        succeeded: 5,
        failed: 1,
        gone: 0,
        unreported: 0,
        inFlight: 2,
        total: { succeeded: 5, failed: 1, gone: 0, unreported: 0 },
      },
      {
        source: "b",
        window: "1m",
        succeeded: 0,
        failed: 0,
        gone: 0,
        unreported: 0,
        inFlight: 0,
        total: { succeeded: 0, failed: 0, gone: 0, unreported: 0 },
      },
    ]);
    expect(first.every((line) => line.level === "info")).to.equal(true);
    a.current.outcomes.succeeded = 8;
    a.current.tasks = 0;
    advance(60_000);
    const second = lines.filter((line) => line.message === MESSAGES.summary && line.fields.source === "a");
    expect(second[1]?.fields).to.include({ succeeded: 3, failed: 0, inFlight: 0 });
    watch.final();
    const last = lines.at(-2);
    expect(last?.fields).to.deep.equal({
      source: "a",
      window: "whole run",
      succeeded: 8,
      failed: 1,
      gone: 0,
      unreported: 0,
      inFlight: 0,
    });
  });
});

describe("shutdown message", () => {
  it("says what stopping waits for, with upper bounds", () => {
    const idle = new FakePoller("idle", 30_000);
    const busy = new FakePoller("busy", 120_000);
    const now = 100_000;
    idle.current = { ...idle.current, polls: 2, lastPollStartedAt: now - 15_000 };
    busy.current = {
      ...busy.current,
      polls: 1,
      lastPollStartedAt: now - 50_000,
      tasks: 1,
      lastTaskStartedAt: now - 20_000,
    };
    const { text, fields } = describeStopping([idle, busy], now);
    expect(text).to.equal(
      "waiting for 3 outstanding polls (at most 45s: a poll is never abandoned, a task it receives would be lost; " +
        "a task it brings is run, up to requestTimeout 2m) and 1 running task (at most 1m40s, then its report)",
    );
    expect(fields).to.deep.equal({
      outstandingPolls: 3,
      runningTasks: 1,
      pollsEndWithin: "45s",
      tasksEndWithin: "1m40s",
    });
    expect(describeStopping([new FakePoller("none")], now).text).to.equal("nothing in flight");
  });
});
