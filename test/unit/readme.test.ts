/** The README documents what the code does: its tables are checked against the code's own lists. */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { CONDITION_TYPES } from "../../src/api/step-function-source.ts";
import { OPERATOR_RULES } from "../../src/operator/rbac.ts";
import { OPERATOR_SETTINGS } from "../../src/operator/settings.ts";
import { OTHER_SFN_VARS, POLLER_ENV_VARS, pollerConfigFromEnv } from "../../src/poller/env.ts";
import { ERROR_NAMES } from "../../src/target/outcome.ts";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("README", () => {
  it("starts with the set-up-and-demo command and the test command", () => {
    const firstBlock = readme.split("```sh")[1]?.split("```")[0] ?? "";
    expect(firstBlock).to.contain("npm ci && npm run demo");
    expect(firstBlock).to.contain("npm ci && npm test");
  });

  it("documents every poller environment variable exactly as the code defines it", () => {
    for (const v of POLLER_ENV_VARS) {
      const row = `| \`${v.name}\` | ${v.required ? "yes" : "no"} | ${v.default ?? ""} | ${v.description} |`;
      expect(readme, `README row for ${v.name}`).to.contain(row);
    }
  });

  it("documents every operator setting exactly as the code defines it", () => {
    for (const setting of OPERATOR_SETTINGS) {
      const row = `| \`${setting.env}\` | \`${setting.flag}\` | ${setting.default} | ${setting.description} |`;
      expect(readme, `README row for ${setting.env}`).to.contain(row);
    }
  });

  it("documents every RBAC rule of the operator with its resources and verbs", () => {
    const rows = readme.split("\n").filter((line) => line.startsWith("| "));
    for (const rule of OPERATOR_RULES) {
      const resources = (rule.resources ?? []).map((resource) => `\`${resource}\``).join(", ");
      const verbs = rule.verbs.join(", ");
      const row = rows.find(
        (line) =>
          line.startsWith(
            `| ${rule.where}${rule.optIn === undefined ? "" : ` (opt-in: chart value \`rbac.${rule.optIn}\`)`} |`,
          ) &&
          line.includes(`| ${resources} |`) &&
          line.includes(`| ${verbs} |`),
      );
      expect(row, `README row for ${resources}: ${verbs}`).to.not.equal(undefined);
    }
  });

  it("describes every condition type", () => {
    for (const type of CONDITION_TYPES) expect(readme, type).to.contain(`| \`${type}\` |`);
  });

  it("names every error the poller reports", () => {
    for (const [key, name] of Object.entries(ERROR_NAMES)) {
      const text = typeof name === "function" ? "HTTP.<status>" : name;
      expect(readme, key).to.contain(`\`${text}\``);
    }
  });
});

describe("SFN_* variables read outside the poller's environment module", () => {
  it("are documented in the README and not reported as unknown", () => {
    const env: NodeJS.ProcessEnv = {
      SFN_TARGET_URL: "http://t",
      SFN_TARGET_PATH: "/p",
      SFN_ACTIVITY_NAME: "a",
    };
    for (const name of OTHER_SFN_VARS) {
      expect(readme, name).to.contain(`\`${name}\``);
      // The lease TTL is also checked with the poller's variables, so it needs a valid value.
      env[name] = name === "SFN_REDIS_LEASE_TTL" ? "15s" : "x";
    }
    expect(pollerConfigFromEnv(env).warnings).to.deep.equal([]);
  });
});
