/**
 * The StepFunctionSource CustomResourceDefinition, generated from the zod schemas of
 * step-function-source.ts (`npm run crds` writes it to crds/, a unit test fails when that file drifts).
 *
 * zod's `toJSONSchema(schema, { target: "openapi-3.0", io: "input" })` gives an OpenAPI schema; the API
 * server wants a *structural* one (apiextensions.k8s.io/v1), which structuralSchema makes of it:
 * - `additionalProperties: false` (strict objects) goes: unknown fields are already refused or pruned by
 *   the API server, and the two keywords together are not allowed;
 * - `additionalProperties: {}` (a record of z.unknown()) and `{}` (z.unknown()) become
 *   `x-kubernetes-preserve-unknown-fields: true`;
 * - a union of an integer and a string becomes `x-kubernetes-int-or-string: true` with the anyOf
 *   Kubernetes allows, the branches' bounds and pattern on the node (each applies to its own type only);
 *   any other union is refused, as the API server would refuse it;
 * - `$ref`s are inlined (definitions are not allowed), zod's safe-integer bounds of z.int() and the
 *   pattern it adds to a date-time (the API server checks the format) are dropped.
 * structuralProblems then checks the result the way the API server would, and re2Problems checks every
 * pattern for what Go's RE2 refuses (the generator throws on any problem, the tests check both).
 */
import { stringify } from "yaml";
import { z } from "zod";
import { byCodeUnit } from "../util/order.ts";
import {
  SFS_CRD_NAME,
  SFS_GROUP,
  SFS_KIND,
  SFS_LIST_KIND,
  SFS_PLURAL,
  SFS_SHORT_NAME,
  SFS_SINGULAR,
  SFS_VERSION,
  stepFunctionSourceSpecSchema,
  stepFunctionSourceStatusSchema,
} from "./step-function-source.ts";

/** A JSON Schema (OpenAPI v3) node, as zod emits it and as the CRD carries it. */
export type JsonSchema = { [keyword: string]: unknown };

/** Where `npm run crds` writes the CRD, relative to the repository's root. */
export const CRD_FILE = `crds/${SFS_CRD_NAME}.yaml`;
/** The command that writes CRD_FILE, named in its header and in the drift test's message. */
export const CRD_COMMAND = "npm run crds";

/** The integer bounds zod emits for z.int() when no bound is given: not a rule of ours. */
const SAFE_INTEGER_BOUNDS = [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];

/** Keywords of an integer branch and of a string branch that move onto an int-or-string node. */
const INTEGER_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];
const STRING_KEYWORDS = ["minLength", "maxLength", "pattern"];

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isEmptySchema(value: unknown): boolean {
  return value === true || (isSchema(value) && Object.keys(value).length === 0);
}

/** A readable location for messages: `.spec.target.port`, `.spec.target.headers[*]`. */
function at(path: string): string {
  return path === "" ? "the root" : path;
}

/**
 * Make a JSON Schema from zod structural, as the rules at the top of this file say. Throws for what
 * cannot be made structural (a union other than int-or-string, a cyclic $ref), naming the place.
 */
export function structuralSchema(schema: JsonSchema): JsonSchema {
  const definitions: Record<string, unknown> = {
    ...(isSchema(schema.definitions) ? schema.definitions : {}),
    ...(isSchema(schema.$defs) ? schema.$defs : {}),
  };
  return convert(schema, "", { root: schema, definitions, resolving: [] });
}

interface ConvertContext {
  root: JsonSchema;
  definitions: Record<string, unknown>;
  /** The $refs being inlined, to refuse a cycle instead of recursing for ever. */
  resolving: string[];
}

function resolveRef(ref: string, path: string, context: ConvertContext): JsonSchema {
  if (context.resolving.includes(ref)) {
    throw new Error(`${at(path)}: recursive $ref ${ref} cannot be inlined in a CRD schema`);
  }
  if (ref === "#") return context.root;
  const match = /^#\/(?:definitions|\$defs)\/(.+)$/.exec(ref);
  const name = match?.[1]?.replaceAll("~1", "/").replaceAll("~0", "~");
  const target = name === undefined ? undefined : context.definitions[name];
  if (!isSchema(target)) throw new Error(`${at(path)}: cannot resolve $ref ${ref}`);
  return target;
}

