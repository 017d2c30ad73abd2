#!/usr/bin/env python3
"""The Python half of deploy/observability-check.sh (standard library only).

  observability-check.py validate
      The Grafana dashboard is well-formed dashboard JSON whose every panel and query names a data source that the
      provisioning files provide, laid out on Grafana's 24-column grid without overlaps.
  observability-check.py evaluate PROMETHEUS_URL PSQL_COMMAND...
      Every PromQL expression of the dashboard (panels and variables) and of the alert rules Prometheus has loaded, and
      every SQL query of the dashboard (run with PSQL_COMMAND), returns at least one series or row now. Alert
      expressions are evaluated with `bool` after each comparison: the question is whether the series they read
      exist, not whether the alert fires.
"""
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "batch-gateway.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml"
# what Grafana's variables stand for during the check: $__rate_interval is four scrape intervals of the check's
# Prometheus at least, and $instance is every instance
RATE_INTERVAL = "30s"


def fail(message):
    print(f"observability-check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def provisioned_datasources():
    """(type, uid) of each data source in the provisioning file, read line by line (no YAML parser needed)."""
    sources, current = [], {}
    for line in DATASOURCES.read_text().splitlines():
        if re.match(r"^\s*- name:", line):
            current = {}
            sources.append(current)
        match = re.match(r"^\s{4}(type|uid):\s*(\S+)", line)
        if match:
            current[match.group(1)] = match.group(2)
    return [(source.get("type"), source.get("uid")) for source in sources]


def dashboard_panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def validate():
    dashboard = json.loads(DASHBOARD.read_text())
    problems = []
    for key, kind in [("uid", str), ("title", str), ("schemaVersion", int), ("panels", list), ("templating", dict),
                      ("time", dict)]:
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"dashboard.{key} missing or not a {kind.__name__}")
    if "id" in dashboard and dashboard["id"] is not None:
        problems.append("dashboard.id must be null in a provisioned dashboard")
    provisioned = provisioned_datasources()
    uids = {uid: kind for kind, uid in provisioned}
    if len(provisioned) < 2 or None in uids or None in uids.values():
        problems.append(f"{DATASOURCES.name}: expected data sources with a type and a uid, found {provisioned}")
    # datasource variables: ${name} stands for a data source of the variable's type, provisioned by default
    variables = {}
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "datasource":
            kind = variable.get("query")
            if kind not in uids.values():
                problems.append(f"variable {variable['name']}: no provisioned data source of type {kind}")
            default = variable.get("current", {}).get("value")
            if uids.get(default) != kind:
                problems.append(f"variable {variable['name']}: its default {default} is not a provisioned {kind}")
            variables["${" + variable["name"] + "}"] = kind

    def check_reference(where, reference):
        if not isinstance(reference, dict) or "uid" not in reference or "type" not in reference:
            problems.append(f"{where}: no datasource {{type, uid}}")
            return None
        kind = variables.get(reference["uid"], uids.get(reference["uid"]))
        if kind is None:
            problems.append(f"{where}: data source {reference['uid']} is neither a variable nor provisioned")
        elif kind != reference["type"]:
            problems.append(f"{where}: data source {reference['uid']} is a {kind}, not a {reference['type']}")
        return kind

    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            check_reference(f"variable {variable['name']}", variable.get("datasource"))
    ids, cells, queries = set(), {}, 0
    for panel in dashboard_panels(dashboard):
        where = f"panel {panel.get('id')} ({panel.get('title')})"
        if not isinstance(panel.get("id"), int) or panel["id"] in ids:
            problems.append(f"{where}: id missing or not unique")
        ids.add(panel.get("id"))
        if not panel.get("type") or not panel.get("title"):
            problems.append(f"{where}: type or title missing")
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(key), int) for key in "hwxy") or grid["x"] + grid["w"] > 24 or grid["w"] < 1:
            problems.append(f"{where}: gridPos {grid} is not on the 24-column grid")
            continue
        for row in range(grid["y"], grid["y"] + grid["h"]):
            for column in range(grid["x"], grid["x"] + grid["w"]):
                if (row, column) in cells:
                    problems.append(f"{where}: overlaps panel {cells[(row, column)]}")
                    break
                cells[(row, column)] = panel["id"]
        if panel["type"] == "row":
            continue
        if not panel.get("description"):
            problems.append(f"{where}: no description (what the panel answers)")
        panel_kind = check_reference(where, panel.get("datasource"))
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        ref_ids = [target.get("refId") for target in targets]
        if None in ref_ids or len(set(ref_ids)) != len(ref_ids):
            problems.append(f"{where}: refIds missing or repeated: {ref_ids}")
        for target in targets:
            kind = check_reference(f"{where} query {target.get('refId')}", target.get("datasource"))
            if kind != panel_kind:
                problems.append(f"{where} query {target.get('refId')}: another data source type than its panel's")
            field = "expr" if kind == "prometheus" else "rawSql"
            if not isinstance(target.get(field), str) or not target[field].strip():
                problems.append(f"{where} query {target.get('refId')}: no {field}")
            queries += 1
    if problems:
        fail("the dashboard is not valid:\n  " + "\n  ".join(problems))
    print(f"{DASHBOARD.relative_to(DEPLOY.parent)}: valid Grafana dashboard JSON, {len(ids)} panels, {queries} queries, "
          f"data sources {sorted(set(variables.values()))} provisioned by {DATASOURCES.relative_to(DEPLOY.parent)}")


