/**
 * How the informer describes a failed list or watch in its logs, and its synced metric
 * (src/operator/informer.ts).
 */
import { ApiException, KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { expect } from "chai";
import { Registry } from "prom-client";
import { ControllerMetrics } from "../../src/operator/controller-metrics.ts";
import { ResilientInformer } from "../../src/operator/informer.ts";
import { describeApiError } from "../../src/operator/kube-call.ts";

describe("describeApiError", () => {
  const status = {
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    message:
      'deployments.apps is forbidden: User "system:serviceaccount:ops:sfn-operator" cannot list resource "deployments" in API group "apps" in the namespace "team-a"',
    reason: "Forbidden",
    code: 403,
  };

  it("names what is forbidden when the body is JSON text (client-node's unknown codes, 403 among them)", () => {
    const error = new ApiException(403, "Unknown API Status Code!", JSON.stringify(status), {});
    expect(describeApiError(error)).to.equal(`HTTP 403: ${status.message}`);
  });

  it("reads a parsed Status body too, and a body that is neither gives the code alone", () => {
    expect(describeApiError(new ApiException(403, "Forbidden", status, {}))).to.equal(
      `HTTP 403: ${status.message}`,
    );
    expect(describeApiError(new ApiException(502, "Bad Gateway", "<html>bad gateway</html>", {}))).to.equal(
      "HTTP 502",
    );
    expect(describeApiError(new ApiException(500, "oops", undefined, {}))).to.equal("HTTP 500");
  });

  it("describes a watch's error (a status code on an Error) and a network error", () => {
    const watch = Object.assign(new Error("Forbidden"), { statusCode: 403 });
    expect(describeApiError(watch)).to.equal("HTTP 403 Forbidden");
    const network = new TypeError("fetch failed", {
      cause: new Error("connect ECONNREFUSED 127.0.0.1:6443"),
    });
    expect(describeApiError(network)).to.equal(
      "TypeError: fetch failed: connect ECONNREFUSED 127.0.0.1:6443",
    );
  });
});

describe("ResilientInformer metrics", () => {
  it("reports an informer as not synced (0) from its creation, before any list", async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromClusterAndUser(
      { name: "none", server: "https://127.0.0.1:1", skipTLSVerify: false },
      { name: "none" },
    );
    new ResilientInformer<KubernetesObject>({
      name: "deployments",
      kubeConfig,
      watchPath: "/apis/apps/v1/deployments",
      list: () => Promise.reject(new Error("never called: the informer is not started")),
      metrics,
    });
    expect(await registry.getSingleMetricAsString("sfn_operator_informer_synced")).to.contain(
      'sfn_operator_informer_synced{informer="deployments"} 0',
    );
  });
});
