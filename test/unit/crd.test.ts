/**
 * The StepFunctionSource CRD and its schemas, without an API server (test/cluster-tests/crd.test.ts has
 * the API server's side): the committed YAML is the generator's output, the post-processing makes a
 * structural schema, every pattern is one Go's RE2 compiles and reads as JavaScript does, and
 * parseSourceSpec applies the defaults and names the field of every problem.
 */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { parse } from "yaml";
import { z } from "zod";
import { CHART_CRD_FILE } from "../../scripts/chart-files.ts";
import {
  CRD_COMMAND,
  CRD_FILE,
  type JsonSchema,
  jsRegExpOfRe2,
  re2Problems,
  renderCrdYaml,
  stepFunctionSourceCrd,
  structuralProblems,
  structuralSchema,
} from "../../src/api/crd.ts";
import { ACTIVITY_NAME_PATTERN, ACTIVITY_NAME_RE2_PATTERN } from "../../src/api/defaults.ts";
import { REQUEST_PATH_RE2_PATTERN, requestPathSchema } from "../../src/api/fields.ts";
import {
  CONDITION_TYPES,
  parseSourceSpec,
  SFS_API_VERSION,
  SFS_KIND,
  SFS_SHORT_NAME,
  type StepFunctionSourceSpec,
} from "../../src/api/step-function-source.ts";
import { ConfigError, parseLocalConfig } from "../../src/local/config.ts";

const committed = readFileSync(new URL(`../../${CRD_FILE}`, import.meta.url), "utf8");

/** The openAPIV3Schema of the generated CRD's one version. */
function openApiSchema(): JsonSchema {
  const crd = stepFunctionSourceCrd() as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: JsonSchema } }> };
  };
  const schema = crd.spec.versions[0]?.schema.openAPIV3Schema;
  if (schema === undefined) throw new Error("no version in the CRD");
  return schema;
}

/** Every schema node with its path (`.spec.target.port`), depth first. */
function nodes(schema: JsonSchema, path = ""): Array<[string, JsonSchema]> {
  const result: Array<[string, JsonSchema]> = [[path, schema]];
  const properties = schema.properties as Record<string, JsonSchema> | undefined;
  for (const [name, property] of Object.entries(properties ?? {}))
    result.push(...nodes(property, `${path}.${name}`));
  if (typeof schema.items === "object") result.push(...nodes(schema.items as JsonSchema, `${path}[*]`));
  if (typeof schema.additionalProperties === "object") {
    result.push(...nodes(schema.additionalProperties as JsonSchema, `${path}.*`));
  }
  return result;
}

