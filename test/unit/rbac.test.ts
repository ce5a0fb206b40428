import type { V1PolicyRule } from "@kubernetes/client-node";
import { expect } from "chai";
import { OPERATOR_RULES, type OptInRule, policyRules, rbacObjects } from "../../src/operator/rbac.ts";

const RBAC = "rbac.authorization.k8s.io/v1";

interface RbacObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: V1PolicyRule[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: Array<{ kind: string; name: string; namespace: string }>;
}

/** The RBAC objects, with every opt-in rule unless `optIn` says otherwise. */
function objects(
  watchNamespaces: readonly string[],
  optIn: readonly OptInRule[] = ["sourceRedisSecrets"],
): RbacObject[] {
  return rbacObjects({
    name: "sfn-operator",
    namespace: "sfn-system",
    serviceAccount: "sfn-operator",
    watchNamespaces,
    optIn,
  }) as RbacObject[];
}

/**
 * Whether `objects` let the operator's ServiceAccount do `verb` on `resource` of `group` in
 * `namespace` (undefined: across all namespaces, as a cluster-wide list or watch), the way the
 * API server's RBAC authorizer decides it.
 */
function allowed(
  all: readonly RbacObject[],
  group: string,
  resource: string,
  verb: string,
  namespace: string | undefined,
): boolean {
  const bound = (kind: string, name: string, bindingNamespace: string | undefined): boolean =>
    all.some(
      (binding) =>
        binding.kind === (kind === "ClusterRole" ? "ClusterRoleBinding" : "RoleBinding") &&
        binding.metadata.namespace === bindingNamespace &&
        binding.roleRef?.kind === kind &&
        binding.roleRef.name === name &&
        (binding.subjects ?? []).some(
          (subject) =>
            subject.kind === "ServiceAccount" &&
            subject.name === "sfn-operator" &&
            subject.namespace === "sfn-system",
        ),
    );
  const grants = (rule: V1PolicyRule): boolean =>
    (rule.apiGroups ?? []).includes(group) &&
    (rule.resources ?? []).includes(resource) &&
    rule.verbs.includes(verb);
  return all.some((role) => {
    if (!(role.rules ?? []).some(grants)) return false;
    if (role.kind === "ClusterRole") return bound("ClusterRole", role.metadata.name, undefined);
    return (
      role.kind === "Role" &&
      namespace !== undefined &&
      role.metadata.namespace === namespace &&
      bound("Role", role.metadata.name, namespace)
    );
  });
}

/** What the operator's calls need (src/operator/kube.ts, events.ts, leader-election.ts, the informers). */
const NEEDED_IN_WATCHED: Array<[group: string, resource: string, verbs: string[]]> = [
  ["sfn-operator.dev", "stepfunctionsources", ["get", "list", "watch", "patch"]],
  ["sfn-operator.dev", "stepfunctionsources/status", ["patch"]],
  ["sfn-operator.dev", "stepfunctionsources/finalizers", ["update"]],
  ["apps", "deployments", ["get", "list", "watch", "create", "patch"]],
  ["", "services", ["get", "list", "watch"]],
  ["", "events", ["create", "patch"]],
  ["", "secrets", ["get"]],
];
const NEEDED_IN_OWN: Array<[group: string, resource: string, verbs: string[]]> = [
  ["coordination.k8s.io", "leases", ["get", "create", "update"]],
];

function rulesOf(all: readonly RbacObject[]): V1PolicyRule[] {
  return all.flatMap((object) => object.rules ?? []);
}

