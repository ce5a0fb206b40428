import { expect } from "chai";
import { InProcessSemaphore } from "../../src/semaphore/in-process.ts";
import type { Permit } from "../../src/semaphore/semaphore.ts";

const never = new AbortController().signal;

describe("InProcessSemaphore", () => {
  it("hands out at most `limit` permits and admits a waiter on release, in FIFO order", async () => {
    const semaphore = new InProcessSemaphore(2);
    const a = await semaphore.acquire(never);
    await semaphore.acquire(never);
    const order: string[] = [];
    const track = (name: string) => (permit: Permit) => {
      order.push(name);
      return permit;
    };
    const third = semaphore.acquire(never).then(track("third"));
    const fourth = semaphore.acquire(never).then(track("fourth"));
    await new Promise((r) => setImmediate(r));
    expect(semaphore.held()).to.equal(2);
    expect(semaphore.waiting()).to.equal(2);
    await a.release();
    await third;
    expect(order).to.deep.equal(["third"]);
    expect(semaphore.held()).to.equal(2);
    expect(semaphore.waiting()).to.equal(1);
    await (await third).release();
    await fourth;
    expect(order).to.deep.equal(["third", "fourth"]);
  });

  it("release is idempotent", async () => {
    const semaphore = new InProcessSemaphore(1);
    const permit = await semaphore.acquire(never);
    await permit.release();
    await permit.release();
    expect(semaphore.held()).to.equal(0);
  });

  it("an aborted wait rejects with AbortError and leaves the queue", async () => {
    const semaphore = new InProcessSemaphore(1);
    await semaphore.acquire(never);
    const controller = new AbortController();
    const waiting = semaphore.acquire(controller.signal);
    controller.abort();
    const error = await waiting.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(Error).with.property("name", "AbortError");
    expect(semaphore.waiting()).to.equal(0);
  });

  it("a lowered limit admits no one until holders drop below it; a raised one admits at once", async () => {
    const semaphore = new InProcessSemaphore(3);
    const permits = await Promise.all([
      semaphore.acquire(never),
      semaphore.acquire(never),
      semaphore.acquire(never),
    ]);
    semaphore.setLimit(1);
    let admitted = false;
    const waiter = semaphore.acquire(never).then((p) => {
      admitted = true;
      return p;
    });
    await permits[0]?.release();
    await permits[1]?.release();
    await new Promise((r) => setImmediate(r));
    expect(admitted).to.equal(false);
    await permits[2]?.release();
    await waiter;
    expect(admitted).to.equal(true);
    semaphore.setLimit(3);
    await semaphore.acquire(never);
    expect(semaphore.held()).to.equal(2);
  });

  it("refuses a limit below 1", () => {
    expect(() => new InProcessSemaphore(0)).to.throw(RangeError);
  });
});
