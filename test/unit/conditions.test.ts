import type { V1Deployment } from "@kubernetes/client-node";
import { expect } from "chai";
import { CONDITION_TYPES } from "../../src/api/step-function-source.ts";
import {
  type ConditionStates,
  changedConditions,
  conditionFalse,
  conditionTrue,
  conditionUnknown,
  mergeConditions,
  pollersCondition,
  readyCondition,
  rfc3339,
  type SourceCondition,
} from "../../src/operator/conditions.ts";

/** The Deployment controller's Progressing reasons: still rolling, done, or given up. */
type Progress = "ReplicaSetUpdated" | "NewReplicaSetAvailable" | "ProgressDeadlineExceeded";

function deployment(
  fields: {
    generation?: number;
    observedGeneration?: number;
    ready?: number;
    updated?: number;
    progress?: Progress;
  } = {},
): V1Deployment {
  return {
    metadata: { name: "sum-poller", namespace: "team-a", generation: fields.generation ?? 2 },
    spec: { selector: {}, template: {} },
    status: {
      observedGeneration: fields.observedGeneration ?? 2,
      ...(fields.ready !== undefined && { readyReplicas: fields.ready }),
      ...(fields.updated !== undefined && { updatedReplicas: fields.updated }),
      ...(fields.progress !== undefined && {
        conditions: [
          {
            type: "Progressing",
            status: fields.progress === "ProgressDeadlineExceeded" ? "False" : "True",
            reason: fields.progress,
          },
        ],
      }),
    },
  };
}

function allTrue(): ConditionStates {
  return {
    ActivityResolved: conditionTrue(
      "Resolved",
      "activity arn:aws:states:us-east-1:123456789012:activity:sum",
    ),
    TargetFound: conditionTrue("ServiceFound", "Service sum-svc port 8080"),
    PollersAvailable: conditionTrue("AllPollersReady", "2/2 pollers ready"),
    SemaphoreHealthy: conditionTrue("RedisReachable", "Redis answers"),
  };
}

const T0 = new Date("2026-11-30T01:02:03.456Z");
const T1 = new Date("2026-11-30T01:07:00.999Z");

