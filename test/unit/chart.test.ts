/**
 * The Helm chart's files that need no helm binary (test/cluster-tests/chart.test.ts renders the chart):
 * the generated RBAC file is OPERATOR_RULES, the chart's appVersion is the package's version, and
 * values.yaml says what each value is.
 */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { parse } from "yaml";
import { CHART_DIR, CHART_RBAC_FILE, renderChartRbacJson } from "../../scripts/chart-files.ts";
import { CRD_COMMAND } from "../../src/api/crd.ts";
import { OPERATOR_RULES, policyRules } from "../../src/operator/rbac.ts";

const read = (file: string): string => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");

describe("the Helm chart's files", () => {
  it(`has the RBAC rules of src/operator/rbac.ts in ${CHART_RBAC_FILE} (else run \`${CRD_COMMAND}\`)`, () => {
    const committed = read(CHART_RBAC_FILE);
    expect(
      committed === renderChartRbacJson(),
      `${CHART_RBAC_FILE} is stale: run \`${CRD_COMMAND}\``,
    ).to.equal(true);
    const file = JSON.parse(committed) as Record<"watched" | "own", Array<Record<string, unknown>>>;
    for (const where of ["watched", "own"] as const) {
      expect(file[where].map(({ why: _why, optIn: _optIn, ...rule }) => rule)).to.deep.equal(
        policyRules(where, ["sourceRedisSecrets"]),
      );
      expect(file[where].map((rule) => rule.optIn)).to.deep.equal(
        OPERATOR_RULES.filter((rule) => rule.where === where).map((rule) => rule.optIn),
      );
      expect(file[where].map((rule) => rule.why)).to.deep.equal(
        OPERATOR_RULES.filter((rule) => rule.where === where).map((rule) => rule.why),
      );
    }
  });

  it("has the package's version as appVersion, and the fixed name and version", () => {
    const chart = parse(read(`${CHART_DIR}/Chart.yaml`)) as Record<string, unknown>;
    const pkg = JSON.parse(read("package.json")) as { version: string };
    expect(chart.appVersion).to.equal(pkg.version);
    expect(chart.name).to.equal("sfn-operator");
    expect(chart.apiVersion).to.equal("v2");
    expect(chart.version).to.match(/^[0-9]+\.[0-9]+\.[0-9]+/);
  });

  it("says what every value of values.yaml is, in a comment just above it", () => {
    const lines = read(`${CHART_DIR}/values.yaml`).split("\n");
    const uncommented = lines.flatMap((line, index) => {
      if (!/^\s*[\w./-]+:/.test(line)) return [];
      return lines[index - 1]?.trim().startsWith("#") ? [] : [`line ${index + 1}: ${line.trim()}`];
    });
    expect(uncommented).to.deep.equal([]);
  });

  it("keeps every key of values.yaml in values.schema.json, which refuses unknown keys", () => {
    const values = parse(read(`${CHART_DIR}/values.yaml`)) as Record<string, unknown>;
    const schema = JSON.parse(read(`${CHART_DIR}/values.schema.json`)) as JsonSchema;
    expect(schema.$schema).to.equal("http://json-schema.org/draft-07/schema#");
    expect(schema.additionalProperties).to.equal(false);
    const missing: string[] = [];
    const walk = (value: unknown, node: JsonSchema | undefined, path: string): void => {
      const resolved = resolve(schema, node);
      if (resolved === undefined) {
        missing.push(path);
        return;
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) return;
      // Free-form objects (a securityContext, affinity, labels) are Kubernetes' to check.
      if (resolved.properties === undefined) return;
      for (const [key, child] of Object.entries(value)) {
        walk(child, resolved.properties[key], path ? `${path}.${key}` : key);
      }
    };
    walk(values, schema, "");
    expect(missing).to.deep.equal([]);
  });
});

interface JsonSchema {
  $schema?: string;
  $ref?: string;
  additionalProperties?: unknown;
  properties?: Record<string, JsonSchema>;
  definitions?: Record<string, JsonSchema>;
}

function resolve(root: JsonSchema, node: JsonSchema | undefined): JsonSchema | undefined {
  if (node?.$ref === undefined) return node;
  return root.definitions?.[node.$ref.replace("#/definitions/", "")];
}
