import { expect } from "chai";
import { InProcessSemaphore } from "../../src/semaphore/in-process.ts";
import { LimitGate } from "../../src/semaphore/limit-gate.ts";
import type { Permit } from "../../src/semaphore/semaphore.ts";

/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("LimitGate", () => {
  function gate() {
    const created: InProcessSemaphore[] = [];
    const limits: number[] = [];
    const gate = new LimitGate((limit) => {
      limits.push(limit);
      const inner = new InProcessSemaphore(limit);
      created.push(inner);
      return inner;
    }, "waiting for the limit");
    return { gate, created, limits };
  }

  it("hands out nothing and makes no semaphore until a limit is known", async () => {
    const { gate: g, limits } = gate();
    const permits: Permit[] = [];
    const never = new AbortController().signal;
    for (let i = 0; i < 3; i++) void g.acquire(never).then((permit) => permits.push(permit));
    await settle();
    expect(permits).to.deep.equal([]);
    expect(limits).to.deep.equal([]);
    expect(g.limit).to.equal(0);
    expect(g.waiting()).to.equal(3);
    expect(g.health()).to.deep.equal({ ready: false, reason: "waiting for the limit" });

    g.setLimit(2);
    await settle();
    expect(permits).to.have.length(2);
    expect(limits, "made once, with the first limit").to.deep.equal([2]);
    expect(g.limit).to.equal(2);
    expect(g.held()).to.equal(2);
    expect(g.waiting()).to.equal(1);
    expect(g.health()).to.deep.equal({ ready: true });

    g.setLimit(3);
    await settle();
    expect(permits).to.have.length(3);
    expect(limits, "the same semaphore takes the new limit").to.deep.equal([2]);
    await g.close();
  });

  it("withholding stops new permits, keeps those held, and a loop granted meanwhile gives its permit back", async () => {
    const { gate: g, created } = gate();
    const never = new AbortController().signal;
    g.setLimit(1);
    const first = await g.acquire(never);
    // This loop waits inside the real semaphore (the limit is taken).
    let second: Permit | undefined;
    void g.acquire(never).then((permit) => {
      second = permit;
    });
    await settle();
    g.withhold("the limit key is missing");
    expect(g.health()).to.deep.equal({ ready: false, reason: "the limit key is missing" });
    expect(g.limit).to.equal(0);
    expect(g.held(), "held permits stay").to.equal(1);
    await first.release();
    await settle();
    // The waiting loop was granted by the real semaphore, gave it back, and waits at the gate.
    expect(second).to.equal(undefined);
    expect(created[0]?.held()).to.equal(0);
    expect(g.waiting()).to.equal(1);
    g.setLimit(1);
    await settle();
    expect(second).to.not.equal(undefined);
    await g.close();
  });

  it("prefers the real semaphore's reason when both say no", () => {
    const reason = { ready: false, reason: "Redis unreachable" };
    const g = new LimitGate(
      (limit) => Object.assign(new InProcessSemaphore(limit), { health: () => reason }),
      "waiting",
    );
    g.setLimit(1);
    g.withhold("Redis unreachable: the limit is read again once it is back");
    expect(g.health()).to.equal(reason);
  });

  it("aborts and closes like a semaphore", async () => {
    const { gate: g } = gate();
    const stop = new AbortController();
    const waiting = g.acquire(stop.signal);
    stop.abort();
    let error: unknown;
    try {
      await waiting;
    } catch (caught) {
      error = caught;
    }
    expect((error as Error).name).to.equal("AbortError");
    const pending = g.acquire(new AbortController().signal).catch((caught: unknown) => caught);
    await g.close();
    expect(String(await pending)).to.match(/semaphore closed/);
    expect(g.health()).to.deep.equal({ ready: false, reason: "semaphore closed" });
    g.setLimit(1);
    expect(g.limit, "nothing made after close").to.equal(0);
  });

  it("refuses a limit that is not a positive integer", () => {
    const { gate: g } = gate();
    expect(() => g.setLimit(0)).to.throw(RangeError);
    expect(() => g.setLimit(1.5)).to.throw(RangeError);
  });
});
