/**
 * Kubernetes Events about StepFunctionSources (core/v1, which `kubectl describe` shows), recorded
 * only for transitions (reconcile decides which), without ever blocking or failing a reconcile: an
 * event that cannot be written is logged and dropped. A repeat of the same event for the same object
 * bumps its count, as client-go's recorder does, instead of making a new object.
 */
import { randomBytes } from "node:crypto";
import { type CoreV1Api, type CoreV1Event, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { StepFunctionSource } from "../api/step-function-source.ts";
import { describeError, getLogger } from "../observability/logger.ts";
import { withTimeout } from "./kube-call.ts";

const COMPONENT = "sfn-operator";
/** Repeats within this window bump the first event's count. */
const REPEAT_WINDOW_MS = 10 * 60_000;

export class EventRecorder {
  readonly #api: CoreV1Api;
  readonly #timeoutMs: number;
  readonly #instance: string;
  readonly #recent = new Map<string, { name: string; count: number; firstAt: number }>();
  readonly #log = getLogger("events");

  constructor(api: CoreV1Api, timeoutMs: number, instance: string) {
    this.#api = api;
    this.#timeoutMs = timeoutMs;
    this.#instance = instance;
  }

  record(source: StepFunctionSource, type: "Normal" | "Warning", reason: string, message: string): void {
    this.#write(source, type, reason, message).catch((error: unknown) => {
      this.#log.warn("could not record an event", {
        source: `${source.metadata?.namespace}/${source.metadata?.name}`,
        reason,
        error: describeError(error),
      });
    });
  }

  async #write(source: StepFunctionSource, type: string, reason: string, message: string): Promise<void> {
    const namespace = source.metadata?.namespace ?? "default";
    const now = new Date();
    // Events hold at most 1 KiB of message; ours are shorter, but a long AWS message must not fail it.
    const text = message.length > 1024 ? `${message.slice(0, 1021)}...` : message;
    const key = `${source.metadata?.uid}/${type}/${reason}/${text}`;
    this.#forgetOld(now.getTime());
    const recent = this.#recent.get(key);
    if (recent !== undefined) {
      recent.count += 1;
      await withTimeout(`update event ${namespace}/${recent.name}`, this.#timeoutMs, (options) =>
        this.#api.patchNamespacedEvent(
          { name: recent.name, namespace, body: { count: recent.count, lastTimestamp: now } },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch, options),
        ),
      );
      return;
    }
    const name = `${source.metadata?.name}.${randomBytes(8).toString("hex")}`;
    const event: CoreV1Event = {
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: source.apiVersion,
        kind: source.kind,
        name: source.metadata?.name ?? "",
        namespace,
        ...(source.metadata?.uid !== undefined && { uid: source.metadata.uid }),
        ...(source.metadata?.resourceVersion !== undefined && {
          resourceVersion: source.metadata.resourceVersion,
        }),
      },
      type,
      reason,
      message: text,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: COMPONENT },
      reportingComponent: `${COMPONENT}.dev/operator`,
      reportingInstance: this.#instance,
    };
    this.#recent.set(key, { name, count: 1, firstAt: now.getTime() });
    await withTimeout(`create event ${namespace}/${name}`, this.#timeoutMs, (options) =>
      this.#api.createNamespacedEvent({ namespace, body: event }, options),
    );
  }

  #forgetOld(now: number): void {
    for (const [key, entry] of this.#recent) {
      if (now - entry.firstAt > REPEAT_WINDOW_MS) this.#recent.delete(key);
    }
  }
}
