/**
 * The StepFunctionSource CRD against the real API server: it is accepted as structural (with its CEL
 * rules within their cost budget), applies its defaults, refuses invalid objects with a message that
 * names the field and the rule, explains its fields and prints its columns.
 *
 * Invalid objects are sent with `kubectl create --dry-run=server --validate=strict`: the API server
 * validates them in full (schema, CEL, strict field validation for unknown fields) and stores nothing;
 * kubectl itself checks nothing about the schema, so every refusal here is the API server's.
 */
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { CRD_FILE } from "../../src/api/crd.ts";
import { SFS_API_VERSION, SFS_CRD_NAME, SFS_KIND } from "../../src/api/step-function-source.ts";
import type { TestCluster } from "../support/cluster.ts";
import { testCluster } from "../support/cluster-hooks.ts";
import { apply, createNamespace, eventually, getJson } from "./helpers.ts";

const crdPath = fileURLToPath(new URL(`../../${CRD_FILE}`, import.meta.url));

/** Installs the CRD (cluster-scoped: once per run; applying it again changes nothing) and waits for it. */
async function installCrd(cluster: TestCluster): Promise<void> {
  await cluster.kubectl([
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=sfn-operator-tests",
    "-f",
    crdPath,
  ]);
  await cluster.kubectl(["wait", "--for=condition=Established", `crd/${SFS_CRD_NAME}`, "--timeout=60s"], {
    timeoutMs: 70_000,
  });
}

function source(namespace: string, name: string, spec: unknown): object {
  return { apiVersion: SFS_API_VERSION, kind: SFS_KIND, metadata: { name, namespace }, spec };
}

const target = { service: "sum-svc", path: "/step/sum" };
const minimal = { activityName: "sum", target };
const header = (name: string) => ({ name, valueFrom: { secretKeyRef: { name: "sum-api", key: "token" } } });