describe("conditions", () => {
  describe("PollersAvailable", () => {
    it("is Unknown while the Deployment does not exist", () => {
      const state = pollersCondition(undefined, 2);
      expect(state.status).to.equal("Unknown");
      expect(state.reason).to.equal("DeploymentPending");
    });

    it("is True when every desired poller is ready and updated, and the Deployment is observed", () => {
      const state = pollersCondition(deployment({ ready: 3, updated: 3 }), 3);
      expect(state).to.deep.equal({
        status: "True",
        reason: "AllPollersReady",
        message: "3/3 pollers ready",
      });
    });

    it("is False while rolling out (not every pod updated yet)", () => {
      const state = pollersCondition(deployment({ ready: 2, updated: 1, progress: "ReplicaSetUpdated" }), 2);
      expect(state.status).to.equal("False");
      expect(state.reason).to.equal("PollersNotReady");
      expect(state.message).to.contain("2/2 pollers ready");
      expect(state.message).to.contain("rolling out");
    });

    it("is PollersStarting while the first pods start (a normal phase, not a warning)", () => {
      for (const progress of [undefined, "ReplicaSetUpdated"] as const) {
        const state = pollersCondition(
          deployment({ ready: 0, updated: 2, ...(progress && { progress }) }),
          2,
        );
        expect(state.status).to.equal("False");
        expect(state.reason).to.equal("PollersStarting");
        expect(state.message).to.contain("0/2 pollers ready");
      }
    });

    it("is False while some pollers are not ready, without saying it rolls out when it does not", () => {
      const state = pollersCondition(
        deployment({ ready: 1, updated: 3, progress: "NewReplicaSetAvailable" }),
        3,
      );
      expect(state.status).to.equal("False");
      expect(state.reason).to.equal("PollersNotReady");
      expect(state.message).to.match(/^1\/3 pollers ready:/);
      expect(state.message).to.not.contain("rolling out");
      expect(state.message).to.contain("kubectl describe deployment sum-poller");
    });

    it("is False with NoPollersReady when none is ready once the rollout ended or gave up, and tells where to look", () => {
      for (const progress of ["NewReplicaSetAvailable", "ProgressDeadlineExceeded"] as const) {
        for (const ready of [undefined, 0]) {
          const state = pollersCondition(
            deployment({ updated: 2, progress, ...(ready !== undefined && { ready }) }),
            2,
          );
          expect(state.status).to.equal("False");
          expect(state.reason).to.equal("NoPollersReady");
          expect(state.message).to.contain("0/2 pollers ready");
          expect(state.message).to.contain("kubectl describe deployment sum-poller");
        }
      }
    });

    it("is not True while the Deployment controller has not seen the latest generation", () => {
      // The old figures say all is well, but they describe the previous spec.
      const behind = pollersCondition(
        deployment({ generation: 5, observedGeneration: 4, ready: 2, updated: 2 }),
        2,
      );
      expect(behind.status).to.equal("False");
      expect(behind.reason).to.equal("PollersNotReady");
      expect(behind.message).to.contain("rolling out");
      // No status at all: never observed.
      const fresh: V1Deployment = {
        metadata: { name: "sum-poller", generation: 1 },
        spec: deployment().spec,
      };
      expect(pollersCondition(fresh, 1).status).to.equal("False");
      expect(pollersCondition(fresh, 1).reason).to.equal("PollersStarting");
      // Figures without an observedGeneration: not known to be about this generation.
      const unobserved: V1Deployment = { ...fresh, status: { readyReplicas: 1, updatedReplicas: 1 } };
      expect(pollersCondition(unobserved, 1).status).to.equal("False");
      // Caught up: True again.
      expect(
        pollersCondition(deployment({ generation: 5, observedGeneration: 5, ready: 2, updated: 2 }), 2)
          .status,
      ).to.equal("True");
    });

    it("counts a scale-up as not ready until the new pollers are", () => {
      const state = pollersCondition(deployment({ ready: 2, updated: 2 }), 4);
      expect(state.status).to.equal("False");
      expect(state.message).to.match(/^2\/4 pollers ready/);
    });
  });

  describe("Ready", () => {
    it("is True when every other condition is", () => {
      expect(readyCondition(allTrue())).to.deep.include({ status: "True", reason: "Ready" });
    });

    it("takes the first condition that is not True, in CONDITION_TYPES' order", () => {
      const states: ConditionStates = {
        ...allTrue(),
        TargetFound: conditionFalse("ServiceNotFound", "Service sum-svc not found in namespace team-a"),
        PollersAvailable: conditionUnknown(
          "Waiting",
          "no pollers until the activity and the target are found",
        ),
        SemaphoreHealthy: conditionFalse("RedisUnreachable", "cannot reach Redis"),
      };
      expect(readyCondition(states)).to.deep.equal({
        status: "False",
        reason: "ServiceNotFound",
        message: "TargetFound: Service sum-svc not found in namespace team-a",
      });
    });

    it("is Unknown when the first condition that is not True is Unknown", () => {
      const states: ConditionStates = {
        ...allTrue(),
        ActivityResolved: conditionUnknown("InvalidSpec", "spec.requestTimeout: too long"),
        TargetFound: conditionFalse("ServiceNotFound", "Service sum-svc not found"),
      };
      expect(readyCondition(states)).to.deep.equal({
        status: "Unknown",
        reason: "InvalidSpec",
        message: "ActivityResolved: spec.requestTimeout: too long",
      });
    });

    it("follows the order whichever single condition fails", () => {
      for (const type of CONDITION_TYPES) {
        if (type === "Ready") continue;
        const states: ConditionStates = { ...allTrue(), [type]: conditionFalse(`${type}Broken`, "broken") };
        expect(readyCondition(states)).to.deep.equal({
          status: "False",
          reason: `${type}Broken`,
          message: `${type}: broken`,
        });
      }
    });
  });

  describe("mergeConditions", () => {
    it("gives every type once, in CONDITION_TYPES' order, stamped with the generation and the time", () => {
      const merged = mergeConditions(undefined, allTrue(), 3, T0);
      expect(merged.map((condition) => condition.type)).to.deep.equal([...CONDITION_TYPES]);
      for (const condition of merged) {
        expect(condition.observedGeneration).to.equal(3);
        expect(condition.lastTransitionTime).to.equal("2026-11-30T01:02:03Z");
        expect(condition.reason).to.match(/^[A-Z][A-Za-z0-9]*$/);
      }
      expect(merged[0]).to.deep.equal({
        type: "Ready",
        status: "True",
        reason: "Ready",
        message: "the pollers are running and the semaphore is reachable",
        lastTransitionTime: "2026-11-30T01:02:03Z",
        observedGeneration: 3,
      });
    });

    it("keeps lastTransitionTime while a status stays, and sets it when the status changes", () => {
      const first = mergeConditions(undefined, allTrue(), 3, T0);
      const states: ConditionStates = {
        ...allTrue(),
        // Same status, other reason and message: no transition.
        PollersAvailable: conditionTrue("AllPollersReadyAfterScale", "4/4 pollers ready"),
        // Status changed: a transition.
        SemaphoreHealthy: conditionFalse("RedisUnreachable", "cannot reach Redis"),
      };
      const second = mergeConditions(first, states, 4, T1);
      const byType = new Map(second.map((condition) => [condition.type, condition]));
      expect(byType.get("ActivityResolved")?.lastTransitionTime).to.equal("2026-11-30T01:02:03Z");
      expect(byType.get("PollersAvailable")?.lastTransitionTime).to.equal("2026-11-30T01:02:03Z");
      expect(byType.get("PollersAvailable")?.message).to.equal("4/4 pollers ready");
      expect(byType.get("SemaphoreHealthy")?.lastTransitionTime).to.equal("2026-11-30T01:07:00Z");
      expect(byType.get("Ready")?.status).to.equal("False");
      expect(byType.get("Ready")?.lastTransitionTime).to.equal("2026-11-30T01:07:00Z");
      // The generation is the new one on every condition, changed or not.
      expect(second.map((condition) => condition.observedGeneration)).to.deep.equal([4, 4, 4, 4, 4]);
    });

    it("leaves observedGeneration out when the source has no generation", () => {
      for (const condition of mergeConditions(undefined, allTrue(), undefined, T0)) {
        expect(condition).to.not.have.property("observedGeneration");
      }
    });

    it("keeps its order whatever order the previous conditions were in, and drops unknown types", () => {
      const previous: SourceCondition[] = [
        ...mergeConditions(undefined, allTrue(), 1, T0).reverse(),
        {
          type: "Obsolete",
          status: "True",
          reason: "Old",
          message: "",
          lastTransitionTime: "2020-01-01T00:00:00Z",
        },
      ];
      const merged = mergeConditions(previous, allTrue(), 2, T1);
      expect(merged.map((condition) => condition.type)).to.deep.equal([...CONDITION_TYPES]);
      expect(merged.every((condition) => condition.lastTransitionTime === "2026-11-30T01:02:03Z")).to.equal(
        true,
      );
    });

    it("writes times in whole seconds", () => {
      expect(rfc3339(T0)).to.equal("2026-11-30T01:02:03Z");
      expect(rfc3339(new Date("2026-01-02T03:04:05.000Z"))).to.equal("2026-01-02T03:04:05Z");
    });
  });

  describe("changedConditions", () => {
    it("reports every condition that is not Unknown when there were none before", () => {
      const states: ConditionStates = {
        ...allTrue(),
        PollersAvailable: conditionUnknown("DeploymentPending", "the poller Deployment does not exist yet"),
      };
      const after = mergeConditions(undefined, states, 1, T0);
      expect(changedConditions(undefined, after).map((condition) => condition.type)).to.deep.equal([
        "ActivityResolved",
        "TargetFound",
        "SemaphoreHealthy",
      ]);
      expect(changedConditions([], after)).to.have.length(3);
    });

    it("reports a changed status or reason, and not a changed message alone", () => {
      const before = mergeConditions(undefined, allTrue(), 1, T0);
      const after = mergeConditions(
        before,
        {
          ActivityResolved: conditionTrue("Resolved", "another message"),
          TargetFound: conditionFalse("ServiceNotFound", "Service sum-svc not found"),
          PollersAvailable: conditionTrue("SomeOtherReason", "2/2 pollers ready"),
          SemaphoreHealthy: conditionTrue("RedisReachable", "Redis answers"),
        },
        2,
        T1,
      );
      expect(changedConditions(before, after).map((condition) => condition.type)).to.deep.equal([
        "Ready",
        "TargetFound",
        "PollersAvailable",
      ]);
    });

    it("reports nothing when nothing changed", () => {
      const before = mergeConditions(undefined, allTrue(), 1, T0);
      expect(changedConditions(before, mergeConditions(before, allTrue(), 2, T1))).to.deep.equal([]);
    });
  });
});
