#!/usr/bin/env python3
"""Checks the Grafana dashboard and the Prometheus alert rules against the metrics the code exports.

    check_monitoring.py --root REPO --promtool PATH [--scrape FILE] [--self-test]
    check_monitoring.py --root REPO --write

The exported metrics are the "conveyor_..." string literals of the C++ sources (cli,
coordinator, worker, common); histograms are the ones registered through histogram(...) or
BuildHistogram(), and only they may take _bucket, _sum and _count. Checked:

- deploy/grafana/conveyor-dashboard.json: uid, schema version, the `datasource` variable
  (type datasource, prometheus) used by every panel and query, unique panel ids, a query in
  every panel; every metric named in a query or a variable is exported; every query parses
  (promtool, with the Grafana variables replaced by values).
- deploy/grafana/conveyor-dashboard-configmap.yaml holds the same dashboard, labelled for the
  Grafana sidecar (grafana_dashboard: "1").
- deploy/prometheus/conveyor-rules.yaml: the expected alerts, each with a severity label and
  summary and description annotations, naming only exported metrics;
  deploy/prometheus/conveyor-prometheusrule.yaml is a PrometheusRule with the same groups.
- --scrape FILE (a real /metrics scrape of `conveyor bench`): every conveyor_engine_ metric the
  dashboard or the rules use is in it, with the type the sources register.

Every problem is printed; the exit status is 1 when there is any. --self-test also breaks
copies of the files in known ways and fails unless each breakage is reported. --write
regenerates the ConfigMap and the PrometheusRule from the dashboard and the rules file.
"""
import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

DASHBOARD = "deploy/grafana/conveyor-dashboard.json"
CONFIGMAP = "deploy/grafana/conveyor-dashboard-configmap.yaml"
RULES = "deploy/prometheus/conveyor-rules.yaml"
PROMETHEUS_RULE = "deploy/prometheus/conveyor-prometheusrule.yaml"
RULE_TESTS = "tests/monitoring/conveyor-rules.test.yaml"
SOURCE_DIRS = ("cli", "coordinator", "worker", "common")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
ALERTS = (
    "ConveyorKvNearFull",
    "ConveyorJobStalled",
    "ConveyorWorkerLost",
    "ConveyorHighPreemptionRate",
    "ConveyorErrorRatio",
)
DATASOURCE_UID = "${datasource}"
MIN_SCHEMA_VERSION = 36
CONFIGMAP_KEY = "conveyor-dashboard.json"

# Grafana's variables, replaced by values of the same kind before promtool parses a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__rate_interval}": "1m",
    "${__interval}": "1m",
    "${__range}": "1h",
}


# ---- the exported metrics --------------------------------------------------------------


class Exported:
    """The metric names the C++ sources register, and which of them are histograms."""

    def __init__(self, names, histograms):
        self.names = set(names)
        self.histograms = set(histograms)

    def without(self, name):
        return Exported(self.names - {name}, self.histograms - {name})

    def base_name(self, name):
        """The metric of a series name: a histogram's name without _bucket, _sum, _count."""
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in self.histograms:
                return name[: -len(suffix)]
        return name

    def series_problem(self, name):
        """Why `name` is not a series of an exported metric, or None."""
        if self.base_name(name) != name:
            return None
        if name in self.histograms:
            return f"{name} is a histogram: use {name}_bucket, _sum or _count"
        if name in self.names:
            return None
        return f"{name} is not a metric the code exports"


def read_exported(root):
    names, histograms = set(), set()
    literal = re.compile(r'"(conveyor_[a-z0-9_]+)"')
    histogram = re.compile(r'(?:histogram\(|BuildHistogram\(\))[^";]*"(conveyor_[a-z0-9_]+)"')
    for d in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if not f.endswith(".cpp"):
                    continue
                with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                names.update(literal.findall(text))
                histograms.update(histogram.findall(text))
    return Exported(names, histograms)


# ---- PromQL ----------------------------------------------------------------------------

QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
NAME_MATCHER = re.compile(r'__name__\s*=\s*"(conveyor_[a-z0-9_:]+)"')
METRIC = re.compile(r"\bconveyor_[a-z0-9_]*[a-z0-9]\b")


