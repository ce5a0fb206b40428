/** When text logs are coloured: the customary FORCE_COLOR / NO_COLOR rules and terminals only. */
import { expect } from "chai";
import { colourWanted } from "../../src/observability/logger.ts";

describe("log colours", () => {
  it("colours a terminal only", () => {
    expect(colourWanted({ env: {}, isTTY: true })).to.equal(true);
    expect(colourWanted({ env: {}, isTTY: false })).to.equal(false);
    expect(colourWanted({ env: {}, isTTY: true, hasColors: () => false })).to.equal(false);
  });

  it("honours NO_COLOR and FORCE_COLOR, FORCE_COLOR first", () => {
    expect(colourWanted({ env: { NO_COLOR: "1" }, isTTY: true })).to.equal(false);
    expect(colourWanted({ env: { NO_COLOR: "" }, isTTY: true })).to.equal(true);
    expect(colourWanted({ env: { FORCE_COLOR: "1" }, isTTY: false })).to.equal(true);
    expect(colourWanted({ env: { FORCE_COLOR: "1", NO_COLOR: "1" }, isTTY: false })).to.equal(true);
    expect(colourWanted({ env: { FORCE_COLOR: "0" }, isTTY: true })).to.equal(false);
    expect(colourWanted({ env: { FORCE_COLOR: "false" }, isTTY: true })).to.equal(false);
  });
});
