import { expect } from "chai";
import { isSubset } from "../../src/operator/subset.ts";

describe("isSubset", () => {
  it("matches equal scalars and refuses different ones", () => {
    expect(isSubset("a", "a")).to.equal(true);
    expect(isSubset(1, 1)).to.equal(true);
    expect(isSubset(true, true)).to.equal(true);
    expect(isSubset(null, null)).to.equal(true);
    expect(isSubset("a", "b")).to.equal(false);
    expect(isSubset(1, 2)).to.equal(false);
    expect(isSubset(true, false)).to.equal(false);
    expect(isSubset(false, undefined)).to.equal(false);
    expect(isSubset(0, undefined)).to.equal(false);
    expect(isSubset("a", undefined)).to.equal(false);
    expect(isSubset("a", null)).to.equal(false);
  });

  it("ignores fields only actual has (defaults the API server filled in)", () => {
    const wanted = {
      spec: { replicas: 2, template: { spec: { containers: [{ name: "poller", image: "i" }] } } },
    };
    const actual = {
      metadata: { resourceVersion: "42", managedFields: [{ manager: "kube-controller-manager" }] },
      spec: {
        replicas: 2,
        progressDeadlineSeconds: 600,
        template: {
          spec: {
            dnsPolicy: "ClusterFirst",
            containers: [{ name: "poller", image: "i", terminationMessagePath: "/dev/termination-log" }],
          },
        },
      },
      status: { readyReplicas: 2 },
    };
    expect(isSubset(wanted, actual)).to.equal(true);
    expect(isSubset(actual, wanted)).to.equal(false);
  });

  it("sees a changed value at any depth", () => {
    const wanted = { a: { b: { c: [{ d: { e: "x" } }] } } };
    expect(isSubset(wanted, { a: { b: { c: [{ d: { e: "x", f: 1 } }] } } })).to.equal(true);
    expect(isSubset(wanted, { a: { b: { c: [{ d: { e: "y" } }] } } })).to.equal(false);
    expect(isSubset(wanted, { a: { b: { c: [{ d: {} }] } } })).to.equal(false);
    expect(isSubset(wanted, { a: { b: {} } })).to.equal(false);
    expect(isSubset(wanted, { a: "b" })).to.equal(false);
  });

  it("compares lists by length and element by element, in order", () => {
    const env = [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ];
    expect(isSubset(env, [...env])).to.equal(true);
    // An element may have more fields than wanted (defaults), but the list no more elements.
    expect(
      isSubset(env, [
        { name: "A", value: "1" },
        { name: "B", value: "2", extra: true },
      ]),
    ).to.equal(true);
    expect(isSubset(env, [...env, { name: "ADDED_BY_HAND", value: "3" }])).to.equal(false);
    expect(isSubset(env, [env[0]])).to.equal(false);
    expect(isSubset(env, [env[1], env[0]])).to.equal(false);
    expect(isSubset(["a"], ["a", "b"])).to.equal(false);
    expect(isSubset(["a", "b"], ["a"])).to.equal(false);
  });

  it("does not take a list for a map or a map for a list", () => {
    expect(isSubset([], {})).to.equal(false);
    expect(isSubset({}, [])).to.equal(false);
    expect(isSubset({ 0: "a" }, ["a"])).to.equal(false);
    expect(isSubset(["a"], { 0: "a" })).to.equal(false);
    expect(isSubset({ a: 1 }, "a")).to.equal(false);
    expect(isSubset({ a: 1 }, null)).to.equal(false);
  });

  it("matches a wanted number the API server returns as a string, and nothing else across types", () => {
    // int-or-string and quantities: 8080 may come back as "8080", 1 (cpu) as "1".
    expect(isSubset(8080, "8080")).to.equal(true);
    expect(isSubset({ port: 8080 }, { port: "8080" })).to.equal(true);
    expect(isSubset({ requests: { cpu: 1 } }, { requests: { cpu: "1" } })).to.equal(true);
    expect(isSubset(8080, "8081")).to.equal(false);
    expect(isSubset(1, "1.0")).to.equal(false);
    expect(isSubset(1, "01")).to.equal(false);
    // A wanted string is a string: "1" set in an env value is not the number 1.
    expect(isSubset("8080", 8080)).to.equal(false);
    expect(isSubset(1, true)).to.equal(false);
    expect(isSubset(0, false)).to.equal(false);
    expect(isSubset(0, "")).to.equal(false);
  });

  it("treats undefined in wanted as no wish at all", () => {
    expect(isSubset(undefined, "anything")).to.equal(true);
    expect(isSubset(undefined, undefined)).to.equal(true);
    expect(isSubset({ a: undefined, b: 1 }, { b: 1 })).to.equal(true);
    expect(isSubset({ a: undefined, b: 1 }, { a: "set", b: 1 })).to.equal(true);
    expect(isSubset({ a: { b: undefined } }, { a: {} })).to.equal(true);
    // ...but inside a list an undefined element still takes a place.
    expect(isSubset([undefined], [])).to.equal(false);
  });

  it("matches a wanted empty list, map, string or null with an absent field (the API server drops them)", () => {
    const wanted = {
      spec: {
        nodeSelector: {},
        tolerations: [],
        affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
        containers: [{ name: "poller", args: [], env: [{ name: "A", value: "" }] }],
        priorityClassName: null,
      },
    };
    const returned = {
      spec: { affinity: { nodeAffinity: {} }, containers: [{ name: "poller", env: [{ name: "A" }] }] },
    };
    expect(isSubset(wanted, returned)).to.equal(true);
    // Empty is not absent when the field is there with something in it.
    expect(isSubset({ tolerations: [] }, { tolerations: [{ key: "k" }] })).to.equal(false);
    expect(isSubset({ nodeSelector: {} }, { nodeSelector: { pool: "x" } })).to.equal(true);
    expect(isSubset({ value: "" }, { value: "x" })).to.equal(false);
    expect(isSubset({ value: null }, { value: "x" })).to.equal(false);
    // Something that is not empty is a difference from nothing.
    expect(isSubset({ tolerations: [{ key: "k" }] }, {})).to.equal(false);
    expect(isSubset({ nodeSelector: { pool: "x" } }, {})).to.equal(false);
    expect(isSubset({ affinity: { nodeAffinity: {} } }, {})).to.equal(false);
  });

  it("matches quantities in the API server's canonical form by value", () => {
    const resources = (requests: Record<string, unknown>, limits: Record<string, unknown> = {}) => ({
      spec: { containers: [{ name: "poller", resources: { requests, limits } }] },
    });
    const pairs: Array<[unknown, string]> = [
      ["0.5", "500m"],
      [0.5, "500m"],
      [".5", "500m"],
      ["1000m", "1"],
      [1, "1"],
      ["1024Mi", "1Gi"],
      ["1.5Gi", "1536Mi"],
      ["0.5Gi", "512Mi"],
      ["1e3", "1k"],
      ["1000", "1k"],
      ["100M", "100M"],
      ["128974848", "128974848"],
    ];
    for (const [sent, returned] of pairs) {
      expect(
        isSubset(resources({ cpu: sent }), resources({ cpu: returned })),
        `${sent} ~ ${returned}`,
      ).to.equal(true);
      expect(isSubset(resources({}, { memory: sent }), resources({}, { memory: returned }))).to.equal(true);
    }
    for (const [sent, returned] of [
      ["0.5", "501m"],
      ["1Gi", "1G"],
      ["1Ki", "1k"],
      ["100m", "100"],
      ["1", "lots"],
    ] as const) {
      expect(
        isSubset(resources({ cpu: sent }), resources({ cpu: returned })),
        `${sent} vs ${returned}`,
      ).to.equal(false);
    }
    expect(isSubset({ emptyDir: { sizeLimit: "0.0625Gi" } }, { emptyDir: { sizeLimit: "64Mi" } })).to.equal(
      true,
    );
    expect(isSubset({ emptyDir: { sizeLimit: "64Mi" } }, { emptyDir: { sizeLimit: "65Mi" } })).to.equal(
      false,
    );
    // Only where quantities live: an environment value "1" is not "1000m".
    expect(isSubset({ env: [{ name: "A", value: "1" }] }, { env: [{ name: "A", value: "1000m" }] })).to.equal(
      false,
    );
    expect(isSubset({ value: "0.5" }, { value: "500m" })).to.equal(false);
  });

  it("compares a status both ways, as reconcile does, to find any change", () => {
    const same = (a: object, b: object): boolean => isSubset(a, b) && isSubset(b, a);
    const status = {
      observedGeneration: 2,
      pollers: "1/1",
      conditions: [{ type: "Ready", status: "True", reason: "Ready", message: "ok" }],
    };
    expect(same(status, structuredClone(status))).to.equal(true);
    expect(same(status, { ...status, observedGeneration: 3 })).to.equal(false);
    expect(same(status, { ...status, tasksInFlight: 1 })).to.equal(false);
    const { pollers: _, ...withoutPollers } = status;
    expect(same(status, withoutPollers)).to.equal(false);
    expect(same(status, {})).to.equal(false);
  });
});