describe("the StepFunctionSource CRD file", () => {
  it(`is what the generator writes (else run \`${CRD_COMMAND}\`)`, () => {
    // Not chai's equal on the whole text: its diff of two 40 kB strings says less than the line that differs.
    const expected = renderCrdYaml();
    if (committed !== expected) {
      const have = committed.split("\n");
      const want = expected.split("\n");
      const line = want.findIndex((text, index) => have[index] !== text);
      expect.fail(
        `${CRD_FILE} differs from the generator's output (first at line ${line + 1}): run \`${CRD_COMMAND}\` ` +
          `and commit the result.\n  committed: ${have[line]}\n  generated: ${want[line]}`,
      );
    }
  });

  it(`is copied byte for byte into the Helm chart's crds/ folder (else run \`${CRD_COMMAND}\`)`, () => {
    const copy = readFileSync(new URL(`../../${CHART_CRD_FILE}`, import.meta.url), "utf8");
    expect(copy === committed, `${CHART_CRD_FILE} differs from ${CRD_FILE}: run \`${CRD_COMMAND}\``).to.equal(
      true,
    );
  });

  it("reads back as the CRD object in YAML 1.1, as kubectl reads it, after a header naming the command", () => {
    expect(committed.split("\n")[0]).to.contain(CRD_COMMAND).and.to.contain("Generated");
    expect(parse(committed, { version: "1.1" })).to.deep.equal(stepFunctionSourceCrd());
  });

  it("names the kind, short name, scope, status subresource and the printer columns", () => {
    const crd = stepFunctionSourceCrd() as {
      metadata: { name: string };
      spec: {
        group: string;
        scope: string;
        names: { kind: string; plural: string; shortNames: string[] };
        versions: Array<{
          name: string;
          served: boolean;
          storage: boolean;
          subresources: unknown;
          additionalPrinterColumns: Array<{ name: string; type: string; jsonPath: string }>;
        }>;
      };
    };
    expect(crd.metadata.name).to.equal("stepfunctionsources.sfn-operator.dev");
    expect(`${crd.spec.group}/${crd.spec.versions[0]?.name}`).to.equal(SFS_API_VERSION);
    expect(crd.spec.scope).to.equal("Namespaced");
    expect(crd.spec.names.kind).to.equal(SFS_KIND);
    expect(crd.spec.names.shortNames).to.deep.equal([SFS_SHORT_NAME]);
    expect(crd.spec.versions).to.have.length(1);
    const version = crd.spec.versions[0];
    expect(version?.served && version.storage).to.equal(true);
    expect(version?.subresources).to.deep.equal({ status: {} });
    expect(version?.additionalPrinterColumns.map((c) => [c.name, c.type, c.jsonPath])).to.deep.equal([
      ["Activity", "string", ".spec.activityName"],
      ["Max", "integer", ".spec.maxConcurrency"],
      ["Pollers", "string", ".status.pollers"],
      ["In-Flight", "integer", ".status.tasksInFlight"],
      ["Succeeded", "integer", ".status.tasksSucceeded"],
      ["Failed", "integer", ".status.tasksFailed"],
      ["Ready", "string", '.status.conditions[?(@.type=="Ready")].status'],
      ["Age", "date", ".metadata.creationTimestamp"],
    ]);
  });
});