describe("RBAC", () => {
  describe("serving every namespace", () => {
    const all = objects([]);

    it("is a Role and RoleBinding in the own namespace and a ClusterRole and ClusterRoleBinding", () => {
      expect(
        all.map((object) => `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`),
      ).to.deep.equal([
        "Role/sfn-system/sfn-operator",
        "RoleBinding/sfn-system/sfn-operator",
        "ClusterRole//sfn-operator",
        "ClusterRoleBinding//sfn-operator",
      ]);
      for (const object of all) expect(object.apiVersion).to.equal(RBAC);
      for (const binding of all.filter((object) => object.kind.endsWith("Binding"))) {
        expect(binding.subjects).to.deep.equal([
          { kind: "ServiceAccount", name: "sfn-operator", namespace: "sfn-system" },
        ]);
        expect(binding.roleRef?.apiGroup).to.equal("rbac.authorization.k8s.io");
        expect(binding.roleRef?.kind).to.equal(binding.kind.replace("Binding", ""));
        expect(binding.roleRef?.name).to.equal(binding.metadata.name);
      }
    });

    it("grants what the operator's calls need, in every namespace", () => {
      for (const namespace of ["team-a", "sfn-system", undefined]) {
        for (const [group, resource, verbs] of NEEDED_IN_WATCHED) {
          for (const verb of verbs) {
            expect(
              allowed(all, group, resource, verb, namespace),
              `${verb} ${group}/${resource} in ${namespace}`,
            ).to.equal(true);
          }
        }
      }
      for (const [group, resource, verbs] of NEEDED_IN_OWN) {
        for (const verb of verbs) expect(allowed(all, group, resource, verb, "sfn-system")).to.equal(true);
      }
    });

    it("grants leases only in its own namespace", () => {
      for (const verb of ["get", "create", "update"]) {
        expect(allowed(all, "coordination.k8s.io", "leases", verb, "team-a")).to.equal(false);
        expect(allowed(all, "coordination.k8s.io", "leases", verb, undefined)).to.equal(false);
      }
      const clusterRole = all.find((object) => object.kind === "ClusterRole");
      expect(JSON.stringify(clusterRole?.rules)).to.not.contain("lease");
      expect(JSON.stringify(clusterRole?.rules)).to.not.contain("coordination.k8s.io");
    });
  });

  describe("the opt-in rule for Secrets (spec.redis.passwordSecretRef)", () => {
    it("is not granted unless asked for, in any namespace", () => {
      for (const watchNamespaces of [[], ["team-a"]]) {
        const granted = objects(watchNamespaces, []);
        for (const namespace of ["team-a", "sfn-system", undefined]) {
          expect(
            allowed(granted, "", "secrets", "get", namespace),
            `${watchNamespaces} ${namespace}`,
          ).to.equal(false);
        }
        expect(JSON.stringify(granted)).to.not.contain("secrets");
      }
    });

    it("is granted where the sources are when asked for", () => {
      expect(allowed(objects([]), "", "secrets", "get", "team-a")).to.equal(true);
      expect(allowed(objects(["team-a"]), "", "secrets", "get", "team-a")).to.equal(true);
      expect(allowed(objects(["team-a"]), "", "secrets", "get", "team-b")).to.equal(false);
      expect(
        OPERATOR_RULES.filter((rule) => rule.optIn !== undefined).map((rule) => rule.resources),
      ).to.deep.equal([["secrets"]]);
    });
  });

  describe("serving a list of namespaces", () => {
    const all = objects(["team-a", "team-b"]);

    it("is a Role per namespace, and no cluster-wide grant", () => {
      expect(
        all.map((object) => `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`),
      ).to.deep.equal([
        "Role/sfn-system/sfn-operator",
        "RoleBinding/sfn-system/sfn-operator",
        "Role/team-a/sfn-operator-sources",
        "RoleBinding/team-a/sfn-operator-sources",
        "Role/team-b/sfn-operator-sources",
        "RoleBinding/team-b/sfn-operator-sources",
      ]);
      expect(all.some((object) => object.kind.startsWith("Cluster"))).to.equal(false);
      for (const role of all.filter(
        (object) => object.metadata.name === "sfn-operator-sources" && object.kind === "Role",
      )) {
        expect(role.rules).to.deep.equal(policyRules("watched", ["sourceRedisSecrets"]));
      }
    });

    it("grants what the calls need in the listed namespaces only", () => {
      for (const [group, resource, verbs] of NEEDED_IN_WATCHED) {
        for (const verb of verbs) {
          for (const namespace of ["team-a", "team-b"]) {
            expect(
              allowed(all, group, resource, verb, namespace),
              `${verb} ${resource} in ${namespace}`,
            ).to.equal(true);
          }
          for (const namespace of ["team-c", "sfn-system", undefined]) {
            expect(
              allowed(all, group, resource, verb, namespace),
              `${verb} ${resource} in ${namespace}`,
            ).to.equal(false);
          }
        }
      }
      for (const verb of ["get", "create", "update"]) {
        expect(allowed(all, "coordination.k8s.io", "leases", verb, "sfn-system")).to.equal(true);
        expect(allowed(all, "coordination.k8s.io", "leases", verb, "team-a")).to.equal(false);
      }
    });

    it("keeps the own namespace's two Roles apart when it is also served", () => {
      const both = objects(["sfn-system"]);
      const names = both.map(
        (object) => `${object.kind}/${object.metadata.namespace}/${object.metadata.name}`,
      );
      expect(new Set(names).size).to.equal(names.length);
      expect(allowed(both, "coordination.k8s.io", "leases", "update", "sfn-system")).to.equal(true);
      expect(allowed(both, "sfn-operator.dev", "stepfunctionsources", "watch", "sfn-system")).to.equal(true);
    });
  });

  describe("the rules", () => {
    const everyRule = [...rulesOf(objects([])), ...rulesOf(objects(["team-a"])), ...OPERATOR_RULES];

    it("never grant '*'", () => {
      for (const rule of everyRule) {
        for (const value of [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs]) {
          expect(value, JSON.stringify(rule)).to.not.contain("*");
        }
        expect(rule.nonResourceURLs ?? []).to.deep.equal([]);
      }
    });

    it("never let the operator list or watch Secrets, or change them", () => {
      for (const rule of everyRule) {
        if (!(rule.resources ?? []).some((resource) => resource.startsWith("secrets"))) continue;
        expect(rule.verbs).to.deep.equal(["get"]);
        expect(rule.resources).to.deep.equal(["secrets"]);
      }
      for (const namespaces of [[], ["team-a"]]) {
        const all = objects(namespaces);
        for (const verb of ["list", "watch", "create", "update", "patch", "delete"]) {
          for (const namespace of ["team-a", "sfn-system", undefined]) {
            expect(allowed(all, "", "secrets", verb, namespace), `${verb} secrets`).to.equal(false);
          }
        }
      }
    });

    it("never delete anything (garbage collection deletes the Deployments)", () => {
      for (const rule of everyRule) {
        expect(rule.verbs).to.not.include("delete");
        expect(rule.verbs).to.not.include("deletecollection");
      }
    });

    it("say why, and render without the documentation fields", () => {
      for (const rule of OPERATOR_RULES) expect(rule.why.length, JSON.stringify(rule)).to.be.greaterThan(5);
      for (const rule of rulesOf(objects([]))) {
        expect(Object.keys(rule).sort()).to.deep.equal(["apiGroups", "resources", "verbs"]);
      }
    });

    it("are copies: changing rendered rules leaves OPERATOR_RULES alone", () => {
      const before = JSON.stringify(OPERATOR_RULES);
      const rendered = policyRules("watched");
      rendered[0]?.verbs.push("delete");
      rendered[0]?.resources?.push("secrets");
      expect(JSON.stringify(OPERATOR_RULES)).to.equal(before);
      expect(policyRules("watched")[0]?.verbs).to.not.include("delete");
    });
  });
});
