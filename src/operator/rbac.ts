/**
 * The Kubernetes permissions the operator needs: the one list that its tests run with (a
 * ServiceAccount bound to exactly these rules) and the Helm chart renders, so that a missing rule
 * fails a test here rather than in a user's cluster.
 *
 * `where` says which namespaces a rule is for: `watched` rules are granted cluster-wide (ClusterRole)
 * when the operator serves every namespace, else as a Role in each watched namespace; `own` rules are
 * granted in the operator's own namespace only.
 */
import type { V1PolicyRule } from "@kubernetes/client-node";

export interface OperatorRule extends V1PolicyRule {
  where: "watched" | "own";
  /** Why the operator needs it (rendered as a comment by the chart). */
  why: string;
}

export const OPERATOR_RULES: readonly OperatorRule[] = [
  {
    where: "watched",
    apiGroups: ["sfn-operator.dev"],
    resources: ["stepfunctionsources"],
    verbs: ["get", "list", "watch", "patch"],
    why: "watch the sources; patch adds and removes the cleanup finalizer",
  },
  {
    where: "watched",
    apiGroups: ["sfn-operator.dev"],
    resources: ["stepfunctionsources/status"],
    verbs: ["patch"],
    why: "write the status",
  },
  {
    where: "watched",
    apiGroups: ["sfn-operator.dev"],
    resources: ["stepfunctionsources/finalizers"],
    verbs: ["update"],
    why: "owner references with blockOwnerDeletion on the Deployments (OwnerReferencesPermissionEnforcement)",
  },
  {
    where: "watched",
    apiGroups: ["apps"],
    resources: ["deployments"],
    verbs: ["get", "list", "watch", "create", "patch"],
    why: "keep the poller Deployments (server-side apply); garbage collection deletes them",
  },
  {
    where: "watched",
    apiGroups: [""],
    resources: ["services"],
    verbs: ["get", "list", "watch"],
    why: "check that each target Service exists and has the port; a fixed Service heals at once",
  },
  {
    where: "watched",
    apiGroups: [""],
    resources: ["secrets"],
    verbs: ["get"],
    why: "read the password of a source's own Redis (spec.redis.passwordSecretRef); nothing else",
  },
  {
    where: "watched",
    apiGroups: [""],
    resources: ["events"],
    verbs: ["create", "patch"],
    why: "events about sources (an event lives in its object's namespace)",
  },
  {
    where: "own",
    apiGroups: ["coordination.k8s.io"],
    resources: ["leases"],
    verbs: ["get", "create", "update"],
    why: "leader election",
  },
];

/** The rules of one kind, as a Role's or ClusterRole's `rules` (without the documentation fields). */
export function policyRules(where: OperatorRule["where"]): V1PolicyRule[] {
  return OPERATOR_RULES.filter((rule) => rule.where === where).map(({ apiGroups, resources, verbs }) => ({
    apiGroups: [...(apiGroups ?? [])],
    resources: [...(resources ?? [])],
    verbs: [...verbs],
  }));
}

/**
 * Role/ClusterRole and bindings granting OPERATOR_RULES to a ServiceAccount: what the chart renders
 * and what the tests apply. `watchNamespaces` empty means every namespace.
 */
export function rbacObjects(options: {
  name: string;
  namespace: string;
  serviceAccount: string;
  watchNamespaces: readonly string[];
}): object[] {
  const subject = { kind: "ServiceAccount", name: options.serviceAccount, namespace: options.namespace };
  const objects: object[] = [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: options.name, namespace: options.namespace },
      rules: policyRules("own"),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: options.name, namespace: options.namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: options.name },
      subjects: [subject],
    },
  ];
  if (options.watchNamespaces.length === 0) {
    objects.push(
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: options.name },
        rules: policyRules("watched"),
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: options.name },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: options.name },
        subjects: [subject],
      },
    );
  } else {
    for (const namespace of options.watchNamespaces) {
      objects.push(
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "Role",
          metadata: { name: `${options.name}-sources`, namespace },
          rules: policyRules("watched"),
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: `${options.name}-sources`, namespace },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${options.name}-sources` },
          subjects: [subject],
        },
      );
    }
  }
  return objects;
}