describe("the CRD's schema", () => {
  it("is structural: structuralProblems finds nothing", () => {
    expect(structuralProblems(openApiSchema())).to.deep.equal([]);
  });

  it("has no additionalProperties beside properties, no additionalProperties: false, no $ref anywhere", () => {
    for (const [path, node] of nodes(openApiSchema())) {
      expect(node.additionalProperties, path).to.not.equal(false);
      if (node.properties !== undefined) expect(node.additionalProperties, path).to.equal(undefined);
    }
    const text = JSON.stringify(openApiSchema());
    for (const keyword of ['"$ref"', '"definitions"', '"$defs"', '"$schema"'])
      expect(text).to.not.contain(keyword);
  });

  it("describes every field, for kubectl explain", () => {
    for (const [path, node] of nodes(openApiSchema())) {
      // Map values (`.*`) and list items (`[*]`) are described by their field; metadata by Kubernetes.
      if (path.endsWith(".*") || path.endsWith("[*]") || path === ".metadata") continue;
      expect(node.description, `description of ${path}`).to.be.a("string").and.not.equal("");
    }
  });

  it("gives every pattern in a form RE2 compiles", () => {
    const patterns = nodes(openApiSchema()).filter(([, node]) => typeof node.pattern === "string");
    expect(patterns.length).to.be.greaterThan(10);
    for (const [path, node] of patterns) {
      expect(re2Problems(node.pattern as string), path).to.deep.equal([]);
    }
  });

  it("keeps the API server's defaults, the CEL rules and the list-map markers", () => {
    const spec = nodes(openApiSchema()).find(([path]) => path === ".spec")?.[1] as JsonSchema;
    const properties = spec.properties as Record<string, JsonSchema>;
    expect(properties.maxConcurrency?.default).to.equal(1);
    expect(properties.concurrencyPerPoller?.default).to.equal(1);
    expect(properties.requestTimeout?.default).to.equal("5m");
    expect(properties.heartbeatInterval?.default).to.equal("10s");
    expect(spec.required).to.deep.equal(["activityName", "target"]);
    expect(spec["x-kubernetes-validations"]).to.deep.include.members([
      {
        rule: "self.concurrencyPerPoller <= self.maxConcurrency",
        message:
          "concurrencyPerPoller must not exceed maxConcurrency: a poller cannot use more permits than the source has",
        fieldPath: ".concurrencyPerPoller",
        reason: "FieldValueInvalid",
      },
    ]);
    const all = new Map(nodes(openApiSchema()));
    expect(all.get(".spec.target.headers")?.["x-kubernetes-list-type"]).to.equal("map");
    expect(all.get(".spec.target.headers")?.["x-kubernetes-list-map-keys"]).to.deep.equal(["name"]);
    expect(all.get(".spec.target.headers")?.maxItems).to.be.a("number");
    expect(all.get(".spec.target.headers[*].name")?.maxLength).to.be.a("number");
    expect(all.get(".status.conditions")?.["x-kubernetes-list-type"]).to.equal("map");
    expect(all.get(".status.conditions")?.["x-kubernetes-list-map-keys"]).to.deep.equal(["type"]);
    expect(all.get(".status.conditions[*].status")?.enum).to.deep.equal(["True", "False", "Unknown"]);
    expect(all.get(".status.conditions[*].lastTransitionTime")?.format).to.equal("date-time");
    expect(all.get(".status.conditions[*].observedGeneration")?.format).to.equal("int64");
    expect(all.get(".spec.target.port")).to.include({
      "x-kubernetes-int-or-string": true,
      minimum: 1,
      maximum: 65535,
    });
    expect(all.get(".spec.affinity")).to.include({
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    });
    expect(all.get(".spec.resources.requests.*")).to.include({ "x-kubernetes-int-or-string": true });
  });

  it("types every status field the operator writes, all optional", () => {
    const status = new Map(nodes(openApiSchema())).get(".status") as JsonSchema;
    expect(Object.keys(status.properties as object)).to.include.members([
      "observedGeneration",
      "activityArn",
      "desiredPollers",
      "readyPollers",
      "updatedPollers",
      "pollers",
      "tasksInFlight",
      "tasksSucceeded",
      "tasksFailed",
      "lastTaskTime",
      "conditions",
    ]);
    expect(status.required).to.equal(undefined);
    expect(CONDITION_TYPES[0]).to.equal("Ready");
  });
});

