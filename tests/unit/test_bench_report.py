"""`lab bench`'s report logic: every figure present, ratios computed from the figures,
the accounting checked against what the steps claim, a step over its bound marked, and
the files written. Pure logic on made-up sections (the real run is
tests/integration/test_bench_suite.py)."""

from __future__ import annotations

import copy
import json

import pytest

from labsupport.bench import producer_rungs as rungs, report, suite
from labsupport.ingest.producer_ladder import SEED_FIXED_RATE


def _rung(name, per_second, records=1000):
    return {"name": name, "records": records, "seconds": records / per_second, "per_second": per_second,
            "in_topic": records}


def _e2e_rung(rate, throughput, sustained, p50=1.5, p99=3.0):
    return {"target_rate": rate, "sent": rate * 4, "landed": rate * 4, "throughput": throughput,
            "sustained": sustained, "latency_s": {"p50": p50, "p99": p99, "max": p99 + 1},
            "rows_per_batch": 100, "foreach_batch_s": {"handover": 0.1, "write": 0.2}, "cpu": {"cores_busy": 1.0}}


def sections():
    return {
        "producers": {"rungs": [_rung(rungs.BLOCKING, 90), _rung(rungs.SEED_FIX, 1400), _rung(rungs.BATCHED, 12000),
                                _rung(rungs.LIBRDKAFKA, 60000), _rung(rungs.JAVA, 250000)]},
        "sink_ceiling": {"both_tables": {"rows": 2000, "seconds": [0.1], "written": [2000], "events_per_s": 20000},
                         "one_table": {"rows": 2000, "seconds": [0.05], "written": [2000], "events_per_s": 40000}},
        "end_to_end": {"rungs": [_e2e_rung(4000, 4010, True, p50=2.0, p99=3.5), _e2e_rung(6000, 5500, False)],
                       "burst": {**_e2e_rung(40000, 7000, False), "catch_up_s": 12.5, "factor": 10}},
        "recovery": {"seconds": 31.4, "until": "first committed batch", "service_was": "stopped",
                     "phases_s": {"process_up": 0.2, "metrics_up": 12.0, "query_active": 6.0, "first_batch": 13.2}},
    }


def steps(seconds=(10.0, 5.0, 60.0, 40.0), bounds=(60, 60, 180, 180)):
    return [{"name": n, "seconds": s, "bound_s": b, "over_bound": s > b, "error": None}
            for n, s, b in zip(suite.STEPS, seconds, bounds)]


def build(secs=None, stps=None):
    return report.build(secs or sections(), stps or steps(), mode="fast", machine={"cpus": 2}, when="now",
                        services_running=["kafka"])


def test_a_full_run_has_every_figure_and_no_problem():
    r = build()
    assert set(r["figures"]) == set(report.FIGURES)
    assert r["problems"] == {"missing": [], "inconsistent": [], "over_bound": [], "failed": []}
    assert r["complete"] is True


def test_the_headline_is_ratios_of_the_figures():
    r = build()
    h = r["headline"]
    assert h["end_to_end_over_sink_ceiling"] == round(4010 / 20000, 3)   # the best sustained rung, not 5,500
    assert h["fixed_over_blocking_producer"] == round(12000 / 90, 3)
    assert h["seed_fix_over_blocking_producer"] == round(1400 / 90, 3)
    assert h["fixed_producer_over_seed"] == round(12000 / SEED_FIXED_RATE, 3)
    assert h["end_to_end_over_seed"] == round(4010 / SEED_FIXED_RATE, 3)
    assert h["one_table_over_both_tables"] == 2.0
    assert r["figures"]["end_to_end_p99_s"] == 3.5 and r["figures"]["burst_drain_s"] == 12.5


def test_without_a_sustained_rung_the_headline_quotes_the_capacity():
    secs = sections()
    for rung in secs["end_to_end"]["rungs"]:
        rung["sustained"] = False
    r = build(secs)
    assert r["figures"]["end_to_end_per_s"] == 5500
    assert r["end_to_end_basis"].startswith("no rung was sustained") and "6,000/s" in r["end_to_end_basis"]
    assert build()["end_to_end_basis"] == "the best sustained rung (4,000/s in)"


@pytest.mark.parametrize("drop", ["producers", "sink_ceiling", "end_to_end", "recovery"])
def test_a_step_without_its_section_leaves_its_figures_missing_and_ratios_none(drop):
    secs = sections()
    secs[drop] = None
    r = build(secs)
    missing = r["problems"]["missing"]
    assert missing and all(report.FIGURES[name][0] == drop for name in missing)
    assert set(missing) == {n for n, (step, _) in report.FIGURES.items() if step == drop}
    for name, (num, den, _) in report.RATIOS.items():
        if num in missing or den in missing:
            assert r["headline"][name] is None
    assert r["complete"] is False


