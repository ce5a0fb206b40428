/**
 * The chart's monitoring files, charts/sfn-operator/files/alerts.yaml (the PrometheusRule's groups) and
 * charts/sfn-operator/files/dashboard.json (the Grafana dashboard), use only metrics and labels that
 * the code registers: the registries are built here as the processes build them (run-operator.ts for
 * the operator, PollerMetrics for the pollers) and every expression is checked against them, so a
 * renamed metric or label fails here rather than in a silent alert. With promtool ($PROMTOOL, the
 * PATH, or ~/.cache/sfn-operator/bin/promtool; the skip message says how to build it), the rules are
 * also checked by Prometheus' own parser and unit-tested (test/unit/fixtures/alerts.promtool-test.yaml).
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { expect } from "chai";
import { collectDefaultMetrics, Registry } from "prom-client";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { createLeaderGauge, PollerMetrics } from "../../src/observability/metrics.ts";
import { Operator } from "../../src/operator/operator.ts";
import { type OperatorSettings, operatorSettingsFrom } from "../../src/operator/settings.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const CHART = path.join(REPO, "charts/sfn-operator");
const ALERTS_FILE = path.join(CHART, "files/alerts.yaml");
const DASHBOARD_FILE = path.join(CHART, "files/dashboard.json");
const PROMTOOL_TESTS = path.join(REPO, "test/unit/fixtures/alerts.promtool-test.yaml");

/** Labels Prometheus' Kubernetes discovery (ServiceMonitor, PodMonitor) gives every target. */
const TARGET_LABELS = ["namespace", "pod", "instance", "job", "container", "endpoint", "service"];

/** Series that are not ours, with the labels the rules may use beyond the target labels. */
const FOREIGN_SERIES: Record<string, readonly string[]> = {
  up: [],
  // kube-state-metrics
  kube_deployment_spec_replicas: ["deployment"],
  kube_deployment_status_replicas_available: ["deployment"],
  kube_deployment_status_replicas_updated: ["deployment"],
};

interface MetricInfo {
  type: string;
  labels: Set<string>;
}

function operatorSettings(): OperatorSettings {
  const result = operatorSettingsFrom(
    { SFN_POLLER_IMAGE: "example/sfn-operator:0.1.0", SFN_REDIS_URL: "redis://127.0.0.1:1" },
    { POD_NAMESPACE: "sfn-system", POD_NAME: "sfn-operator-0" },
  );
  expect(result.problems).to.deep.equal([]);
  return result.settings as OperatorSettings;
}

/** Every series name the operator and the pollers register, with its type and label names. */
async function registeredMetrics(): Promise<Map<string, MetricInfo>> {
  // The operator's registry, assembled as runOperatorCommand does (src/operator/run-operator.ts).
  // The Operator is only constructed: nothing connects before start().
  const operatorRegistry = new Registry();
  collectDefaultMetrics({ register: operatorRegistry, prefix: "sfn_operator_" });
  createLeaderGauge(operatorRegistry);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "none", server: "https://127.0.0.1:1" }],
    users: [{ name: "none" }],
    contexts: [{ name: "none", cluster: "none", user: "none" }],
    currentContext: "none",
  });
  new Operator({ kubeConfig, settings: operatorSettings(), registry: operatorRegistry, env: {} });
  const pollerRegistry = new PollerMetrics().registry;

  const metrics = new Map<string, MetricInfo>();
  for (const registry of [operatorRegistry, pollerRegistry]) {
    for (const { name, type } of await registry.getMetricsAsJSON()) {
      const metric = registry.getSingleMetric(name) as unknown as { labelNames?: readonly string[] };
      const info = metrics.get(name) ?? { type: String(type), labels: new Set<string>() };
      for (const label of metric.labelNames ?? []) info.labels.add(label);
      metrics.set(name, info);
    }
  }
  return metrics;
}

/** A reference to a series in an expression: its name as written and where it is. */
interface SeriesRef {
  name: string;
  at: number;
}

/**
 * An expression made easy to scan: string literals emptied (label values and regexes never hold
 * names to check) and Grafana's interval variables replaced by a duration.
 */
function normalise(expr: string): string {
  return expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$__(?:rate_interval|interval|range)\b/g, "5m");
}