describe("structuralSchema (zod's JSON Schema made structural)", () => {
  const convert = (schema: z.ZodType) =>
    structuralSchema(z.toJSONSchema(schema, { target: "openapi-3.0", io: "input" }) as JsonSchema);

  it("drops additionalProperties: false of strict objects, keeps defaults and descriptions", () => {
    const schema = convert(
      z.strictObject({ size: z.int().min(1).default(3).describe("how big"), name: z.string().describe("n") }),
    );
    expect(schema).to.deep.equal({
      properties: {
        size: { default: 3, description: "how big", minimum: 1, type: "integer" },
        name: { description: "n", type: "string" },
      },
      required: ["name"],
      type: "object",
    });
  });

  it("turns an integer-or-string union into int-or-string with each branch's rules on the node", () => {
    const schema = convert(
      z
        .union([
          z.int().min(1).max(9),
          z
            .string()
            .max(3)
            .regex(/^[a-z]+$/),
        ])
        .describe("p"),
    );
    expect(schema).to.deep.equal({
      anyOf: [{ type: "integer" }, { type: "string" }],
      description: "p",
      maxLength: 3,
      maximum: 9,
      minimum: 1,
      pattern: "^[a-z]+$",
      "x-kubernetes-int-or-string": true,
    });
  });

  it("refuses any other union, naming where it is", () => {
    expect(() => convert(z.strictObject({ a: z.union([z.string(), z.boolean()]) }))).to.throw(/\.a: a union/);
  });

  it("preserves unknown fields of z.unknown() and of a record of z.unknown()", () => {
    const schema = convert(z.strictObject({ any: z.unknown(), map: z.record(z.string(), z.unknown()) }));
    const properties = schema.properties as Record<string, JsonSchema>;
    expect(properties.any).to.deep.equal({ "x-kubernetes-preserve-unknown-fields": true });
    expect(properties.map).to.deep.equal({ type: "object", "x-kubernetes-preserve-unknown-fields": true });
  });

  it("inlines $refs and drops the definitions; refuses a recursive one", () => {
    const schema = structuralSchema({
      type: "object",
      properties: { a: { $ref: "#/definitions/Name" }, b: { $ref: "#/$defs/Name", description: "b" } },
      definitions: { Name: { type: "string", maxLength: 3 } },
      $defs: { Name: { type: "string", maxLength: 3 } },
    });
    expect(schema).to.deep.equal({
      properties: {
        a: { maxLength: 3, type: "string" },
        b: { description: "b", maxLength: 3, type: "string" },
      },
      type: "object",
    });
    expect(() =>
      structuralSchema({
        type: "object",
        properties: { next: { $ref: "#/definitions/Node" } },
        definitions: { Node: { type: "object", properties: { next: { $ref: "#/definitions/Node" } } } },
      }),
    ).to.throw(/recursive \$ref/);
  });

  it("drops z.int()'s safe-integer bounds and the pattern zod adds to a date-time", () => {
    const schema = convert(z.strictObject({ n: z.int(), t: z.iso.datetime() }));
    const properties = schema.properties as Record<string, JsonSchema>;
    expect(properties.n).to.deep.equal({ type: "integer" });
    expect(properties.t).to.deep.equal({ format: "date-time", type: "string" });
  });

  it("keeps x-kubernetes markers given with .meta()", () => {
    const schema = convert(
      z.array(z.strictObject({ k: z.string() })).meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["k"],
        "x-kubernetes-validations": [{ rule: "size(self) < 3" }],
      }),
    );
    expect(schema).to.include({ "x-kubernetes-list-type": "map" });
    expect(schema["x-kubernetes-validations"]).to.deep.equal([{ rule: "size(self) < 3" }]);
    expect(structuralProblems(schema)).to.deep.equal([]);
  });
});

describe("structuralProblems", () => {
  it("reports what the API server refuses, with the place", () => {
    expect(
      structuralProblems({
        type: "object",
        properties: {
          a: { type: "object", properties: { x: { type: "string" } }, additionalProperties: false },
          b: { description: "no type" },
          c: { anyOf: [{ type: "string" }, { type: "boolean" }] },
          d: { type: "string", pattern: "^(?!x)" },
          e: { $ref: "#/definitions/E" },
          f: {
            type: "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["k"],
            items: { type: "object", properties: { k: { type: "string" } } },
          },
        },
      }),
    ).to.deep.equal([
      ".a: additionalProperties beside properties",
      ".a: additionalProperties: false",
      ".b: no type (and not int-or-string or preserve-unknown-fields)",
      ".c: no type (and not int-or-string or preserve-unknown-fields)",
      ".c: anyOf other than int-or-string's [{type: integer}, {type: string}]",
      ".d: pattern has a lookaround (?!...), which RE2 does not support",
      ".e: $ref is not a CRD schema keyword",
      ".e: no type (and not int-or-string or preserve-unknown-fields)",
      ".f: list-map key k is neither required nor defaulted",
    ]);
  });
});

describe("re2Problems", () => {
  it("accepts RE2's own syntax that JavaScript reads the same way", () => {
    for (const pattern of [
      ACTIVITY_NAME_RE2_PATTERN,
      REQUEST_PATH_RE2_PATTERN,
      "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$",
      "^a\\\\1$", // an escaped backslash, then the digit 1: not a backreference
      "^(?:a|b){1,1000}$",
      "^[\\x00-\\x1f]\\d\\s\\w\\b$",
    ]) {
      expect(re2Problems(pattern), pattern).to.deep.equal([]);
    }
  });

  it("refuses lookarounds, backreferences and escapes RE2 does not know", () => {
    const cases: Array<[string, RegExp]> = [
      ["^(?=a)a$", /lookaround/],
      ["^(?!a)b$", /lookaround/],
      ["^(?<=a)b$", /lookaround/],
      ["^(?<!a)b$", /lookaround/],
      ["^(a)\\1$", /backreference/],
      ["^(?<n>a)\\k<n>$", /\\k|group/],
      ["^\\u0041$", /\\u/],
      ["^\\cA$", /\\c/],
      ["^a\\Z", /\\Z/],
      ["^\\0$", /octal/],
      ["^\\x4$", /\\x/],
      ["^a{1001}$", /1000/],
      ["^(a$", /does not compile/],
    ];
    for (const [pattern, problem] of cases) {
      const problems = re2Problems(pattern);
      expect(problems.join("; "), pattern).to.match(problem);
    }
  });
});

