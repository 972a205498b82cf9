"""`lab bench` (all) at the command line: the sizes chosen and overridden reach the
suite, the report is printed, and an incomplete report ends in one line and a non-zero
exit. The suite itself is replaced (the real run is tests/integration/test_bench_suite.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from labsupport.bench import report, suite
from labsupport.cli import app
from tests.unit.test_bench_report import sections, steps

runner = CliRunner()


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    calls = {}

    def run(sizes, mode, **_):
        calls.update(sizes=sizes, mode=mode)
        return calls["report"], tmp_path

    monkeypatch.setattr(suite, "run", run)
    return calls


def _report(secs=None, stps=None):
    return report.build(secs or sections(), stps or steps(), mode="fast", machine={}, when="now")


@pytest.mark.parametrize("args, base", [([], suite.FULL), (["all"], suite.FULL), (["--fast"], suite.FAST)])
def test_bench_alone_runs_everything_at_the_chosen_sizes(fake_run, args, base):
    fake_run["report"] = _report()
    result = runner.invoke(app, ["bench", *args], prog_name="lab")
    assert result.exit_code == 0, result.output
    assert fake_run["sizes"] == base and fake_run["mode"] == ("fast" if base is suite.FAST else "full")
    assert "## Headline (ratios)" in result.stdout


def test_ladder_options_override_the_sizes(fake_run):
    fake_run["report"] = _report()
    result = runner.invoke(app, ["bench", "--fast", "--rates", "100,200", "--seconds", "2", "--trigger", "3 seconds"])
    assert result.exit_code == 0, result.output
    assert fake_run["sizes"] == suite.FAST.replace(rates=(100.0, 200.0), rung_s=2.0, trigger="3 seconds")


def test_an_incomplete_report_ends_in_one_line_naming_the_problem(fake_run, tmp_path):
    secs, stps = sections(), steps()
    secs["recovery"], stps[3]["error"] = None, "RecoveryFailed: no batch"
    fake_run["report"] = _report(secs, stps)
    result = runner.invoke(app, ["bench", "--fast"], prog_name="lab")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("lab: the bench is incomplete (recovery: RecoveryFailed: no batch)")
    assert f"read {tmp_path}/report.md" in lines[0]
    assert "## Problems" in result.stdout  # the report is printed first