/** The text of the parenthesised group that opens at `open` (a "("), without the parentheses. */
function groupAt(text: string, open: number): { start: number; end: number } | undefined {
  if (text[open] !== "(") return undefined;
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === "(") depth += 1;
    else if (text[i] === ")") {
      depth -= 1;
      if (depth === 0) return { start: open + 1, end: i };
    }
  }
  throw new Error(`unbalanced parentheses in: ${text}`);
}

/** The group that closes at `close` (a ")"), scanning back. */
function groupEndingAt(text: string, close: number): { start: number; end: number } | undefined {
  if (text[close] !== ")") return undefined;
  let depth = 0;
  for (let i = close; i >= 0; i -= 1) {
    if (text[i] === ")") depth += 1;
    else if (text[i] === "(") {
      depth -= 1;
      if (depth === 0) return { start: i + 1, end: close };
    }
  }
  throw new Error(`unbalanced parentheses in: ${text}`);
}

const LABEL_LIST = (list: string): string[] =>
  list
    .split(",")
    .map((label) => label.trim())
    .filter((label) => label !== "");

interface Grouping {
  keyword: string;
  labels: string[];
  /** For by/without: the range of the aggregated expression. */
  scope?: { start: number; end: number };
}

function groupings(text: string): Grouping[] {
  const found: Grouping[] = [];
  for (const match of text.matchAll(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    const keyword = match[1] as string;
    const labels = LABEL_LIST(match[2] as string);
    if (keyword !== "by" && keyword !== "without") {
      found.push({ keyword, labels });
      continue;
    }
    // `sum by (a) (expr)`, or `sum(expr) by (a)`.
    let next = match.index + match[0].length;
    while (next < text.length && /\s/.test(text[next] as string)) next += 1;
    let previous = match.index - 1;
    while (previous >= 0 && /\s/.test(text[previous] as string)) previous -= 1;
    const scope = groupAt(text, next) ?? groupEndingAt(text, previous);
    expect(scope, `the expression aggregated by ${match[0]} in: ${text}`).to.not.equal(undefined);
    found.push({ keyword, labels, ...(scope && { scope }) });
  }
  return found;
}

/** Checks one PromQL expression against the registries; returns the labels its result may carry. */
function checkExpression(expr: string, metrics: Map<string, MetricInfo>, where: string): Set<string> {
  const text = normalise(expr);
  const refs: SeriesRef[] = [];
  const labelsOf = new Map<string, Set<string>>();

  const resolve = (name: string): Set<string> | undefined => {
    const own = metrics.get(name);
    if (own) return new Set([...own.labels, ...TARGET_LABELS]);
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && metrics.get(base)?.type === "histogram") {
        const labels = new Set([...(metrics.get(base)?.labels ?? []), ...TARGET_LABELS]);
        if (suffix === "_bucket") labels.add("le");
        return labels;
      }
    }
    const foreign = FOREIGN_SERIES[name];
    return foreign ? new Set([...foreign, ...TARGET_LABELS]) : undefined;
  };

  for (const match of text.matchAll(/\bsfn_operator_\w+/g)) {
    const labels = resolve(match[0]);
    expect(labels, `${where}: ${match[0]} is not a metric the code registers`).to.not.equal(undefined);
    refs.push({ name: match[0], at: match.index });
    labelsOf.set(match[0], labels as Set<string>);
  }
  // Any other selector with braces must be one of the foreign series this test knows.
  for (const match of text.matchAll(/\b([a-zA-Z_:][\w:]*)\s*\{/g)) {
    const name = match[1] as string;
    if (name.startsWith("sfn_operator_")) continue;
    expect(Object.keys(FOREIGN_SERIES), `${where}: unknown series ${name}`).to.include(name);
    refs.push({ name, at: match.index });
    labelsOf.set(name, resolve(name) as Set<string>);
  }
  for (const match of text.matchAll(/\bkube_\w+/g)) {
    expect(Object.keys(FOREIGN_SERIES), `${where}: unknown series ${match[0]}`).to.include(match[0]);
    if (!refs.some((ref) => ref.at === match.index)) refs.push({ name: match[0], at: match.index });
    labelsOf.set(match[0], resolve(match[0]) as Set<string>);
  }

  // Matchers: every label must be on that series.
  for (const match of text.matchAll(/\b([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)) {
    const labels = labelsOf.get(match[1] as string);
    if (!labels) continue;
    for (const matcher of (match[2] as string).split(",")) {
      if (matcher.trim() === "") continue;
      const label = /^\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/.exec(matcher)?.[1];
      expect(label, `${where}: matcher ${matcher}`).to.not.equal(undefined);
      expect([...labels], `${where}: label ${label} of ${match[1]}`).to.include(label);
    }
  }

  // Groupings: a by/without label must be on every series it aggregates; on/ignoring/group_*
  // labels on every series of the expression.
  const found = groupings(text);
  for (const grouping of found) {
    const inScope = grouping.scope
      ? refs.filter((ref) => ref.at >= (grouping.scope?.start ?? 0) && ref.at < (grouping.scope?.end ?? 0))
      : refs;
    expect(inScope, `${where}: ${grouping.keyword} (${grouping.labels}) aggregates no series`).to.not.be
      .empty;
    for (const ref of inScope) {
      for (const label of grouping.labels) {
        expect(
          [...(labelsOf.get(ref.name) ?? [])],
          `${where}: ${grouping.keyword} label ${label} on ${ref.name}`,
        ).to.include(label);
      }
    }
  }

  // The labels the result may carry: those of the aggregations, and all labels of any series that
  // no aggregation covers.
  const result = new Set<string>();
  const aggregations = found.filter((grouping) => grouping.keyword === "by");
  for (const grouping of aggregations) for (const label of grouping.labels) result.add(label);
  for (const ref of refs) {
    const covered = aggregations.some(
      (grouping) => grouping.scope && ref.at >= grouping.scope.start && ref.at < grouping.scope.end,
    );
    if (!covered) for (const label of labelsOf.get(ref.name) ?? []) result.add(label);
  }
  return result;
}

/** `{{ $labels.x }}` in alert annotations, `{{x}}` in Grafana legends. */
function templateLabels(text: string, pattern: RegExp): string[] {
  return [...text.matchAll(pattern)].map((match) => match[1] as string);
}

interface Rule {
  alert?: string;
  record?: string;
  expr?: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

interface Target {
  datasource?: { type?: string; uid?: string };
  expr?: string;
  legendFormat?: string;
  refId?: string;
}

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  panels?: Panel[];
}

interface Variable {
  name?: string;
  type?: string;
  query?: unknown;
  datasource?: { type?: string; uid?: string };
}

/** $PROMTOOL, else the one test/install-promtool.sh built (test setup runs it), else the PATH's. */
function promtool(): string | undefined {
  const version = /^PROMTOOL_VERSION=v?(\S+)$/m.exec(
    readFileSync(path.join(REPO, "test/cluster/versions.env"), "utf8"),
  )?.[1];
  const candidates = process.env.PROMTOOL
    ? [process.env.PROMTOOL]
    : [path.join(homedir(), `.cache/sfn-operator/bin/promtool-${version}/promtool`), "promtool"];
  return candidates.find((candidate) => spawnSync(candidate, ["--version"]).status === 0);
}

describe("monitoring: the chart's alerts and dashboard", () => {
  let metrics: Map<string, MetricInfo>;
  const alertsText = readFileSync(ALERTS_FILE, "utf8");
  const alerts = parseYaml(alertsText) as { groups?: Array<{ name?: string; rules?: Rule[] }> };
  const dashboardText = readFileSync(DASHBOARD_FILE, "utf8");

  before(async () => {
    metrics = await registeredMetrics();
  });

  it("builds the registries the way the processes do", () => {
    for (const name of [
      "sfn_operator_tasks_total",
      "sfn_operator_leader",
      "sfn_operator_reconcile_total",
      "sfn_operator_api_writes_total",
      "sfn_operator_process_start_time_seconds",
    ])
      expect([...metrics.keys()]).to.include(name);
    expect([...(metrics.get("sfn_operator_api_writes_total")?.labels ?? [])]).to.deep.equal(["kind"]);
    expect(metrics.get("sfn_operator_task_duration_seconds")?.type).to.equal("histogram");
  });

  describe("alerts.yaml", () => {
    const rules = (alerts.groups ?? []).flatMap((group) => group.rules ?? []);

    it("is a `groups:` list of named groups of alerting rules, with no Helm templating", () => {
      expect(Object.keys(alerts)).to.deep.equal(["groups"]);
      expect(alerts.groups).to.be.an("array").that.is.not.empty;
      const names = (alerts.groups ?? []).map((group) => group.name);
      expect(new Set(names).size, "unique group names").to.equal(names.length);
      for (const group of alerts.groups ?? []) {
        expect(group.name).to.match(/^sfn-operator\./);
        expect(group.rules, group.name).to.be.an("array").that.is.not.empty;
      }
      // Helm would read these; the PrometheusRule template must include the file as it is (no tpl).
      expect(alertsText).to.not.match(
        /\{\{-|-\}\}|\{\{\s*\.(Values|Release|Chart)|\{\{\s*(include|template)\b/,
      );
    });

    it("gives every alert a unique name, an expression, a for, a severity, a summary, a description and a runbook", () => {
      const names = rules.map((rule) => rule.alert);
      expect(new Set(names).size, "unique alert names").to.equal(names.length);
      for (const rule of rules) {
        expect(rule.alert, JSON.stringify(rule))
          .to.be.a("string")
          .and.match(/^Sfn[A-Z][A-Za-z]+$/);
        const name = rule.alert as string;
        expect(rule.record, name).to.equal(undefined);
        expect(rule.expr, name).to.be.a("string").that.is.not.empty;
        expect(rule.for, name)
          .to.be.a("string")
          .and.match(/^[1-9][0-9]*[smh]$/);
        expect(rule.labels?.severity, name).to.be.oneOf(["warning", "critical"]);
        expect(rule.annotations?.summary, name).to.be.a("string").that.is.not.empty;
        expect(rule.annotations?.description, name).to.be.a("string").that.is.not.empty;
        expect(rule.annotations?.runbook, name).to.be.a("string").and.contain(name);
        expect(rule.annotations?.runbook, name).to.contain("README");
      }
    });

    it("documents every alert, with its severity, in the README's table", () => {
      const readme = readFileSync(path.join(REPO, "README.md"), "utf8");
      for (const rule of (alerts.groups ?? []).flatMap((group) => group.rules ?? [])) {
        if (rule.alert === undefined) continue;
        const severity = (rule.labels as Record<string, string> | undefined)?.severity;
        expect(readme, rule.alert).to.contain(`| \`${rule.alert}\` | ${severity} |`);
      }
    });

    it("covers what the chart promises: pollers not ready, tasks failing, the semaphore, leases, the leader, reconciles, informers, the work queue", () => {
      const names = rules.map((rule) => rule.alert);
      for (const name of [
        "SfnPollersUnavailable",
        "SfnPollersNoneAvailable",
        "SfnPollerDown",
        "SfnTasksFailing",
        "SfnTasksUnreported",
        "SfnSemaphoreStalled",
        "SfnRedisErrors",
        "SfnSemaphoreLeasesLost",
        "SfnOperatorNoLeader",
        "SfnOperatorReconcileErrors",
        "SfnOperatorInformerNotSynced",
        "SfnOperatorWorkQueueNotDraining",
      ])
        expect(names).to.include(name);
    });

    it("uses only metrics and labels the code registers, and annotations name only labels the result has", () => {
      for (const rule of rules) {
        const where = `alert ${rule.alert}`;
        const resultLabels = checkExpression(String(rule.expr), metrics, where);
        const annotations = Object.values(rule.annotations ?? {}).join("\n");
        for (const label of templateLabels(annotations, /\$labels\.([a-zA-Z_]\w*)/g))
          expect([...resultLabels], `${where}: annotation uses $labels.${label}`).to.include(label);
      }
    });

    it("checks what it is meant to check (the label checker itself)", () => {
      const check = (expr: string) => () => checkExpression(expr, metrics, "sample");
      expect(check("sum by (source) (rate(sfn_operator_tasks_total[5m]))")).to.not.throw();
      expect(check("rate(sfn_operator_task_duration_seconds_bucket[5m])")).to.not.throw();
      expect(check("sfn_operator_no_such_metric")).to.throw(/not a metric the code registers/);
      expect(check("sum by (source) (rate(sfn_operator_redis_errors_total[5m]))")).to.throw(
        /by label source/,
      );
      expect(check("sum(rate(sfn_operator_redis_errors_total[5m])) by (source)")).to.throw(/by label source/);
      expect(check('sfn_operator_leader{controller="x"}')).to.throw(/label controller/);
      expect(check("rate(sfn_operator_tasks_total_bucket[5m])")).to.throw(/not a metric/);
      expect(check("kube_pod_info")).to.throw(/unknown series/);
      expect(check("sum by (le) (rate(sfn_operator_tasks_total[5m]))")).to.throw(/by label le/);
    });

    it("passes `promtool check rules` and the rules' unit tests (skipped without promtool)", function () {
      const bin = promtool();
      if (!bin) {
        console.log(
          "      promtool not found (PROMTOOL, ~/.cache/sfn-operator/bin/promtool-<version>, PATH): skipped. " +
            "Build it with `bash test/install-promtool.sh` (about 7 minutes; `npm test` runs it in its set-up)",
        );
        this.skip();
        return;
      }
      this.timeout(60_000);
      const check = spawnSync(bin, ["check", "rules", ALERTS_FILE], { encoding: "utf8" });
      expect(check.status, `${check.stdout}${check.stderr}`).to.equal(0);
      // promtool compares annotations verbatim: run the unit tests on a copy without them (the test
      // above checks the labels they use).
      const dir = mkdtempSync(path.join(tmpdir(), "sfn-alerts-"));
      try {
        const withoutAnnotations = {
          groups: (alerts.groups ?? []).map((group) => ({
            ...group,
            rules: (group.rules ?? []).map(({ annotations: _annotations, ...rule }) => rule),
          })),
        };
        writeFileSync(path.join(dir, "alerts.yaml"), stringifyYaml(withoutAnnotations));
        const tests = path.join(dir, path.basename(PROMTOOL_TESTS));
        copyFileSync(PROMTOOL_TESTS, tests);
        const test = spawnSync(bin, ["test", "rules", tests], { encoding: "utf8" });
        expect(test.status, `${test.stdout}${test.stderr}`).to.equal(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("dashboard.json", () => {
    const dashboard = JSON.parse(dashboardText) as {
      schemaVersion?: number;
      uid?: string;
      title?: string;
      panels?: Panel[];
      templating?: { list?: Variable[] };
    };
    const allPanels = (dashboard.panels ?? []).flatMap((panel) => [panel, ...(panel.panels ?? [])]);
    const dataPanels = allPanels.filter((panel) => panel.type !== "row");
    const DATASOURCE = { type: "prometheus", uid: `\${datasource}` };

    it("is a Grafana dashboard with a fixed uid, schema 39 and unique panel ids", () => {
      expect(dashboard.schemaVersion).to.be.within(36, 41);
      expect(dashboard.uid).to.equal("sfn-operator");
      expect(dashboard.title).to.be.a("string").that.is.not.empty;
      const ids = allPanels.map((panel) => panel.id);
      for (const id of ids) expect(id).to.be.a("number");
      expect(new Set(ids).size, "unique panel ids").to.equal(ids.length);
    });

    it("lays the panels out on the 24-column grid without overlaps", () => {
      const cells = new Set<string>();
      for (const panel of allPanels) {
        const grid = panel.gridPos;
        expect(grid, panel.title).to.not.equal(undefined);
        if (!grid) continue;
        expect(grid.x + grid.w, panel.title).to.be.at.most(24);
        for (let x = grid.x; x < grid.x + grid.w; x += 1) {
          for (let y = grid.y; y < grid.y + grid.h; y += 1) {
            const cell = `${x},${y}`;
            expect(cells.has(cell), `${panel.title} overlaps at ${cell}`).to.equal(false);
            cells.add(cell);
          }
        }
      }
    });

    it("has the variables datasource (Prometheus), namespace and source, queried through the datasource variable", () => {
      const variables = dashboard.templating?.list ?? [];
      const byName = new Map(variables.map((variable) => [variable.name, variable]));
      expect(byName.get("datasource")?.type).to.equal("datasource");
      expect(byName.get("datasource")?.query).to.equal("prometheus");
      for (const name of ["namespace", "source"]) expect(byName.get(name)?.type, name).to.equal("query");
      for (const variable of variables.filter((v) => v.type === "query")) {
        expect(variable.datasource, variable.name).to.deep.equal(DATASOURCE);
        const query = variable.query as { query?: string } | string;
        const text = typeof query === "string" ? query : (query.query ?? "");
        const match = /^label_values\((.+),\s*(\w+)\)$/.exec(text);
        expect(match, `${variable.name}: ${text}`).to.not.equal(null);
        const labels = checkExpression(match?.[1] ?? "", metrics, `variable ${variable.name}`);
        expect([...labels], `variable ${variable.name}`).to.include(match?.[2]);
      }
    });

    it("queries the datasource variable in every panel and every target", () => {
      expect(dataPanels).to.not.be.empty;
      for (const panel of dataPanels) {
        expect(panel.datasource, panel.title).to.deep.equal(DATASOURCE);
        expect(panel.targets, panel.title).to.be.an("array").that.is.not.empty;
        const refIds = (panel.targets ?? []).map((target) => target.refId);
        expect(new Set(refIds).size, `${panel.title}: unique refIds`).to.equal(refIds.length);
        for (const target of panel.targets ?? [])
          expect(target.datasource, panel.title).to.deep.equal(DATASOURCE);
      }
    });

    it("uses only metrics and labels the code registers, and legends name only labels the result has", () => {
      for (const panel of dataPanels) {
        for (const target of panel.targets ?? []) {
          const where = `panel "${panel.title}" ${target.refId}`;
          expect(target.expr, where).to.be.a("string").that.is.not.empty;
          const labels = checkExpression(target.expr ?? "", metrics, where);
          for (const label of templateLabels(target.legendFormat ?? "", /\{\{\s*([a-zA-Z_]\w*)\s*\}\}/g))
            expect([...labels], `${where}: legend {{${label}}}`).to.include(label);
        }
      }
    });

    it("shows what the chart promises", () => {
      const exprs = dataPanels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? ""));
      for (const metric of [
        "sfn_operator_tasks_total",
        "sfn_operator_tasks_in_flight",
        "sfn_operator_concurrency_limit",
        "sfn_operator_permit_wait_seconds_bucket",
        "sfn_operator_task_duration_seconds_bucket",
        "sfn_operator_aws_errors_total",
        "sfn_operator_redis_errors_total",
        "sfn_operator_semaphore_leases_lost_total",
        "sfn_operator_leader",
        "sfn_operator_reconcile_total",
        "sfn_operator_reconcile_duration_seconds_bucket",
        "sfn_operator_workqueue_depth",
        "sfn_operator_api_writes_total",
      ])
        expect(
          exprs.some((expr) => expr.includes(metric)),
          metric,
        ).to.equal(true);
    });
  });

  describe("the chart's templates that include them", () => {
    const templates = path.join(CHART, "templates");
    const texts = existsSync(templates)
      ? readdirSync(templates)
          .filter((file) => /\.(ya?ml|tpl)$/.test(file))
          .map((file) => readFileSync(path.join(templates, file), "utf8"))
      : [];

    it("includes alerts.yaml and dashboard.json as they are, with .Files.Get and no tpl", () => {
      const users = texts.filter((text) => /files\/(alerts\.yaml|dashboard\.json)/.test(text));
      expect(users, "templates that include the files").to.not.be.empty;
      for (const file of ["files/alerts.yaml", "files/dashboard.json"]) {
        // Template actions only: comments may name the files.
        const lines = users
          .flatMap((text) => text.split("\n"))
          .filter((line) => line.includes(file) && line.includes("{{") && !/^\s*\{\{-?\s*\/\*/.test(line));
        expect(lines, file).to.not.be.empty;
        for (const line of lines) {
          expect(line, file).to.contain(".Files.Get");
          expect(line, file).to.not.match(/\btpl\b/);
        }
      }
    });

    it('gives poller targets job="sfn-poller" (PodMonitor jobLabel: app.kubernetes.io/name), which SfnPollerDown selects', () => {
      const podMonitor = texts.find((text) => /kind:\s*PodMonitor/.test(text)) ?? "";
      expect(podMonitor).to.match(/jobLabel:\s*["']?app\.kubernetes\.io\/name["']?/);
      expect(alertsText).to.contain('up{job="sfn-poller"}');
    });
  });
});