def grafana_to_promql(expr):
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace('=~"$instance"', '=~".*"')


def with_bool(expr):
    """Every comparison outside label matchers, strings and ranges as `op bool`: a 0/1 series wherever one is read."""
    out, depth_brace, depth_bracket, quote, i = [], 0, 0, None, 0
    while i < len(expr):
        char = expr[i]
        if quote:
            out.append(char)
            if char == "\\":
                out.append(expr[i + 1])
                i += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            out.append(char)
        elif char in "{[":
            depth_brace += char == "{"
            depth_bracket += char == "["
            out.append(char)
        elif char in "}]":
            depth_brace -= char == "}"
            depth_bracket -= char == "]"
            out.append(char)
        elif depth_brace == 0 and depth_bracket == 0 and char in "=!<>" and expr[i:i + 2] in ("==", "!=", ">=", "<="):
            out.append(expr[i:i + 2] + " bool")
            i += 1
        elif depth_brace == 0 and depth_bracket == 0 and char in "<>":
            out.append(char + " bool")
        else:
            out.append(char)
        i += 1
    return re.sub(r"bool\s+bool", "bool", "".join(out))


def query(prometheus, promql):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as error:
        body = json.load(error)
    if body.get("status") != "success":
        return None, body.get("error", str(body))
    return body["data"]["result"], None


def evaluate(prometheus, psql):
    dashboard = json.loads(DASHBOARD.read_text())
    checks = []  # (where, language, query as written, query as run)
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            definition = variable["definition"]
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition)
            if not match:
                fail(f"variable {variable['name']}: only label_values(metric, label) is checked, not {definition}")
            checks.append((f"variable ${variable['name']}", "promql", definition,
                           f"count by ({match.group(2)}) ({match.group(1)})"))
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets") or []:
            where = f"panel \"{panel['title']}\" {target['refId']}"
            if "expr" in target:
                checks.append((where, "promql", target["expr"], grafana_to_promql(target["expr"])))
            else:
                # Grafana's macros for the last hour, as Grafana would expand them
                sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 > now() - interval '1 hour'", target["rawSql"])
                sql = sql.replace("$__timeFrom()", "(now() - interval '1 hour')").replace("$__timeTo()", "now()")
                if "$__" in sql:
                    fail(f"{where}: a Grafana macro this check does not expand: {sql}")
                checks.append((where, "sql", target["rawSql"], sql))
    rules, error = None, None
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=30) as answer:
        groups = json.load(answer)["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    if not rules:
        fail("Prometheus has loaded no alert rules")
    for rule in rules:
        checks.append((f"alert {rule['name']}", "promql", rule["query"], with_bool(rule["query"])))

    empty = 0
    for where, language, written, run in checks:
        if language == "promql":
            result, error = query(prometheus, run)
            count = len(result) if result is not None else 0
            sample = ""
            if result:
                value = result[0].get("value", [None, "?"])[1]
                labels = {k: v for k, v in result[0]["metric"].items() if k not in ("job", "instance")}
                sample = f"e.g. {labels or '{}'} = {value}"
        else:
            answer = subprocess.run(psql + ["-c", run], capture_output=True, text=True)
            error = answer.stderr.strip() if answer.returncode != 0 else None
            lines = [line for line in answer.stdout.splitlines() if line.strip()]
            count = len(lines)
            sample = f"e.g. {lines[0]}" if lines else ""
        status = "ok" if count and not error else "NO DATA"
        empty += status != "ok"
        print(f"{status:7} {count:4} {'rows' if language == 'sql' else 'series'}  {where}  {sample}"[:220])
        if status != "ok":
            print(f"          as written: {' '.join(written.split())}")
            print(f"          as run:     {' '.join(run.split())}" + (f"\n          error: {error}" if error else ""))
    print(f"{len(checks)} queries ({sum(1 for c in checks if c[0].startswith('alert'))} alert rules), "
          f"{len(checks) - empty} with data, {empty} without")
    if empty:
        fail(f"{empty} queries returned no data (a renamed or missing metric blanks a panel or silences an alert)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["validate"]:
        validate()
    elif sys.argv[1:2] == ["evaluate"] and len(sys.argv) >= 4:
        evaluate(sys.argv[2].rstrip("/"), sys.argv[3:])
    else:
        fail(__doc__)