describe("RE2 twins of the JavaScript patterns", () => {
  /** Every character of the Basic Multilingual Plane, surrogates included (alone, as JS strings allow). */
  const bmp = Array.from({ length: 0x10000 }, (_, code) => String.fromCharCode(code));

  it("ACTIVITY_NAME_RE2_PATTERN accepts exactly the names ACTIVITY_NAME_PATTERN accepts", () => {
    const twin = jsRegExpOfRe2(ACTIVITY_NAME_RE2_PATTERN);
    const differ = bmp.filter((char) => twin.test(`a${char}b`) !== ACTIVITY_NAME_PATTERN.test(`a${char}b`));
    expect(differ.map((char) => `U+${char.charCodeAt(0).toString(16)}`)).to.deep.equal([]);
    expect(twin.test("a".repeat(80))).to.equal(true);
    expect(twin.test("a".repeat(81))).to.equal(false);
  });

  it("REQUEST_PATH_RE2_PATTERN accepts exactly the paths requestPathSchema accepts", () => {
    const twin = jsRegExpOfRe2(REQUEST_PATH_RE2_PATTERN);
    const differ = bmp.filter(
      (char) => twin.test(`/a${char}`) !== requestPathSchema.safeParse(`/a${char}`).success,
    );
    expect(differ.map((char) => `U+${char.charCodeAt(0).toString(16)}`)).to.deep.equal([]);
    expect(twin.test("a/b")).to.equal(false);
  });
});

