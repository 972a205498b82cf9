"""Lesson 08's arithmetic and the stream's consumer-lag gauge: pure logic, no services."""

import json
import math
from types import SimpleNamespace

from labsupport.lessons import bursts
from labsupport.stream.metrics import StreamMetrics
from labsupport.stream.offsets import offset_lag


def test_drain_time_is_the_backlog_over_the_caps_rate_less_what_keeps_arriving():
    assert bursts.predicted_drain_s(30_000, 2_000, 2) == 30
    assert bursts.predicted_drain_s(10_000, 1_000, 2, incoming_eps=100) == 25
    assert bursts.predicted_drain_s(10_000, 100, 2, incoming_eps=50) == math.inf  # never drains


def _offsets_file(ts_ms, ends):
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": ts_ms, "conf": {}}
    return "\n".join(["v1", json.dumps(meta), json.dumps({"t": {str(p): o for p, o in ends.items()}})])


def test_an_offsets_file_gives_the_trigger_time_and_end_offsets():
    assert bursts.parse_offsets_file(_offsets_file(1_500, {0: 7, 1: 9})) == (1.5, {0: 7, 1: 9})


def test_rows_per_batch_are_differences_of_consecutive_end_offsets():
    planned = {0: (10.0, {0: 3, 1: 2}), 1: (12.0, {0: 503, 1: 502}), 2: (14.0, {0: 510, 1: 505})}
    batches = bursts.batches_from(planned, {0: 11.0, 1: 13.5})
    assert [b.rows for b in batches] == [5, 1000, 10]
    assert batches[1].start == {0: 3, 1: 2} and batches[1].seconds == 1.5
    assert batches[2].committed_at is None and batches[2].seconds is None


def test_burst_batches_are_those_overlapping_the_bursts_offsets():
    planned = {0: (0.0, {0: 10}), 1: (2.0, {0: 600}), 2: (4.0, {0: 1010}), 3: (6.0, {0: 1020})}
    batches = bursts.batches_from(planned, {0: 1.0, 1: 3.0, 2: 5.0, 3: 7.0})
    before, after = {0: 10}, {0: 1010}
    assert [bursts.overlaps(b, before, after) for b in batches] == [False, True, True, False]
    assert [bursts.reaches(b, after) for b in batches] == [False, False, True, True]
    run = bursts.BurstRun("r", 500, 2, 0, 1000, before_burst=before, after_burst=after, published_at=1.5,
                          drained_at=5.0, batches=batches)
    assert [b.id for b in run.burst_batches] == [1, 2]
    assert run.first_rows_s == 1.5 and run.drain_s == 3.5 and run.max_rows == 590


def _source(latest, end):
    return SimpleNamespace(latestOffset=json.dumps(latest), endOffset=json.dumps(end))


def test_offset_lag_is_latest_minus_end_summed_per_topic():
    sources = [_source({"a": {"0": 100, "1": 50}, "b": {"0": 7}}, {"a": {"0": 40, "1": 50}, "b": {"0": 7}})]
    assert offset_lag(sources) == {"a": 60, "b": 0}
    assert offset_lag([SimpleNamespace(latestOffset=None, endOffset="{}")]) == {}


def test_the_lag_gauge_exists_at_zero_once_the_topic_is_read_and_follows_the_batches():
    m = StreamMetrics("q")
    m.reads("t")
    assert m.value("consumer_lag_offsets", topic="t") == 0
    assert m.value("query_source_info", topic="t") == 1
    m.lag({"t": 4_000})
    assert m.value("consumer_lag_offsets", topic="t") == 4_000