/** Invalid specs: what is wrong, the spec, and what the API server's message must say (field and rule). */
const INVALID: Array<[string, unknown, RegExp]> = [
  ["no activityName", { target }, /spec\.activityName: Required value/],
  [
    "an activity name with a space",
    { ...minimal, activityName: "s um" },
    /spec\.activityName: Invalid value: "s um": spec\.activityName in body should match '\^\[\^\\p\{Z\}/,
  ],
  [
    "an activity name of 81 characters",
    { ...minimal, activityName: "a".repeat(81) },
    /spec\.activityName: Too long: may not be more than 80/,
  ],
  [
    "an activity name with a no-break space (Unicode white space, as AWS and local mode refuse it)",
    { ...minimal, activityName: "s\u00a0um" },
    /spec\.activityName: Invalid value: .*should match/,
  ],
  [
    'a path without a leading "/"',
    { ...minimal, target: { ...target, path: "step/sum" } },
    /spec\.target\.path: Invalid value: "step\/sum": spec\.target\.path in body should match '\^\/\[/,
  ],
  [
    "maxConcurrency 0",
    { ...minimal, maxConcurrency: 0 },
    /spec\.maxConcurrency: Invalid value: 0: spec\.maxConcurrency in body should be greater than or equal to 1/,
  ],
  [
    "maxConcurrency 1001",
    { ...minimal, maxConcurrency: 1001 },
    /spec\.maxConcurrency: Invalid value: 1001: spec\.maxConcurrency in body should be less than or equal to 1000/,
  ],
  [
    'maxConcurrency "3" (a string)',
    { ...minimal, maxConcurrency: "3" },
    /spec\.maxConcurrency: Invalid value: "string": spec\.maxConcurrency in body must be of type integer/,
  ],
  [
    "concurrencyPerPoller above maxConcurrency (CEL)",
    { ...minimal, maxConcurrency: 2, concurrencyPerPoller: 3 },
    /spec\.concurrencyPerPoller: Invalid value: concurrencyPerPoller must not exceed maxConcurrency/,
  ],
  [
    "concurrencyPerPoller above the default maxConcurrency of 1 (CEL after defaulting)",
    { ...minimal, concurrencyPerPoller: 2 },
    /spec\.concurrencyPerPoller: Invalid value: concurrencyPerPoller must not exceed maxConcurrency/,
  ],
  [
    'a duration without a unit ("30")',
    { ...minimal, requestTimeout: "30" },
    /spec\.requestTimeout: Invalid value: "30": spec\.requestTimeout in body should match '\^\(\[0-9\]\+/,
  ],
  [
    "a duration given as a number",
    { ...minimal, heartbeatInterval: 30 },
    /spec\.heartbeatInterval: Invalid value: "integer": spec\.heartbeatInterval in body must be of type string/,
  ],
  [
    "an unknown field",
    { ...minimal, maxConcurency: 3 },
    /strict decoding error: unknown field "spec\.maxConcurency"/,
  ],
  [
    "port 0",
    { ...minimal, target: { ...target, port: 0 } },
    /spec\.target\.port: Invalid value: 0: spec\.target\.port in body should be greater than or equal to 1/,
  ],
  [
    "port 70000",
    { ...minimal, target: { ...target, port: 70000 } },
    /spec\.target\.port: Invalid value: 70000: spec\.target\.port in body should be less than or equal to 65535/,
  ],
  [
    "a port name in uppercase",
    { ...minimal, target: { ...target, port: "HTTP" } },
    /spec\.target\.port: Invalid value: "HTTP": spec\.target\.port in body should match/,
  ],
  [
    "a port name longer than 63 characters (a Service port name is a DNS label)",
    { ...minimal, target: { ...target, port: `http-${"a".repeat(59)}` } },
    /spec\.target\.port: Too long: may not be more than 63/,
  ],
  [
    "a reserved header name, in another case (CEL)",
    { ...minimal, target: { ...target, headers: [header("Content-Type")] } },
    /spec\.target\.headers\[0\]\.name: Forbidden: header Content-Type cannot be set: the poller sets it/,
  ],
  [
    "a step-func-* header (CEL)",
    { ...minimal, target: { ...target, headers: [header("Step-Func-Task-Id")] } },
    /spec\.target\.headers\[0\]\.name: Forbidden: header Step-Func-Task-Id cannot be set/,
  ],
  [
    "a header name that is not a token",
    { ...minimal, target: { ...target, headers: [header("X Key")] } },
    /spec\.target\.headers\[0\]\.name: Invalid value: "X Key": spec\.target\.headers\[0\]\.name in body should match/,
  ],
  [
    "a header without valueFrom",
    { ...minimal, target: { ...target, headers: [{ name: "X-Key" }] } },
    /spec\.target\.headers\[0\]\.valueFrom: Required value/,
  ],
  [
    "a header with valueFrom but no secretKeyRef",
    { ...minimal, target: { ...target, headers: [{ name: "X-Key", valueFrom: {} }] } },
    /spec\.target\.headers\[0\]\.valueFrom\.secretKeyRef: Required value/,
  ],
  [
    "a header with a literal value",
    { ...minimal, target: { ...target, headers: [{ name: "X-Key", value: "secret" }] } },
    /strict decoding error: unknown field "spec\.target\.headers\[0\]\.value"/,
  ],
  [
    "the same header twice (list-map key)",
    { ...minimal, target: { ...target, headers: [header("X-Key"), header("X-Key")] } },
    /spec\.target\.headers\[1\]: Duplicate value/,
  ],
  [
    "the same header twice in another case (CEL)",
    { ...minimal, target: { ...target, headers: [header("X-Key"), header("x-key")] } },
    /spec\.target\.headers: Invalid value: header names must be unique ignoring case/,
  ],
  [
    "target.service in uppercase",
    { ...minimal, target: { ...target, service: "Sum-Svc" } },
    /spec\.target\.service: Invalid value: "Sum-Svc": spec\.target\.service in body should match '\^\[a-z\]/,
  ],
  ["no target", { activityName: "sum" }, /spec\.target: Required value/],
  [
    "a Redis URL of another scheme",
    { ...minimal, redis: { url: "http://redis:6379" } },
    /spec\.redis\.url: Invalid value: "http:\/\/redis:6379": spec\.redis\.url in body should match/,
  ],
  [
    "a Redis URL with a password in it (use passwordSecretRef)",
    { ...minimal, redis: { url: "redis://:s3cret@redis:6379" } },
    /spec\.redis\.url: Invalid value: .*spec\.redis\.url in body should match/,
  ],
  [
    "a negative resource quantity written as a number",
    { ...minimal, resources: { limits: { cpu: -1 } } },
    /spec\.resources\.limits\.cpu: Invalid value: -1: spec\.resources\.limits\.cpu in body should be greater than or equal to 0/,
  ],
];