function convert(input: JsonSchema, path: string, context: ConvertContext): JsonSchema {
  let node: JsonSchema = input;
  if (typeof node.$ref === "string") {
    const ref = node.$ref;
    const { $ref: _ref, ...siblings } = node;
    const target = resolveRef(ref, path, context);
    return convert({ ...target, ...siblings }, path, { ...context, resolving: [...context.resolving, ref] });
  }
  const { definitions: _definitions, $defs: _defs, $schema: _schema, id: _id, $id: _$id, ...rest } = node;
  node = rest;
  const out: JsonSchema = {};
  for (const [keyword, value] of Object.entries(node)) {
    switch (keyword) {
      case "properties": {
        const properties: JsonSchema = {};
        for (const [name, property] of Object.entries(value as JsonSchema)) {
          properties[name] = convert(property as JsonSchema, `${path}.${name}`, context);
        }
        out.properties = properties;
        break;
      }
      case "items":
        out.items = convert(value as JsonSchema, `${path}[*]`, context);
        break;
      case "additionalProperties":
        if (value === false) break; // strict object: the API server refuses or prunes unknown fields
        if (isEmptySchema(value)) out["x-kubernetes-preserve-unknown-fields"] = true;
        else out.additionalProperties = convert(value as JsonSchema, `${path}.*`, context);
        break;
      case "allOf":
      case "not":
        throw new Error(`${at(path)}: ${keyword} is not supported by this generator`);
      case "minimum":
      case "maximum":
        if (!SAFE_INTEGER_BOUNDS.includes(value as number)) out[keyword] = value;
        break;
      default:
        out[keyword] = value;
    }
  }
  const union = out.anyOf ?? out.oneOf;
  if (union !== undefined) {
    delete out.anyOf;
    delete out.oneOf;
    Object.assign(out, intOrString(union, path, context));
  }
  if (out.format === "date-time") delete out.pattern;
  if (
    out.type === undefined &&
    out["x-kubernetes-int-or-string"] !== true &&
    out["x-kubernetes-preserve-unknown-fields"] !== true
  ) {
    // z.unknown(): anything goes, kept as given.
    out["x-kubernetes-preserve-unknown-fields"] = true;
  }
  return sortKeywords(out);
}

/** An int-or-string node from a union of one integer and one string branch; throws for other unions. */
function intOrString(union: unknown, path: string, context: ConvertContext): JsonSchema {
  const branches = Array.isArray(union)
    ? union.map((branch, index) => convert(branch as JsonSchema, `${path}<${index}>`, context))
    : [];
  const integer = branches.find((branch) => branch.type === "integer");
  const string = branches.find((branch) => branch.type === "string");
  if (branches.length !== 2 || integer === undefined || string === undefined) {
    throw new Error(
      `${at(path)}: a union must be of one integer and one string (int-or-string) to be structural, got ` +
        JSON.stringify(branches.map((branch) => branch.type ?? "untyped")),
    );
  }
  const node: JsonSchema = {
    "x-kubernetes-int-or-string": true,
    // The one anyOf a structural schema may have: exactly these two branches, nothing else in them.
    anyOf: [{ type: "integer" }, { type: "string" }],
  };
  // Each keyword applies to values of its own type only, so both branches' rules can sit on the node.
  for (const keyword of INTEGER_KEYWORDS)
    if (integer[keyword] !== undefined) node[keyword] = integer[keyword];
  for (const keyword of STRING_KEYWORDS) if (string[keyword] !== undefined) node[keyword] = string[keyword];
  return node;
}

/** Keywords in alphabetical order (as controller-gen writes them), properties in the schema's order. */
function sortKeywords(node: JsonSchema): JsonSchema {
  return Object.fromEntries(Object.entries(node).sort(([a], [b]) => byCodeUnit(a, b)));
}

/** Keywords a structural schema's node may carry (apiextensions.k8s.io/v1 JSONSchemaProps). */
const KNOWN_KEYWORDS = new Set([
  "description",
  "type",
  "format",
  "title",
  "default",
  "maximum",
  "exclusiveMaximum",
  "minimum",
  "exclusiveMinimum",
  "maxLength",
  "minLength",
  "pattern",
  "maxItems",
  "minItems",
  "uniqueItems",
  "multipleOf",
  "enum",
  "maxProperties",
  "minProperties",
  "required",
  "items",
  "allOf",
  "oneOf",
  "anyOf",
  "not",
  "properties",
  "additionalProperties",
  "nullable",
  "example",
  "externalDocs",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-embedded-resource",
  "x-kubernetes-int-or-string",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-list-type",
  "x-kubernetes-map-type",
  "x-kubernetes-validations",
]);

/**
 * What the API server would refuse in a CRD's schema, or what Go's RE2 would not compile, one line
 * each with the place (`.spec.target.port: ...`). Empty when the schema is structural.
 */
