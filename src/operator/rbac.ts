/**
 * The Kubernetes permissions the operator needs: the one list that its tests run with (a
 * ServiceAccount bound to exactly these rules) and the Helm chart renders, so that a missing rule
 * fails a test here rather than in a user's cluster.
 *
 * `where` says which namespaces a rule is for: `watched` rules are granted cluster-wide (ClusterRole)
 * when the operator serves every namespace, else as a Role in each watched namespace; `own` rules are
 * granted in the operator's own namespace only.
 *
 * `optIn` marks a rule only some installations need, granted only when asked for (the chart's
 * `rbac.<optIn>` value): reading Secrets cluster-wide is not something every operator should hold
 * for a feature (a source's own Redis with a password) most installations never use.
 */
import type { V1PolicyRule } from "@kubernetes/client-node";

/** The opt-in rules' names (the chart's `rbac.<name>` values). */
export type OptInRule = "sourceRedisSecrets";

export interface OperatorRule extends V1PolicyRule {
  where: "watched" | "own";
  optIn?: OptInRule;
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
    optIn: "sourceRedisSecrets",
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

/**
 * The rules of one kind, as a Role's or ClusterRole's `rules` (without the documentation fields), with
 * the opt-in rules named in `optIn`.
 */
export function policyRules(where: OperatorRule["where"], optIn: readonly OptInRule[] = []): V1PolicyRule[] {
  return OPERATOR_RULES.filter(
    (rule) => rule.where === where && (rule.optIn === undefined || optIn.includes(rule.optIn)),
  ).map(({ apiGroups, resources, verbs }) => ({
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
  /** Opt-in rules to grant too (none by default, as the chart). */
  optIn?: readonly OptInRule[];
}): object[] {
  const optIn = options.optIn ?? [];
  const subject = { kind: "ServiceAccount", name: options.serviceAccount, namespace: options.namespace };
  const objects: object[] = [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: options.name, namespace: options.namespace },
      rules: policyRules("own", optIn),
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
        rules: policyRules("watched", optIn),
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
          rules: policyRules("watched", optIn),
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