describe("parseSourceSpec", () => {
  const minimal = { activityName: "sum", target: { service: "sum-svc", path: "/step/sum" } };

  it("accepts a minimal spec and applies the API server's defaults", () => {
    expect(parseSourceSpec(minimal)).to.deep.equal({
      ok: true,
      value: {
        ...minimal,
        maxConcurrency: 1,
        concurrencyPerPoller: 1,
        requestTimeout: "5m",
        heartbeatInterval: "10s",
      },
    });
  });

  it("accepts every field of the documented example", () => {
    const spec = {
      activityName: "sum",
      target: {
        service: "sum-svc",
        port: 8080,
        path: "/step/sum",
        headers: [{ name: "Authorization", valueFrom: { secretKeyRef: { name: "sum-api", key: "token" } } }],
      },
      maxConcurrency: 10,
      concurrencyPerPoller: 5,
      requestTimeout: "90s",
      heartbeatInterval: "30s",
      region: "us-east-1",
      serviceAccountName: "sum-poller",
      image: "example/sfn-operator:0.1.0",
      resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } },
      nodeSelector: { "kubernetes.io/arch": "arm64" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "workers", effect: "NoSchedule" }],
      affinity: {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
      },
      podAnnotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/sum" },
      podLabels: { team: "payments" },
      redis: { url: "redis://other-redis:6379", passwordSecretRef: { name: "other-redis", key: "password" } },
    };
    const parsed = parseSourceSpec(spec);
    expect(parsed).to.deep.equal({ ok: true, value: spec });
  });

  it("takes a port name and quantities written as numbers (as strings, as client-node types them)", () => {
    const parsed = parseSourceSpec({
      ...minimal,
      target: { ...minimal.target, port: "http-metrics-endpoint" },
      resources: { requests: { cpu: 1, memory: "96Mi" } },
    });
    expect(parsed.ok && parsed.value.target.port).to.equal("http-metrics-endpoint");
    expect(parsed.ok && parsed.value.resources?.requests).to.deep.equal({ cpu: "1", memory: "96Mi" });
  });

  const header = (name: string) => ({ name, valueFrom: { secretKeyRef: { name: "s", key: "k" } } });
  const invalid: Array<[string, unknown, string, RegExp]> = [
    ["no activityName", { target: minimal.target }, "activityName", /is required/],
    ["a space in activityName", { ...minimal, activityName: "s um" }, "activityName", /must not contain " "/],
    ["81 characters", { ...minimal, activityName: "a".repeat(81) }, "activityName", /at most 80 characters/],
    [
      "a path without /",
      { ...minimal, target: { ...minimal.target, path: "step" } },
      "target.path",
      /starts with "\/"/,
    ],
    ["maxConcurrency 0", { ...minimal, maxConcurrency: 0 }, "maxConcurrency", /at least 1/],
    ["maxConcurrency 1001", { ...minimal, maxConcurrency: 1001 }, "maxConcurrency", /at most 1000/],
    ["maxConcurrency '3'", { ...minimal, maxConcurrency: "3" }, "maxConcurrency", /whole number, got "3"/],
    [
      "concurrencyPerPoller above maxConcurrency",
      { ...minimal, maxConcurrency: 2, concurrencyPerPoller: 3 },
      "concurrencyPerPoller",
      /must not exceed maxConcurrency \(2\)/,
    ],
    ["a duration without unit", { ...minimal, requestTimeout: "30" }, "requestTimeout", /needs a unit/],
    // Ranges: the API server checks only the pattern; these are parseSourceSpec's own.
    ["requestTimeout too long", { ...minimal, requestTimeout: "25h" }, "requestTimeout", /at most 24h/],
    [
      "heartbeatInterval too short",
      { ...minimal, heartbeatInterval: "500ms" },
      "heartbeatInterval",
      /at least 1s/,
    ],
    ["an unknown field", { ...minimal, maxConcurency: 3 }, "maxConcurency", /did you mean "maxConcurrency"/],
    ["port 0", { ...minimal, target: { ...minimal.target, port: 0 } }, "target.port", /1 to 65535, got 0/],
    ["port 70000", { ...minimal, target: { ...minimal.target, port: 70000 } }, "target.port", /1 to 65535/],
    [
      "a bad port name",
      { ...minimal, target: { ...minimal.target, port: "HTTP" } },
      "target.port",
      /name of one of the Service's ports/,
    ],
    [
      "a reserved header, in any case",
      { ...minimal, target: { ...minimal.target, headers: [header("HOST")] } },
      "target.headers.0.name",
      /the poller sets it/,
    ],
    [
      "a step-func-* header",
      { ...minimal, target: { ...minimal.target, headers: [header("Step-Func-Task-Id")] } },
      "target.headers.0.name",
      /step-func-\*/,
    ],
    [
      "a header without secretKeyRef",
      { ...minimal, target: { ...minimal.target, headers: [{ name: "X-Key", valueFrom: {} }] } },
      "target.headers.0.valueFrom.secretKeyRef",
      /is required/,
    ],
    [
      "a header with a literal value",
      { ...minimal, target: { ...minimal.target, headers: [{ name: "X-Key", value: "secret" }] } },
      "target.headers.0.value",
      /unknown key/,
    ],
    [
      "a header twice in another case",
      { ...minimal, target: { ...minimal.target, headers: [header("X-Key"), header("x-key")] } },
      "target.headers.1.name",
      /given twice/,
    ],
    [
      "a Service name in uppercase",
      { ...minimal, target: { ...minimal.target, service: "Sum" } },
      "target.service",
      /name of a Service/,
    ],
    ["a bad label key", { ...minimal, podLabels: { "a/b/c": "x" } }, "podLabels.a/b/c", /key such as/],
    ["a bad label value", { ...minimal, podLabels: { team: "a b" } }, "podLabels.team", /label value/],
    ["a bad Redis URL", { ...minimal, redis: { url: "http://redis" } }, "redis.url", /redis:\/\//],
    [
      "a Redis URL with a password (never in the Deployment's plain environment)",
      { ...minimal, redis: { url: "redis://:s3cret@redis:6379" } },
      "redis.url",
      /without a user, password or query.*got a URL with credentials or a query$/,
    ],
    [
      "a Redis URL with a password in its query (ioredis reads it)",
      { ...minimal, redis: { url: "redis://redis:6379/0?password=s3cret" } },
      "redis.url",
      /without a user, password or query.*got a URL with credentials or a query$/,
    ],
    [
      "a bad quantity",
      { ...minimal, resources: { limits: { memory: "lots" } } },
      "resources.limits.memory",
      /quantity/,
    ],
    ["a spec that is not a mapping", ["sum"], "", /must be a mapping/],
  ];
  for (const [what, spec, field, message] of invalid) {
    it(`refuses ${what}, naming ${field || "the spec"}`, () => {
      const parsed = parseSourceSpec(spec);
      expect(parsed.ok, what).to.equal(false);
      const issues = parsed.ok ? [] : parsed.issues;
      const found = issues.find((issue) => issue.path.join(".") === field);
      expect(found, JSON.stringify(issues)).to.not.equal(undefined);
      expect(found?.message).to.match(message);
    });
  }

  it("reports every problem at once, the cross-field rule included", () => {
    const parsed = parseSourceSpec({
      ...minimal,
      activityName: "",
      maxConcurrency: 2,
      concurrencyPerPoller: 3,
    });
    expect(parsed.ok ? [] : parsed.issues.map((issue) => issue.path.join("."))).to.deep.equal([
      "activityName",
      "concurrencyPerPoller",
    ]);
  });

  it("returns the z.output type the operator builds on", () => {
    const parsed = parseSourceSpec(minimal);
    const spec: StepFunctionSourceSpec | undefined = parsed.ok ? parsed.value : undefined;
    expect(spec?.maxConcurrency).to.equal(1);
  });
});

