"""Lesson 11's pure parts: the key's grading, the rollup's arithmetic (sum on read), its
audit's per source-minute tally, the partition sizes and the job script written from the
learner's function. No services."""

from __future__ import annotations

import ast

import pytest

from labsupport.lessons import capstone
from labsupport.lessons.audit import tally_rollup
from labsupport.lessons.rollup import MINUTE_MS, Rollup, combine, minute_of, of_events, partition_sizes

T0 = 1_764_000_000_000 - 1_764_000_000_000 % MINUTE_MS  # a minute's start


# ---- the key -----------------------------------------------------------------------------------
def test_the_lessons_key_passes():
    assert capstone.grade_key(["source_id", "day"], ["minute", "checkpoint_id", "batch_id"]) == []


@pytest.mark.parametrize("partition, clustering, says", [
    (["day"], ["source_id", "minute", "checkpoint_id", "batch_id"], "source_id is not in the partition key"),
    (["source_id"], ["minute", "checkpoint_id", "batch_id"], "grows forever"),
    (["source_id", "minute"], ["checkpoint_id", "batch_id"], "minute is in the partition key"),
    (["source_id", "day"], ["checkpoint_id", "batch_id", "minute"], "not minute"),
    (["source_id", "day"], ["minute"], "checkpoint_id and batch_id are not both in the key"),
    (["source_id", "day", "batch_id"], ["minute", "checkpoint_id"], "in the partition key: one source-minute"),
    (["source_id", "day"], [], "missing, not minute"),
])
def test_each_wrong_key_is_named(partition, clustering, says):
    problems = capstone.grade_key(partition, clustering)
    assert any(says in p for p in problems), problems


# ---- the arithmetic ------------------------------------------------------------------------------
def test_a_rollup_adds_events_and_keeps_the_extremes():
    r = Rollup().add(3.0).add(-1.5).add(None).add(10.0)
    assert (r.events, r.value_min, r.value_max, r.value_sum) == (4, -1.5, 10.0, 11.5)
    assert r.value_avg == pytest.approx(11.5 / 4)
    assert Rollup().value_avg is None and Rollup().add(None).value_min is None


def test_of_events_groups_by_source_and_minute():
    truth = of_events([("a", T0 + 5, 1.0), ("a", T0 + 59_999, 2.0), ("a", T0 + MINUTE_MS, 7.0), ("b", T0, 4.0)])
    assert truth == {("a", T0): Rollup(2, 1.0, 2.0, 3.0), ("a", T0 + MINUTE_MS): Rollup(1, 7.0, 7.0, 7.0),
                     ("b", T0): Rollup(1, 4.0, 4.0, 4.0)}
    assert minute_of(T0 + 61_000) == T0 + MINUTE_MS


def test_per_batch_rows_sum_on_read_to_the_whole_minute():
    events = [("a", T0 + i * 1000, float(i)) for i in range(10)]
    whole = of_events(events)[("a", T0)]
    first, second = of_events(events[:4])[("a", T0)], of_events(events[4:])[("a", T0)]
    assert combine([("a", T0, first), ("a", T0, second)]) == {("a", T0): whole}


# ---- the audit ------------------------------------------------------------------------------------
def _truth():
    return of_events([("a", T0 + i * 1000, float(i)) for i in range(6)] + [("b", T0 + MINUTE_MS, 5.0)])


def test_a_replayed_batch_that_overwrote_its_rows_is_clean():
    truth = _truth()
    rows = [("a", T0, Rollup(3, 0.0, 2.0, 3.0)), ("a", T0, Rollup(3, 3.0, 5.0, 12.0)),
            ("b", T0 + MINUTE_MS, Rollup(1, 5.0, 5.0, 5.0))]
    report = tally_rollup(truth, rows)
    assert report.clean and (report.events, report.counted, report.rows, report.source_minutes) == (7, 7, 3, 2)


