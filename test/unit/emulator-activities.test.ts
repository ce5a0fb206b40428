import { expect } from "chai";
import { ActivityRegistry, checkActivityArn } from "../../src/emulator/activities.ts";
import { AwsError } from "../../src/emulator/errors.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof AwsError ? error.code : "not an AwsError";
  }
  return undefined;
}

describe("emulator activity registry", () => {
  it("is idempotent by name and builds AWS's ARNs", () => {
    const registry = new ActivityRegistry("eu-west-1", "111122223333");
    const a = registry.create("resize");
    expect(a.arn).to.equal("arn:aws:states:eu-west-1:111122223333:activity:resize");
    expect(registry.create("resize")).to.equal(a);
    expect(codeOf(() => registry.create("with space"))).to.equal("InvalidName");
    expect(codeOf(() => registry.create(""))).to.equal("InvalidName");
  });

  it("pages in creation order, surviving deletions", () => {
    const registry = new ActivityRegistry("us-east-1", "123456789012");
    for (const name of ["a", "b", "c", "d", "e"]) registry.create(name);
    const first = registry.list(2, undefined);
    expect(first.activities.map((x) => x.name)).to.deep.equal(["a", "b"]);
    registry.delete(registry.arnOf("c"));
    const second = registry.list(2, first.nextToken);
    expect(second.activities.map((x) => x.name)).to.deep.equal(["d", "e"]);
    expect(second.nextToken).to.equal(undefined);
    expect(registry.list(0, undefined).activities).to.have.length(4);
    expect(codeOf(() => registry.list(2, "nope"))).to.equal("InvalidToken");
  });

  it("tells malformed ARNs from unknown ones", () => {
    const registry = new ActivityRegistry("us-east-1", "123456789012");
    expect(registry.find("arn:aws:states:us-west-2:123456789012:activity:x")).to.equal(undefined);
    expect(codeOf(() => registry.get("arn:aws:states:us-west-2:123456789012:activity:x"))).to.equal(
      "ActivityDoesNotExist",
    );
    for (const arn of [
      "",
      "activity:x",
      "arn:aws:states:us-east-1:123456789012:stateMachine:x",
      "arn:aws:states:us-east-1:1234:activity:x",
      "arn:aws:states:us-east-1:123456789012:activity:bad name",
    ]) {
      expect(
        codeOf(() => checkActivityArn(arn)),
        arn,
      ).to.equal("InvalidArn");
    }
    expect(codeOf(() => checkActivityArn("arn:aws-cn:states:cn-north-1:123456789012:activity:x"))).to.equal(
      undefined,
    );
  });
});
