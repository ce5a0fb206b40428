import { expect } from "chai";
import { AWS_LIMITS } from "../../src/api/defaults.ts";
import { isWellFormedToken, newTaskToken, TASK_TOKEN_LENGTH } from "../../src/emulator/tokens.ts";

describe("emulator task tokens", () => {
  it("are long, opaque and unique", () => {
    const a = newTaskToken();
    const b = newTaskToken();
    expect(a).to.have.length(TASK_TOKEN_LENGTH);
    expect(TASK_TOKEN_LENGTH).to.be.within(300, AWS_LIMITS.taskTokenLength);
    expect(a).to.match(/^[A-Za-z0-9+/]+$/);
    expect(a).not.to.equal(b);
  });

  it("tells well-formed tokens from anything else", () => {
    const token = newTaskToken();
    expect(isWellFormedToken(token)).to.equal(true);
    // Changing the random part keeps the format: such a token is unknown, not malformed.
    const last = token.at(-1) === "A" ? "B" : "A";
    expect(isWellFormedToken(`${token.slice(0, -1)}${last}`)).to.equal(true);
    expect(isWellFormedToken("")).to.equal(false);
    expect(isWellFormedToken("garbage")).to.equal(false);
    expect(isWellFormedToken(`${token}A`)).to.equal(false);
    expect(isWellFormedToken("A".repeat(TASK_TOKEN_LENGTH))).to.equal(false);
    expect(isWellFormedToken(`${token.slice(0, -1)}!`)).to.equal(false);
  });
});
