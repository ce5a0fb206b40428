import { expect } from "chai";
import { Abandonment } from "../../src/target/http-target.ts";

describe("Abandonment", () => {
  it("calls its listener once, with the reason kept; a listener added afterwards is called at once", () => {
    const abandonment = new Abandonment();
    const calls: string[] = [];
    abandonment.listen(() => calls.push("first"));
    expect(abandonment.abandoned).to.equal(false);
    abandonment.abandon("TaskTimedOut");
    abandonment.abandon("TaskDoesNotExist");
    expect(calls).to.deep.equal(["first"]);
    expect(abandonment.abandoned).to.equal(true);
    expect(abandonment.reason).to.equal("TaskTimedOut");
    abandonment.listen(() => calls.push("late"));
    expect(calls).to.deep.equal(["first", "late"]);
  });

  it("a detached listener is not called", () => {
    const abandonment = new Abandonment();
    let called = false;
    abandonment.listen(() => {
      called = true;
    });
    abandonment.listen(undefined);
    abandonment.abandon("TaskTimedOut");
    expect(called).to.equal(false);
  });
});