def test_a_zero_or_absent_figure_is_missing_and_a_zero_drain_is_not():
    secs = sections()
    secs["producers"]["rungs"][0]["per_second"] = 0.0
    secs["end_to_end"]["burst"]["catch_up_s"] = 0.0
    r = build(secs)
    assert r["problems"]["missing"] == ["producer_blocking_per_s"]
    assert r["headline"]["fixed_over_blocking_producer"] is None


def test_a_ratio_not_computed_from_the_figures_is_inconsistent():
    r = build()
    r["headline"]["fixed_over_blocking_producer"] *= 2
    found = report.problems(r)
    assert any("fixed_over_blocking_producer" in p for p in found["inconsistent"])
    assert not report.complete(found)


def test_a_figure_that_is_not_what_its_section_says_is_inconsistent():
    r = build()
    r["figures"]["recovery_s"] = 5.0
    assert any("recovery_s" in p for p in report.problems(r)["inconsistent"])


def test_records_missing_from_a_topic_or_a_table_are_inconsistent():
    secs = sections()
    secs["producers"]["rungs"][2]["in_topic"] = 999
    secs["sink_ceiling"]["one_table"]["written"] = [1990]
    secs["end_to_end"]["burst"]["landed"] -= 1
    found = build(secs)["problems"]["inconsistent"]
    assert len(found) == 3, found
    assert any(rungs.BATCHED in p for p in found) and any("one_table" in p for p in found)


def test_a_step_over_its_bound_is_marked_and_a_wrong_mark_is_inconsistent():
    r = build(stps=steps(seconds=(10.0, 5.0, 200.0, 40.0)))
    assert r["problems"]["over_bound"] == ["end_to_end: 200 s, bound 180 s"]
    assert r["complete"] is True  # marked, not a gap: its figures were measured
    r["steps"][2]["over_bound"] = False
    assert any("end_to_end" in p for p in report.problems(r)["inconsistent"])


def test_timed_step_measures_marks_and_survives_a_failing_step():
    ticks = iter([0.0, 75.0, 100.0, 101.0])
    said = []
    step, section = suite.timed_step("producers", 60, lambda: {"ok": 1}, said.append, clock=lambda: next(ticks))
    assert section == {"ok": 1} and step == {"name": "producers", "seconds": 75.0, "bound_s": 60,
                                             "over_bound": True, "error": None}

    def boom():
        raise RuntimeError("kafka went away\nmore")

    step, section = suite.timed_step("recovery", 60, boom, said.append, clock=lambda: next(ticks))
    assert section is None and step["error"] == "RuntimeError: kafka went away" and step["over_bound"] is False
    assert any("FAILED" in line for line in said)


def test_a_failed_step_makes_the_report_incomplete():
    stps = steps()
    stps[3]["error"] = "RecoveryFailed: no batch"
    secs = sections()
    secs["recovery"] = None
    r = build(secs, stps)
    assert r["problems"]["failed"] == ["recovery: RecoveryFailed: no batch"] and not r["complete"]


def test_the_files_hold_the_report_the_table_every_figure_and_the_plots(tmp_path):
    r = build()
    report.write(r, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["headline"] == r["headline"]
    md = (tmp_path / "report.md").read_text()
    for name in [*report.FIGURES, *report.RATIOS.values()]:
        assert (name if isinstance(name, str) else name[2]) in md
    assert "| 4,000 | 4,010 |" in md  # the ladder table
    assert r["plots"] == ["producers.png", "stages.png", "ladder.png"]
    for png in r["plots"]:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_figure_shows_in_the_markdown():
    secs = copy.deepcopy(sections())
    secs["recovery"] = None
    md = report.markdown({**build(secs), "plots": []})
    assert "**missing**" in md and "missing: recovery_s" in md


def test_fast_sizes_are_smaller_than_full_ones_and_every_step_has_a_bound():
    for sizes in (suite.FAST, suite.FULL):
        assert set(sizes.bounds_s) == set(suite.STEPS)
    for f in ("producer_budget_s", "producer_sample", "java_records", "sink_rows", "rung_s", "burst_s"):
        assert getattr(suite.FAST, f) < getattr(suite.FULL, f), f
    assert sum(suite.FAST.bounds_s.values()) < sum(suite.FULL.bounds_s.values())


@pytest.mark.parametrize("busy,warned", [(0.3, False), (0.9, True)])
def test_the_report_says_how_busy_the_machine_was_and_warns_when_it_was_not_quiet(busy, warned):
    r = report.build(sections(), steps(), mode="full", machine={"cpus": 2, "cores_busy_before": busy}, when="now",
                     services_running=["kafka"])
    md = report.markdown(r)
    assert f"Before the run, {busy:.2f} of 2 cores were busy" in md
    assert ("not a quiet machine" in md) is warned
