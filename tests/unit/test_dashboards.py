"""Dashboard JSON, PromQL and Prometheus configs, checked with Prometheus' own tools."""

import re
import shutil
import subprocess

import pytest
import yaml

from labsupport.observe import dashboards, lint, panels
from labsupport.config import REPO_ROOT, LabConfig
from labsupport.stack.services.prometheus import render_config


def test_every_panel_has_queries_and_a_stable_id():
    ps = dashboards.panels()
    assert len(ps) >= 10
    assert all(p.targets for p in ps)
    assert len({(p.dashboard_uid, p.id) for p in ps}) == len(ps)


def test_every_dashboard_expression_parses_with_promtool(tmp_path):
    """promtool parses each expression as a recording rule: a PromQL typo fails here."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"lab:check:{i}", "expr": t.expr}
        for i, t in enumerate(t for p in dashboards.panels() for t in p.targets)]}]}
    f = tmp_path / "rules.yml"
    f.write_text(yaml.safe_dump(rules))
    out = subprocess.run([shutil.which("promtool") or "promtool", "check", "rules", str(f)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("backend", ["local", "compose"])
def test_generated_prometheus_config_passes_promtool(tmp_path, backend):
    cfg = LabConfig.from_env({}, backend=backend, home=tmp_path)
    f = tmp_path / "prometheus.yml"
    f.write_text(yaml.safe_dump(render_config(cfg)))
    out = subprocess.run(["promtool", "check", "config", str(f)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("expr,names", [
    ('rate(kafka_server_brokertopicmetrics_messagesin_total{job="kafka",topic=""}[1m])',
     {"kafka_server_brokertopicmetrics_messagesin_total"}),
    ('histogram_quantile(0.95, sum by (le) (rate(batch_duration_seconds_bucket{job="stream"}[5m])))',
     {"batch_duration_seconds_bucket"}),
    ('sum by (reason) (quarantined_total) / ignoring(reason) group_left up', {"quarantined_total", "up"}),
    ('max_over_time((sum(rate(x_total[1m])))[15m:5s])', {"x_total"}),
])
def test_linter_extracts_metric_names(expr, names):
    assert lint.metric_names_in(expr) == names


def test_legend_format_uses_labels():
    assert panels.legend("{{reason}}", {"reason": "too_large"}) == "too_large"
    assert panels.legend("", {"__name__": "x", "job": "kafka"}) == "job=kafka"


def test_the_linter_sees_the_pipeline_views_queries_too():
    """Every PromQL query the lab shows is where `lab lint-metrics` checks it."""
    from labsupport.observe import lint, pipeline_stats

    shipped = [t.expr for p in lint.shipped_panels() for t in p.targets]
    assert set(pipeline_stats.queries().values()) <= set(shipped)
    assert all(lint.metric_names_in(expr) for expr in pipeline_stats.queries().values())


def _exporter_name_patterns(rules_file) -> list[str]:
    """The metric names a JMX exporter rules file can export, as regexes: each rule's
    ``name`` (a ``$n`` stands for a captured group, lowercased by lowercaseOutputName),
    with ``_total`` for a COUNTER (the agent's naming rule, see the file's header)."""
    rules = yaml.safe_load(rules_file.read_text())["rules"]
    return [re.sub(r"\\\$\d+", "[a-z0-9_]+", re.escape(r["name"].lower()))
            + ("_total" if r.get("type") == "COUNTER" else "") for r in rules if "name" in r]


@pytest.mark.parametrize("prefix,rules", [("cassandra_", "cassandra.yml"), ("kafka_", "kafka.yml")])
def test_every_jmx_metric_a_panel_names_is_one_the_rules_export(prefix, rules):
    """A panel on a name the exporter never emits stays empty with no error anywhere:
    caught here, before a stack runs (`lab lint-metrics` checks the running one)."""
    patterns = _exporter_name_patterns(REPO_ROOT / "stack" / "jmx" / rules)
    named = {n for p in lint.shipped_panels() for t in p.targets for n in lint.metric_names_in(t.expr)
             if n.startswith(prefix)}
    assert named
    assert [n for n in sorted(named) if not any(re.fullmatch(p, n) for p in patterns)] == []


def test_per_node_panels_draw_one_line_per_node():
    """Issue 25: a per-node panel groups by the `service` label every Cassandra target
    carries (`cassandra` on one node, `cassandra-1..N` on a ring) and names each line
    by it, so the same panel serves both layouts."""
    per_node = [p for p in dashboards.panels() if p.title.lower().endswith(("per node", "per node (ms)"))]
    assert {p.title for p in per_node} >= {"Writes/s per node", "Write latency p99 per node (ms)",
                                          "Pending compactions per node"}
    for p in per_node:
        assert [t.legend for t in p.targets] == ["{{service}}"], p.title
        assert all("by (service)" in t.expr for t in p.targets), p.title


def test_the_pipeline_view_tells_a_ring_with_a_node_down_from_one_that_is_down():
    from labsupport.observe.pipeline_stats import nodes_health

    assert nodes_health(1, 1) == "up"
    assert nodes_health(3, 3) == "up"
    assert nodes_health(2, 3) == "2 of 3 up"  # RF 3 still takes quorum writes: not DOWN
    assert nodes_health(0, 3) == "DOWN"
    assert nodes_health(0, 0) == "DOWN"  # no target scraped at all