describe("local mode and the CRD share the fields' rules", () => {
  /** Whether local mode's file accepts `field: value` in a source, and whether parseSourceSpec does. */
  function verdicts(field: string, value: unknown): [boolean, boolean] {
    const source = {
      activityName: "sum",
      target: "http://127.0.0.1:8080",
      path: "/step/sum",
      [field]: value,
    };
    let local = true;
    try {
      parseLocalConfig(JSON.stringify({ sources: [source] }), "sources.yaml", {});
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      local = false;
    }
    const spec =
      field === "path"
        ? { activityName: "sum", target: { service: "s", path: value } }
        : { activityName: "sum", target: { service: "s", path: "/step/sum" }, [field]: value };
    return [local, parseSourceSpec(spec).ok];
  }

  const values: Record<string, unknown[]> = {
    activityName: [
      "sum",
      "s um",
      "",
      "a".repeat(80),
      "a".repeat(81),
      "a/b",
      "ü-ok",
      "tab\there",
      "nbsp\u00a0",
    ],
    path: ["/", "/a/b?c=d", "a", "/a b", "/a\u00a0b", ""],
    maxConcurrency: [1, 1000, 0, 1001, 2.5, "3"],
    concurrencyPerPoller: [1, 0, 1001],
    requestTimeout: ["5m", "100ms", "99ms", "24h", "25h", "30", "1h30m", "1.5s", "-1s", 30],
    heartbeatInterval: ["10s", "1s", "999ms", "1h", "61m", "1d"],
  };
  for (const [field, list] of Object.entries(values)) {
    it(`${field}: the same values accepted and refused`, () => {
      for (const value of list) {
        const [local, crd] = verdicts(field, value);
        expect(
          crd,
          `${field}: ${JSON.stringify(value)} (local mode ${local ? "accepts" : "refuses"})`,
        ).to.equal(local);
      }
    });
  }
});