describe("StepFunctionSource CRD (API server)", () => {
  let cluster: TestCluster;
  let ns: string;

  before(async function () {
    this.timeout(120_000);
    cluster = testCluster();
    await installCrd(cluster);
    ns = await createNamespace(cluster, "sfs-crd");
    // Discovery of a new CRD can lag Established for a fresh kubectl cache: the first create retries.
    await eventually("the first StepFunctionSource created", async () => {
      await apply(
        cluster,
        [source(ns, "minimal", minimal)],
        ["--server-side", "--field-manager=sfn-operator-tests"],
      );
      return true;
    });
  });

  it("can be installed again without change (idempotent)", async () => {
    const before = await getJson<{ metadata: { generation: number } }>(cluster, ["crd", SFS_CRD_NAME]);
    await installCrd(cluster);
    const after = await getJson<{ metadata: { generation: number } }>(cluster, ["crd", SFS_CRD_NAME]);
    expect(after?.metadata.generation).to.equal(before?.metadata.generation);
  });

  it("applies the defaults to a minimal object", async () => {
    const object = await getJson<{ spec: Record<string, unknown> }>(cluster, ["sfs", "minimal", "-n", ns]);
    expect(object?.spec).to.deep.equal({
      ...minimal,
      maxConcurrency: 1,
      concurrencyPerPoller: 1,
      requestTimeout: "5m",
      heartbeatInterval: "10s",
    });
  });

  it("accepts every field of the documented example and keeps affinity as given", async () => {
    const spec = {
      activityName: "sum",
      target: { service: "sum-svc", port: "http", path: "/step/sum", headers: [header("Authorization")] },
      maxConcurrency: 10,
      concurrencyPerPoller: 5,
      requestTimeout: "90s",
      heartbeatInterval: "30s",
      region: "us-east-1",
      serviceAccountName: "sum-poller",
      image: "example/sfn-operator:0.1.0",
      resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { cpu: 1, memory: "256Mi" } },
      nodeSelector: { "kubernetes.io/arch": "arm64" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "workers", effect: "NoSchedule" }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }],
          },
        },
      },
      podAnnotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/sum" },
      podLabels: { team: "payments" },
      redis: { url: "redis://other-redis:6379", passwordSecretRef: { name: "other-redis", key: "password" } },
    };
    const result = await cluster.kubectl(["create", "--validate=strict", "-f", "-", "-o", "json"], {
      input: JSON.stringify(source(ns, "full", spec)),
      allowFailure: true,
    });
    expect(result.code, result.stderr).to.equal(0);
    expect((JSON.parse(result.stdout) as { spec: unknown }).spec).to.deep.equal(spec);
  });

  describe(`refuses ${INVALID.length} invalid specs, each with a message naming the field and the rule`, () => {
    for (const [what, spec, message] of INVALID) {
      it(what, async () => {
        const result = await cluster.kubectl(
          ["create", "--dry-run=server", "--validate=strict", "-f", "-", "-o", "name"],
          { input: JSON.stringify(source(ns, "invalid", spec)), allowFailure: true },
        );
        expect(result.code, `accepted: ${result.stdout}`).to.not.equal(0);
        const said = result.stderr.trim();
        // The API server's words, not kubectl's: "is invalid" (validation) or "Error from server" (decoding).
        expect(said).to.match(/is invalid|Error from server/);
        expect(said).to.match(message);
      });
    }
  });

  it("explains its fields (kubectl explain)", async () => {
    const explained = await eventually("kubectl explain to know the kind", async () => {
      const result = await cluster.kubectl(["explain", "stepfunctionsource.spec.maxConcurrency"], {
        allowFailure: true,
      });
      return result.code === 0 ? result.stdout : undefined;
    });
    expect(explained).to.match(/FIELD:\s+maxConcurrency <integer>/);
    expect(explained).to.contain("Tasks in flight at once across ALL pollers");
    expect(explained).to.contain("Default: 1");
    const headers = await cluster.kubectl(["explain", "sfs.spec.target.headers.valueFrom.secretKeyRef"]);
    expect(headers.stdout).to.contain("The Secret key holding the header's value");
  });

  it("prints its columns with kubectl get sfs, figures from the status subresource", async () => {
    await cluster.kubectl([
      "patch",
      "sfs",
      "minimal",
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({
        status: {
          observedGeneration: 1,
          desiredPollers: 2,
          readyPollers: 1,
          pollers: "1/2",
          tasksInFlight: 3,
          tasksSucceeded: 120,
          tasksFailed: 4,
          lastTaskTime: "2026-11-30T01:02:03Z",
          conditions: [
            {
              type: "Ready",
              status: "False",
              reason: "PollersUnavailable",
              message: "1 of 2 pollers ready",
              lastTransitionTime: "2026-11-30T01:02:03Z",
              observedGeneration: 1,
            },
          ],
        },
      }),
    ]);
    const { stdout } = await cluster.kubectl(["get", "sfs", "minimal", "-n", ns]);
    const [head, row] = stdout.trim().split("\n");
    expect(head?.split(/\s+/)).to.deep.equal([
      "NAME",
      "ACTIVITY",
      "MAX",
      "POLLERS",
      "IN-FLIGHT",
      "SUCCEEDED",
      "FAILED",
      "READY",
      "AGE",
    ]);
    expect(row?.split(/\s+/).slice(0, 8)).to.deep.equal([
      "minimal",
      "sum",
      "1",
      "1/2",
      "3",
      "120",
      "4",
      "False",
    ]);
  });

  it("refuses a status that breaks the condition schema", async () => {
    const result = await cluster.kubectl(
      [
        "patch",
        "sfs",
        "minimal",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({
          status: {
            conditions: [
              { type: "Ready", status: "Maybe", reason: "x y", message: "", lastTransitionTime: "now" },
            ],
          },
        }),
      ],
      { allowFailure: true },
    );
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/status\.conditions\[0\]\.status: Unsupported value: "Maybe"/);
    expect(result.stderr).to.match(/status\.conditions\[0\]\.reason: Invalid value: "x y"/);
    expect(result.stderr).to.match(/status\.conditions\[0\]\.lastTransitionTime: Invalid value: "now"/);
  });
});
