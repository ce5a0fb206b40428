import { HttpMethod, RequestContext } from "@kubernetes/client-node";
import { expect } from "chai";
import { PooledKubeConfig } from "../../src/operator/kube-config.ts";

// Any CA data makes client-node build a TLS dispatcher (nothing connects in these tests).
const CA = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").toString("base64");

function kubeConfig(): PooledKubeConfig {
  const config = new PooledKubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:6443", caData: CA }],
    users: [
      { name: "a", token: "token-a" },
      { name: "b", token: "token-b" },
    ],
    contexts: [
      { name: "as-a", cluster: "c", user: "a" },
      { name: "as-b", cluster: "c", user: "b" },
    ],
    currentContext: "as-a",
  });
  return config;
}

async function call(config: PooledKubeConfig): Promise<RequestContext> {
  const context = new RequestContext("https://127.0.0.1:6443/api", HttpMethod.GET);
  await config.applySecurityAuthentication(context);
  return context;
}

describe("PooledKubeConfig", () => {
  it("gives every call of a cluster and user the same dispatcher, with the call's own headers", async () => {
    const config = kubeConfig();
    const one = await call(config);
    const two = await call(config);
    expect(one.getDispatcher()).to.not.equal(undefined);
    expect(two.getDispatcher()).to.equal(one.getDispatcher());
    expect(two.getHeaders().Authorization).to.equal("Bearer token-a");
    expect(config.dispatcherCount).to.equal(1);
    await config.close();
  });

  it("keeps another dispatcher for another user", async () => {
    const config = kubeConfig();
    const a = await call(config);
    config.setCurrentContext("as-b");
    const b = await call(config);
    expect(b.getDispatcher()).to.not.equal(a.getDispatcher());
    expect(b.getHeaders().Authorization).to.equal("Bearer token-b");
    expect(config.dispatcherCount).to.equal(2);
    await config.close();
    expect(config.dispatcherCount).to.equal(0);
  });
});
