import { expect } from "chai";
import { FaultInjector, faultRulesSchema, seededRandom } from "../../src/emulator/faults.ts";

describe("emulator fault injection", () => {
  it("applies rate 1 to every matching request and rate 0 to none", () => {
    const faults = new FaultInjector();
    faults.setRules([
      { actions: ["GetActivityTask"], throttleRate: 1 },
      { actions: ["SendTaskSuccess"], errorRate: 0 },
    ]);
    for (let i = 0; i < 20; i += 1) {
      expect(faults.decide("GetActivityTask").failure?.code).to.equal("ThrottlingException");
      expect(faults.decide("SendTaskSuccess").failure).to.equal(undefined);
      expect(faults.decide("CreateActivity").failure).to.equal(undefined);
    }
    expect(faults.counts().throttle).to.equal(20);
  });

  it("answers server errors with the chosen status", () => {
    const faults = new FaultInjector();
    faults.setRules([
      { errorRate: 1, remaining: 1 },
      { errorRate: 1, errorStatus: 503 },
    ]);
    const first = faults.decide("ListActivities").failure;
    expect([first?.code, first?.status]).to.deep.equal(["InternalFailure", 500]);
    const second = faults.decide("ListActivities").failure;
    expect([second?.code, second?.status]).to.deep.equal(["ServiceUnavailable", 503]);
    expect(second?.toBody().__type).to.match(/#ServiceUnavailable$/);
  });

  it("answers AccessDeniedException for an access-denied rule", () => {
    const faults = new FaultInjector();
    faults.setRules([{ actions: ["CreateActivity"], accessDeniedRate: 1 }]);
    const failure = faults.decide("CreateActivity").failure;
    expect([failure?.code, failure?.status]).to.deep.equal(["AccessDeniedException", 400]);
    expect(failure?.toBody().__type).to.match(/#AccessDeniedException$/);
    expect(faults.decide("GetActivityTask").failure).to.equal(undefined);
    expect(faults.counts().accessDenied).to.equal(1);
  });

  it("counts down remaining and drops spent rules", () => {
    const faults = new FaultInjector();
    const rules = [{ delayMs: 10, remaining: 2 }];
    faults.setRules(rules);
    expect(faults.decide("A").delayMs).to.equal(10);
    expect(faults.rules()).to.deep.equal([{ delayMs: 10, remaining: 1 }]);
    expect(faults.decide("B").delayMs).to.equal(10);
    expect(faults.decide("C").delayMs).to.equal(0);
    expect(faults.rules()).to.deep.equal([]);
    // The caller's objects are not changed.
    expect(rules[0]?.remaining).to.equal(2);
  });

  it("adds the delays of every matching rule and stops at the first failure", () => {
    const faults = new FaultInjector();
    faults.setRules([{ delayMs: 5 }, { delayMs: 7, throttleRate: 1 }, { delayMs: 100, errorRate: 1 }]);
    const decision = faults.decide("X");
    expect(decision.delayMs).to.equal(12);
    expect(decision.failure?.code).to.equal("ThrottlingException");
  });

  it("rolls reproducibly with a seed", () => {
    const run = () => {
      const faults = new FaultInjector(seededRandom(42));
      faults.setRules([{ throttleRate: 0.5 }]);
      return Array.from({ length: 50 }, () => faults.decide("X").failure !== undefined);
    };
    const first = run();
    expect(run()).to.deep.equal(first);
    expect(first.filter(Boolean).length).to.be.within(10, 40);
  });

  it("validates rules", () => {
    expect(
      faultRulesSchema.safeParse([{ actions: ["GetActivityTask"], throttleRate: 0.1 }]).success,
    ).to.equal(true);
    for (const bad of [{ throttleRate: 1.5 }, { errorStatus: 502 }, { remaining: -1 }, { delay: 10 }]) {
      expect(faultRulesSchema.safeParse([bad]).success, JSON.stringify(bad)).to.equal(false);
    }
  });
});