export function structuralProblems(schema: JsonSchema, path = ""): string[] {
  const problems: string[] = [];
  const here = at(path);
  for (const keyword of Object.keys(schema)) {
    if (!KNOWN_KEYWORDS.has(keyword)) problems.push(`${here}: ${keyword} is not a CRD schema keyword`);
  }
  const intOrString = schema["x-kubernetes-int-or-string"] === true;
  const preserved = schema["x-kubernetes-preserve-unknown-fields"] === true;
  if (schema.type === undefined && !intOrString && !preserved) {
    problems.push(`${here}: no type (and not int-or-string or preserve-unknown-fields)`);
  }
  if (intOrString && schema.type !== undefined) problems.push(`${here}: int-or-string with a type`);
  if (schema.properties !== undefined && schema.additionalProperties !== undefined) {
    problems.push(`${here}: additionalProperties beside properties`);
  }
  if (schema.additionalProperties === false) problems.push(`${here}: additionalProperties: false`);
  for (const keyword of ["allOf", "oneOf", "not"]) {
    if (schema[keyword] !== undefined) problems.push(`${here}: ${keyword} is not produced structurally here`);
  }
  if (schema.anyOf !== undefined) {
    const intOrStringAnyOf = JSON.stringify([{ type: "integer" }, { type: "string" }]);
    if (!intOrString || JSON.stringify(schema.anyOf) !== intOrStringAnyOf) {
      problems.push(`${here}: anyOf other than int-or-string's [{type: integer}, {type: string}]`);
    }
  }
  if (typeof schema.pattern === "string") {
    for (const problem of re2Problems(schema.pattern)) problems.push(`${here}: pattern ${problem}`);
  }
  if (schema["x-kubernetes-list-type"] === "map") {
    const items = isSchema(schema.items) ? schema.items : {};
    const required = Array.isArray(items.required) ? items.required : [];
    const keys = schema["x-kubernetes-list-map-keys"];
    if (!Array.isArray(keys) || keys.length === 0) problems.push(`${here}: list-type map without map keys`);
    else {
      for (const key of keys) {
        const property = isSchema(items.properties) ? items.properties[key] : undefined;
        if (!required.includes(key) && !(isSchema(property) && property.default !== undefined)) {
          problems.push(`${here}: list-map key ${key} is neither required nor defaulted`);
        }
      }
    }
  }
  if (isSchema(schema.properties)) {
    for (const [name, property] of Object.entries(schema.properties)) {
      if (isSchema(property)) problems.push(...structuralProblems(property, `${path}.${name}`));
    }
  }
  if (isSchema(schema.items)) problems.push(...structuralProblems(schema.items, `${path}[*]`));
  if (isSchema(schema.additionalProperties)) {
    problems.push(...structuralProblems(schema.additionalProperties, `${path}.*`));
  }
  return problems;
}

/** Letters Go's RE2 knows after a backslash (perl classes, anchors, \p, \x, \Q...\E, C escapes). */
const RE2_LETTER_ESCAPES = new Set("afnrtvdDsSwWbBAzpPxQE");

/**
 * Why Go's regexp (RE2 syntax) would refuse `pattern`, or read it differently from JavaScript: one
 * problem each. Checks what can be checked without Go: lookarounds, backreferences and octal escapes,
 * escapes RE2 does not know (\u, \c, \k, \Z...), repetition counts above 1000, and that the pattern
 * compiles in JavaScript (with RE2's `\x{...}` read as `\u{...}`).
 */
export function re2Problems(pattern: string): string[] {
  const problems: string[] = [];
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index];
    if (char === "\\") {
      const next = pattern[index + 1] ?? "";
      if (/[1-9]/.test(next)) problems.push(`has a backreference \\${next}, which RE2 does not support`);
      else if (next === "0") problems.push("has an octal escape \\0, which reads differently in RE2");
      else if (/[A-Za-z]/.test(next) && !RE2_LETTER_ESCAPES.has(next)) {
        problems.push(`has the escape \\${next}, which RE2 does not know`);
      } else if (next === "x" && !/^\\x([0-9A-Fa-f]{2}|\{[0-9A-Fa-f]+\})/.test(pattern.slice(index))) {
        problems.push("has a \\x escape without two hex digits or {hex}");
      }
      index++;
      continue;
    }
    if (char === "(" && pattern[index + 1] === "?") {
      const group = pattern.slice(index + 2, index + 4);
      if (group.startsWith("=") || group.startsWith("!") || group === "<=" || group === "<!") {
        problems.push(
          `has a lookaround (?${group.startsWith("<") ? group : group[0]}...), which RE2 does not support`,
        );
      } else if (group.startsWith("<") || group.startsWith(">")) {
        problems.push(`has a group (?${group[0]}...) that not every RE2 reads (use (?P<name>...) or none)`);
      }
    }
  }
  for (const match of pattern.matchAll(/\{(\d+)(?:,(\d*))?\}/g)) {
    const counts = [match[1], match[2]].filter((count) => count !== undefined && count !== "");
    if (counts.some((count) => Number(count) > 1000)) {
      problems.push(`has the repetition ${match[0]}: RE2 allows counts up to 1000`);
    }
  }
  try {
    jsRegExpOfRe2(pattern);
  } catch (error) {
    problems.push(`does not compile: ${error instanceof Error ? error.message : String(error)}`);
  }
  return problems;
}