def test_a_batch_added_twice_is_counted_twice_and_a_lost_one_missing_per_minute():
    truth = _truth()
    twice = [("a", T0, Rollup(3, 0.0, 2.0, 3.0))] * 2 + [("a", T0, Rollup(3, 3.0, 5.0, 12.0))]
    report = tally_rollup(truth, twice)  # b's minute lost, a's first batch counted again: never netted
    assert (report.counted_twice, report.missing, report.clean) == (3, 1, False)


def test_wrong_values_and_unexpected_minutes_are_found():
    truth = _truth()
    rows = [("a", T0, Rollup(6, 0.0, 5.0, 99.0)), ("b", T0 + MINUTE_MS, Rollup(1, 5.0, 5.0, 5.0)),
            ("c", T0, Rollup(2, 1.0, 1.0, 2.0))]
    report = tally_rollup(truth, rows)
    assert (report.wrong_values, report.unexpected, report.counted_twice, report.missing) == (1, 1, 2, 0)
    assert "1 with wrong min/max/sum" in str(report)


def test_float_sums_in_another_order_are_the_same_values():
    values = [0.1 * i for i in range(1, 30)]
    forward = of_events([("a", T0 + i, v) for i, v in enumerate(values)])[("a", T0)]
    backward = Rollup()
    for v in reversed(values):
        backward = backward.add(v)
    assert forward.same_values(backward)


# ---- sizes ---------------------------------------------------------------------------------------
def test_partition_sizes_by_any_key():
    rows = [{"source_id": s, "day": "d1", "minute": m} for s in ("a", "b") for m in range(3)] + \
           [{"source_id": "a", "day": "d2", "minute": 0}]
    by_source_day = partition_sizes(rows, lambda r: (r["source_id"], r["day"]))
    assert (by_source_day.partitions, by_source_day.rows, by_source_day.max_rows) == (3, 7, 3)
    assert partition_sizes(rows, lambda r: r["day"]).max_rows == 6
    assert partition_sizes([], lambda r: r).mean_rows == 0.0


def test_a_day_of_a_partition_is_extrapolated_from_the_minutes_measured():
    sizes = capstone.TableSizes({"(source_id, day)": partition_sizes([{"k": 1}] * 10, lambda r: r["k"])}, 5)
    assert sizes.per_day("(source_id, day)") == 10 * 1440 / 5


# ---- the script ----------------------------------------------------------------------------------
def learner_job(job):
    """A stand-in for the notebook's function."""
    return job.topic


def test_the_script_holds_the_function_as_typed_and_runs_it(tmp_path):
    script = capstone.write_job(tmp_path / "work" / "rollup_job.py", learner_job)
    text = script.read_text()
    tree = ast.parse(text)
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["learner_job"]
    assert 'learner_job(JobContext.from_env())' in text and "return job.topic" in text


# ---- the checkpoint, read for the kill ---------------------------------------------------------------
def test_a_batch_is_in_flight_between_its_offsets_and_its_commit(tmp_path):
    (tmp_path / "offsets").mkdir()
    (tmp_path / "commits").mkdir()
    assert capstone.batch_in_flight(tmp_path) is None and capstone.committed_through(tmp_path) is None
    (tmp_path / "offsets" / "0").write_text("v1\n{}\n")
    assert capstone.batch_in_flight(tmp_path) == 0  # planned, not committed: batch 0 counts (not falsy)
    (tmp_path / "commits" / "0").write_text("v1\n{}\n")
    (tmp_path / "offsets" / "1").write_text("v1\n{}\n")
    (tmp_path / "offsets" / ".1.crc").write_text("")
    assert capstone.batch_in_flight(tmp_path) == 1 and capstone.committed_through(tmp_path) == 0
    (tmp_path / "commits" / "1").write_text("v1\n{}\n")
    assert capstone.batch_in_flight(tmp_path) is None and capstone.committed_through(tmp_path) == 1