def metric_names(expr):
    """The conveyor_ metric names an expression selects (outside of label values, except an
    exact __name__ matcher)."""
    names = set(NAME_MATCHER.findall(expr))
    names.update(METRIC.findall(QUOTED.sub('""', expr)))
    return names


def expr_problems(where, expr, exported):
    return [f"{where}: {p}" for n in sorted(metric_names(expr)) if (p := exported.series_problem(n))]


def grafana_to_promql(expr):
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", ".*", expr)
    return re.sub(r"\$(\w+)", ".*", expr)


def promtool_parses(exprs, promtool):
    """Whether promtool parses every expression, as the expressions of recording rules."""
    rules = [{"record": f"dashboard:q{i}", "expr": expr} for i, expr in enumerate(exprs)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "queries.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    return r.returncode == 0, " ".join((r.stdout + r.stderr).split())


def promql_problems(exprs, promtool):
    """Parses each (where, expr) with promtool: all at once, then one by one to name the
    ones that fail."""
    if not exprs or promtool_parses([e for _, e in exprs], promtool)[0]:
        return []
    problems = []
    for where, expr in exprs:
        ok, msg = promtool_parses([expr], promtool)
        if not ok:
            problems.append(f"{where}: promtool cannot parse {expr!r}: {msg}")
    return problems or [f"promtool rejects the dashboard's queries together: {msg}"]


# ---- the dashboard ---------------------------------------------------------------------


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def dashboard_exprs(dash):
    """(where, expr) of every panel query and query variable."""
    out = []
    for p in all_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((f"panel {p.get('id')} {p.get('title')!r} query {t.get('refId')}", t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q or ""
            out.append((f"variable {v.get('name')}", q))
    return out


def label_values_selector(query):
    """The series selector of a Grafana label_values(selector, label) query."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query, re.S)
    return m.group(1) if m else None


def datasource_uid(ds):
    return ds.get("uid") if isinstance(ds, dict) else ds


def dashboard_problems(dash, exported, promtool=None):
    problems = []
    if dash.get("uid") != "conveyor":
        problems.append(f"dashboard uid is {dash.get('uid')!r}, not 'conveyor'")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < MIN_SCHEMA_VERSION:
        problems.append(f"dashboard schemaVersion {dash.get('schemaVersion')!r} < {MIN_SCHEMA_VERSION}")
    variables = dash.get("templating", {}).get("list", [])
    ds_vars = [v for v in variables if v.get("name") == "datasource"]
    if not (len(ds_vars) == 1 and ds_vars[0].get("type") == "datasource" and ds_vars[0].get("query") == "prometheus"):
        problems.append("dashboard lacks the variable `datasource` of type datasource, query prometheus")
    for v in variables:
        if v.get("type") == "query" and datasource_uid(v.get("datasource")) != DATASOURCE_UID:
            problems.append(f"variable {v.get('name')}: datasource is not {DATASOURCE_UID}")
    ids = [p.get("id") for p in all_panels(dash.get("panels", []))]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append("dashboard panel ids are missing or repeated")
    for p in all_panels(dash.get("panels", [])):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if "gridPos" not in p:
            problems.append(f"{where}: no gridPos")
        if p.get("type") == "row":
            continue
        if datasource_uid(p.get("datasource")) != DATASOURCE_UID:
            problems.append(f"{where}: datasource is not {DATASOURCE_UID}")
        targets = p.get("targets", [])
        if not targets or not all(t.get("expr") for t in targets):
            problems.append(f"{where}: a panel without a query")
        for t in targets:
            if datasource_uid(t.get("datasource", {"uid": DATASOURCE_UID})) != DATASOURCE_UID:
                problems.append(f"{where} query {t.get('refId')}: datasource is not {DATASOURCE_UID}")
    exprs = dashboard_exprs(dash)
    parse = []
    for where, expr in exprs:
        problems += expr_problems(where, expr, exported)
        if where.startswith("variable"):
            selector = label_values_selector(expr)
            if selector is None:
                problems.append(f"{where}: not a label_values(selector, label) query: {expr!r}")
                continue
            expr = selector
        parse.append((where, grafana_to_promql(expr)))
    if promtool:
        problems += promql_problems(parse, promtool)
    return problems


def configmap_problems(cm, dash):
    problems = []
    if cm.get("apiVersion") != "v1" or cm.get("kind") != "ConfigMap":
        problems.append(f"{CONFIGMAP}: not a v1 ConfigMap")
    labels = (cm.get("metadata") or {}).get("labels") or {}
    if labels.get("grafana_dashboard") != "1":
        problems.append(f'{CONFIGMAP}: no label grafana_dashboard: "1" (the Grafana sidecar looks for it)')
    data = cm.get("data") or {}
    if list(data) != [CONFIGMAP_KEY]:
        problems.append(f"{CONFIGMAP}: data should hold exactly {CONFIGMAP_KEY}, holds {sorted(data)}")
    elif json.loads(data[CONFIGMAP_KEY]) != dash:
        problems.append(f"{CONFIGMAP}: the dashboard differs from {DASHBOARD} (run {sys.argv[0]} --write)")
    return problems


def make_configmap(dash_text):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "conveyor-grafana-dashboard",
            "labels": {
                "grafana_dashboard": "1",
                "app.kubernetes.io/name": "conveyor",
                "app.kubernetes.io/part-of": "conveyor",
            },
        },
        "data": {CONFIGMAP_KEY: dash_text},
    }


# ---- the alert rules -------------------------------------------------------------------


def rules_problems(rules, prometheus_rule, exported):
    problems = []
    groups = rules.get("groups") or []
    alerts = [r for g in groups for r in g.get("rules", []) if "alert" in r]
    names = {r["alert"] for r in alerts}
    for a in ALERTS:
        if a not in names:
            problems.append(f"{RULES}: no alert {a}")
    for r in alerts:
        where = f"{RULES}: alert {r['alert']}"
        if (r.get("labels") or {}).get("severity") not in ("info", "warning", "critical"):
            problems.append(f"{where}: no severity label (info, warning or critical)")
        ann = r.get("annotations") or {}
        if not ann.get("summary") or not ann.get("description"):
            problems.append(f"{where}: needs summary and description annotations")
    for g in groups:
        for r in g.get("rules", []):
            problems += expr_problems(f"{RULES}: {r.get('alert') or r.get('record')}", r.get("expr", ""), exported)
    if prometheus_rule.get("apiVersion") != "monitoring.coreos.com/v1" or prometheus_rule.get("kind") != "PrometheusRule":
        problems.append(f"{PROMETHEUS_RULE}: not a monitoring.coreos.com/v1 PrometheusRule")
    if (prometheus_rule.get("spec") or {}).get("groups") != groups:
        problems.append(f"{PROMETHEUS_RULE}: spec.groups differ from the groups of {RULES} (run {sys.argv[0]} --write)")
    return problems


def make_prometheus_rule(rules):
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "conveyor",
            "labels": {"app.kubernetes.io/name": "conveyor", "app.kubernetes.io/part-of": "conveyor"},
        },
        "spec": {"groups": rules["groups"]},
    }


def rule_test_problems(tests, exported):
    problems = []
    for t in tests.get("tests", []):
        for s in t.get("input_series", []):
            problems += expr_problems(f"{RULE_TESTS}: input series", s.get("series", ""), exported)
    return problems


# ---- the scrape ------------------------------------------------------------------------


def scrape_types(text):
    return dict(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))


def scrape_problems(text, used, exported):
    """Every conveyor_engine_ metric in `used` is in the scrape, with the registered type."""
    types = scrape_types(text)
    samples = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    problems = []
    for name in sorted(used):
        base = exported.base_name(name)
        if not base.startswith("conveyor_engine_"):
            continue
        if base not in types or not samples & {base, *(base + x for x in HISTOGRAM_SUFFIXES)}:
            problems.append(f"scrape: {base} (used by the dashboard or the rules) is not in /metrics")
        elif (types[base] == "histogram") != (base in exported.histograms):
            problems.append(f"scrape: {base} is a {types[base]} in /metrics")
    return problems


# ---- reading and writing ---------------------------------------------------------------


class Files:
    def __init__(self, root):
        def read(rel):
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                return f.read()

        self.dash_text = read(DASHBOARD)
        self.dash = json.loads(self.dash_text)
        self.configmap = yaml.safe_load(read(CONFIGMAP))
        self.rules = yaml.safe_load(read(RULES))
        self.prometheus_rule = yaml.safe_load(read(PROMETHEUS_RULE))
        self.rule_tests = yaml.safe_load(read(RULE_TESTS))

    def used_metrics(self):
        used = set()
        for _, expr in dashboard_exprs(self.dash):
            used |= metric_names(expr)
        for g in self.rules.get("groups", []):
            for r in g.get("rules", []):
                used |= metric_names(r.get("expr", ""))
        return used


def check(files, exported, promtool, scrape):
    problems = dashboard_problems(files.dash, exported, promtool)
    problems += configmap_problems(files.configmap, files.dash)
    problems += rules_problems(files.rules, files.prometheus_rule, exported)
    problems += rule_test_problems(files.rule_tests, exported)
    if scrape is not None:
        problems += scrape_problems(scrape, files.used_metrics(), exported)
    return problems


class LiteralDumper(yaml.SafeDumper):
    pass


def _str(dumper, s):
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)


LiteralDumper.add_representer(str, _str)


def write(root, dash_text, rules):
    header = {
        CONFIGMAP: (
            f"# The Grafana dashboard {DASHBOARD} for the Grafana sidecar\n"
            "# (kube-prometheus-stack, the grafana Helm chart), which loads every ConfigMap\n"
            "# labelled grafana_dashboard: \"1\".\n"
            "# Generated: python3 tests/monitoring/check_monitoring.py --root . --write\n"
        ),
        PROMETHEUS_RULE: (
            f"# The alert rules of {RULES}\n"
            "# as a Prometheus Operator PrometheusRule. Your Prometheus's ruleSelector must match\n"
            "# its labels (kube-prometheus-stack: add `release: <its release name>`, or set\n"
            "# ruleSelectorNilUsesHelmValues: false).\n"
            "# Generated: python3 tests/monitoring/check_monitoring.py --root . --write\n"
        ),
    }
    docs = {CONFIGMAP: make_configmap(dash_text), PROMETHEUS_RULE: make_prometheus_rule(rules)}
    for rel, doc in docs.items():
        with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
            f.write(header[rel])
            yaml.dump(doc, f, Dumper=LiteralDumper, sort_keys=False, width=1000, allow_unicode=True)
        print(f"wrote {rel}")


# ---- self-test -------------------------------------------------------------------------


def self_test(files, exported, promtool, scrape):
    """Each breakage must be reported (and the unbroken files pass, checked by the caller)."""

    def first_target(dash):
        return next(p for p in all_panels(dash["panels"]) if p.get("targets"))["targets"][0]

    cases = []

    def case(name, mutate, expect, exp=exported, scr=scrape):
        f = copy.deepcopy(files)
        mutate(f)
        cases.append((name, f, exp, scr, expect))

    def rename_in_dashboard(f):
        t = first_target(f.dash)
        t["expr"] = re.sub(r"conveyor_[a-z_]+?(_total|_ratio|_running|_pending)", r"conveyor_renamed\1", t["expr"], count=1)

    case("a dashboard query names an unknown metric", rename_in_dashboard, "not a metric the code exports")
    case(
        "a metric the dashboard and rules use is gone from the sources",
        lambda f: None,
        "conveyor_engine_kv_usage_ratio is not a metric the code exports",
        exp=exported.without("conveyor_engine_kv_usage_ratio"),
    )
    case(
        "a histogram used without a suffix",
        lambda f: first_target(f.dash).update(expr="sum(rate(conveyor_engine_step_seconds[5m]))"),
        "is a histogram",
    )
    case(
        "a suffix on a counter",
        lambda f: first_target(f.dash).update(expr="sum(rate(conveyor_engine_steps_total_bucket[5m]))"),
        "not a metric the code exports",
    )
    if promtool:
        case(
            "a dashboard query that does not parse",
            lambda f: first_target(f.dash).update(expr="sum(rate(conveyor_engine_steps_total[$__rate_interval])"),
            "promtool cannot parse",
        )
    case(
        "the datasource variable removed",
        lambda f: f.dash["templating"].__setitem__(
            "list", [v for v in f.dash["templating"]["list"] if v["name"] != "datasource"]
        ),
        "lacks the variable `datasource`",
    )
    case(
        "a panel with a fixed datasource",
        lambda f: next(p for p in all_panels(f.dash["panels"]) if p.get("targets")).update(
            datasource={"type": "prometheus", "uid": "abc123"}
        ),
        "datasource is not",
    )

    def stale_configmap(f):
        d = json.loads(f.configmap["data"][CONFIGMAP_KEY])
        d["title"] = "Old"
        f.configmap["data"][CONFIGMAP_KEY] = json.dumps(d)

    case("the ConfigMap holds an older dashboard", stale_configmap, "differs from")
    case(
        "the ConfigMap without the sidecar label",
        lambda f: f.configmap["metadata"]["labels"].pop("grafana_dashboard"),
        "grafana_dashboard",
    )

    def rename_in_rules(f):
        r = f.rules["groups"][0]["rules"][0]
        r["expr"] = r["expr"].replace("conveyor_engine_kv_usage_ratio", "conveyor_engine_kv_usage")

    case("an alert names an unknown metric", rename_in_rules, "conveyor_engine_kv_usage is not a metric")

    def threshold(f):
        r = f.prometheus_rule["spec"]["groups"][0]["rules"][0]
        r["expr"] = r["expr"].replace("0.95", "0.9")

    case("the PrometheusRule differs from the rules file", threshold, "spec.groups differ")
    case(
        "an expected alert missing",
        lambda f: f.rules["groups"][0].__setitem__(
            "rules", [r for r in f.rules["groups"][0]["rules"] if r.get("alert") != "ConveyorErrorRatio"]
        ),
        "no alert ConveyorErrorRatio",
    )
    case(
        "an alert without severity",
        lambda f: f.rules["groups"][0]["rules"][0]["labels"].pop("severity"),
        "no severity label",
    )
    if scrape is not None:
        # The samples gone, the # HELP and # TYPE lines left.
        missing = re.sub(r"^conveyor_engine_kv_usage_ratio[{ ].*\n", "", scrape, flags=re.M)
        case("a dashboard metric missing from /metrics", lambda f: None, "conveyor_engine_kv_usage_ratio", scr=missing)

    failed = 0
    for name, f, exp, scr, expect in cases:
        problems = check(f, exp, promtool, scr)
        if not any(expect in p for p in problems):
            print(f"self-test: FAIL not reported: {name} (expected {expect!r}; got {problems})")
            failed += 1
    print(f"self-test: {len(cases) - failed}/{len(cases)} breakages reported")
    return failed == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--promtool", help="promtool, to parse the dashboard's queries")
    ap.add_argument("--scrape", help="a /metrics scrape of conveyor bench")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--write", action="store_true", help="regenerate the ConfigMap and the PrometheusRule")
    args = ap.parse_args()

    if args.write:
        # The generated files may be missing or stale here: read only the sources.
        with open(os.path.join(args.root, DASHBOARD), encoding="utf-8") as f:
            dash_text = f.read()
        json.loads(dash_text)
        with open(os.path.join(args.root, RULES), encoding="utf-8") as f:
            rules = yaml.safe_load(f)
        write(args.root, dash_text, rules)
        return 0

    exported = read_exported(args.root)
    if not exported.names or not exported.histograms:
        print(f"no conveyor_ metrics found in {', '.join(SOURCE_DIRS)} under {args.root}")
        return 1
    files = Files(args.root)
    scrape = None
    if args.scrape:
        with open(args.scrape, encoding="utf-8") as f:
            scrape = f.read()
    problems = check(files, exported, args.promtool, scrape)
    for p in problems:
        print(f"check-monitoring: {p}")
    ok = not problems
    if args.self_test:
        ok = self_test(files, exported, args.promtool, scrape) and ok
    used = {exported.base_name(n) for n in files.used_metrics()}
    print(
        f"checked {len(dashboard_exprs(files.dash))} dashboard queries and "
        f"{sum(len(g['rules']) for g in files.rules['groups'])} rules: {len(used)} metrics used, "
        f"{len(exported.names)} exported ({len(exported.histograms)} histograms)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