/**
 * A JavaScript RegExp reading an RE2 pattern as Go does, for patterns re2Problems accepts: Unicode mode
 * (so `\p{...}` means what it means in Go) and `\x{H...}` spelt `\u{H...}`.
 */
export function jsRegExpOfRe2(pattern: string): RegExp {
  return new RegExp(
    pattern.replace(/(\\\\)|\\x\{([0-9A-Fa-f]+)\}/g, (whole, escaped: string | undefined, hex: string) =>
      escaped !== undefined ? whole : `\\u{${hex}}`,
    ),
    "u",
  );
}

/** The structural openAPIV3Schema of the spec or status schema. */
function openApiSchema(schema: z.ZodType): JsonSchema {
  return structuralSchema(z.toJSONSchema(schema, { target: "openapi-3.0", io: "input" }) as JsonSchema);
}

/** The CustomResourceDefinition, as an object (JSON-compatible, keys in a fixed order). */
export function stepFunctionSourceCrd(): JsonSchema {
  const openAPIV3Schema: JsonSchema = {
    description:
      "A StepFunctionSource serves the tasks of an AWS Step Functions activity from an HTTP Service: the " +
      "operator runs poller pods that take tasks from the activity and POST each task's input to the " +
      "Service, at most spec.maxConcurrency at once across all of them.",
    type: "object",
    properties: {
      apiVersion: {
        description:
          "APIVersion defines the versioned schema of this representation of an object. Servers should " +
          "convert recognized schemas to the latest internal value, and may reject unrecognized values.",
        type: "string",
      },
      kind: {
        description:
          "Kind is a string value representing the REST resource this object represents. Servers may " +
          "infer this from the endpoint the client submits requests to. In CamelCase.",
        type: "string",
      },
      metadata: { type: "object" },
      spec: openApiSchema(stepFunctionSourceSpecSchema),
      status: openApiSchema(stepFunctionSourceStatusSchema),
    },
    required: ["spec"],
  };
  const problems = structuralProblems(openAPIV3Schema);
  if (problems.length > 0) {
    throw new Error(`the StepFunctionSource schema is not a valid CRD schema:\n${problems.join("\n")}`);
  }
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: SFS_CRD_NAME,
      labels: { "app.kubernetes.io/name": "sfn-operator", "app.kubernetes.io/part-of": "sfn-operator" },
    },
    spec: {
      group: SFS_GROUP,
      scope: "Namespaced",
      names: {
        plural: SFS_PLURAL,
        singular: SFS_SINGULAR,
        kind: SFS_KIND,
        listKind: SFS_LIST_KIND,
        shortNames: [SFS_SHORT_NAME],
        categories: ["sfn-operator"],
      },
      versions: [
        {
          name: SFS_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            column("Activity", "string", ".spec.activityName", "Step Functions activity name."),
            column("Max", "integer", ".spec.maxConcurrency", "Tasks in flight at most, across all pollers."),
            column("Pollers", "string", ".status.pollers", "Poller pods ready/desired."),
            column("In-Flight", "integer", ".status.tasksInFlight", "Tasks being worked on now."),
            column("Succeeded", "integer", ".status.tasksSucceeded", "Tasks succeeded in total."),
            column("Failed", "integer", ".status.tasksFailed", "Tasks failed in total."),
            column(
              "Ready",
              "string",
              '.status.conditions[?(@.type=="Ready")].status',
              "Whether the source is serving its activity (the Ready condition).",
            ),
            column("Age", "date", ".metadata.creationTimestamp", "Time since the source was created."),
          ],
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

function column(name: string, type: string, jsonPath: string, description: string): JsonSchema {
  return { name, type, jsonPath, description };
}

/**
 * The CRD file's text: a header saying how it is made, then the CRD as YAML. Deterministic (the drift
 * test compares bytes). Strings that YAML 1.1 would read as something else (`on`, `y`, dates) are
 * quoted, as kubectl's YAML reader is YAML 1.1.
 */
export function renderCrdYaml(): string {
  const header = [
    `# Generated by \`${CRD_COMMAND}\` (scripts/generate-crds.ts) from the zod schemas of`,
    "# src/api/step-function-source.ts. Do not edit: change the schemas and run the command again.",
  ].join("\n");
  return `${header}\n${stringify(stepFunctionSourceCrd(), { version: "1.1", lineWidth: 0 })}`;
}
