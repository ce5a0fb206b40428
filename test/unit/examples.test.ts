/**
 * The committed examples (examples/, which the README walks through and the e2e test applies): each
 * source is valid as the operator reads it, targets a Service of the same file by a port it has, and
 * runs the image of this version; the seed's split and sum keep their concurrency.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect } from "chai";
import YAML from "yaml";
import { parseSourceSpec } from "../../src/api/step-function-source.ts";
import { pollerReplicas } from "../../src/operator/poller-deployment.ts";
import { REPO_ROOT } from "../support/cli.ts";

interface ExampleObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

const EXAMPLES = path.join(REPO_ROOT, "examples");
const VERSION = (
  JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }
).version;

function objectsOf(file: string): ExampleObject[] {
  return YAML.parseAllDocuments(readFileSync(path.join(EXAMPLES, file), "utf8")).map(
    (document) => document.toJS() as ExampleObject,
  );
}

describe("examples/", () => {
  const files = readdirSync(EXAMPLES).filter((file) => file.endsWith(".yaml"));

  it("has the seed's two activities, split and sum", () => {
    expect(files.sort()).to.deep.equal(["split.yaml", "sum.yaml"]);
  });

  for (const file of files) {
    describe(file, () => {
      const objects = objectsOf(file);
      const kinds = objects.map((object) => object.kind).sort();
      const one = (kind: string): ExampleObject =>
        objects.find((object) => object.kind === kind) ?? {
          apiVersion: "",
          kind,
          metadata: { name: "" },
          spec: {},
        };
      const source = one("StepFunctionSource");
      const service = one("Service");
      const deployment = one("Deployment");

      it("holds a source, its target Service and a Deployment behind it, namespaced by kubectl -n", () => {
        expect(kinds).to.deep.equal(["Deployment", "Service", "StepFunctionSource"]);
        expect(source.apiVersion).to.equal("sfn-operator.dev/v1alpha1");
        for (const object of objects)
          expect(object.metadata.namespace, object.metadata.name).to.equal(undefined);
      });

      it("has a source the operator accepts, aimed at the Service's named port", () => {
        const parsed = parseSourceSpec(source.spec);
        expect(parsed.ok, JSON.stringify(parsed)).to.equal(true);
        const target = source.spec.target as { service: string; port: string };
        expect(target.service).to.equal(service.metadata.name);
        const ports = (service.spec.ports as Array<{ name: string }>).map((port) => port.name);
        expect(ports).to.include(target.port);
        const selector = (service.spec.selector ?? {}) as Record<string, string>;
        const podLabels = (deployment.spec.template as { metadata: { labels: Record<string, string> } })
          .metadata.labels;
        expect(podLabels).to.include(selector);
      });

      it("runs the sample service of this version's image", () => {
        const containers = (
          deployment.spec.template as { spec: { containers: Array<{ image: string; args: string[] }> } }
        ).spec.containers;
        expect(containers[0]?.image).to.equal(`ghcr.io/sfn-operator/sfn-operator:${VERSION}`);
        expect(containers[0]?.args[0]).to.equal("sample-service");
      });
    });
  }

  it("keeps the seed's concurrency: split one at a time (1 poller), sum 10 at 5 per poller (2 pollers)", () => {
    const spec = (file: string) => {
      const parsed = parseSourceSpec(
        objectsOf(file).find((object) => object.kind === "StepFunctionSource")?.spec,
      );
      if (!parsed.ok) throw new Error(`${file}: invalid`);
      return parsed.value;
    };
    expect(spec("split.yaml")).to.include({
      activityName: "split",
      maxConcurrency: 1,
      concurrencyPerPoller: 1,
    });
    expect(pollerReplicas(spec("split.yaml"))).to.equal(1);
    expect(spec("sum.yaml")).to.include({ activityName: "sum", maxConcurrency: 10, concurrencyPerPoller: 5 });
    expect(pollerReplicas(spec("sum.yaml"))).to.equal(2);
  });
});
