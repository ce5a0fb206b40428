import { expect } from "chai";
import { Backoff, fullJitterDelay, sleep } from "../../src/util/backoff.ts";

describe("full-jitter backoff", () => {
  const options = { baseMs: 100, capMs: 2000 };

  it("grows the ceiling exponentially: uniform in [0, base * 2^attempt)", () => {
    const almostOne = () => 0.999_999;
    expect(fullJitterDelay(0, { ...options, random: almostOne })).to.equal(99);
    expect(fullJitterDelay(1, { ...options, random: almostOne })).to.equal(199);
    expect(fullJitterDelay(3, { ...options, random: almostOne })).to.equal(799);
  });

  it("never exceeds the cap, even for huge attempt numbers", () => {
    expect(fullJitterDelay(10, { ...options, random: () => 0.999_999 })).to.equal(1999);
    expect(fullJitterDelay(5000, { ...options, random: () => 0.999_999 })).to.equal(1999);
  });

  it("can be zero (full jitter, not equal jitter)", () => {
    expect(fullJitterDelay(4, { ...options, random: () => 0 })).to.equal(0);
  });

  it("spreads delays over the whole range", () => {
    const delays = Array.from({ length: 2000 }, () => fullJitterDelay(4, options));
    expect(Math.min(...delays)).to.be.below(100);
    expect(Math.max(...delays)).to.be.above(1500);
    expect(delays.every((d) => d >= 0 && d < 1600)).to.equal(true);
  });

  it("Backoff counts consecutive failures and starts over after reset", () => {
    const backoff = new Backoff({ ...options, random: () => 0.5 });
    expect([backoff.next(), backoff.next(), backoff.next()]).to.deep.equal([50, 100, 200]);
    expect(backoff.failures).to.equal(3);
    backoff.reset();
    expect(backoff.next()).to.equal(50);
  });

  it("sleep ends early when its signal aborts", async () => {
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(), 20);
    await sleep(10_000, controller.signal);
    expect(performance.now() - started).to.be.below(1000);
  });
});
