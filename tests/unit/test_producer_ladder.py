"""The pure parts of lesson 06's producer ladder: the predicted cap, the time-budgeted
chunking, the audit's tally and reading ProducerPerformance's summary. (The rungs
themselves run against the real Kafka in the lesson notebook.)"""

from __future__ import annotations

import pytest

from labsupport.config import LabConfig
from labsupport.errors import LabError, MissingTool
from labsupport.ingest import producer_ladder as ladder
from labsupport.ingest import producers


def _events(n: int) -> list[dict]:
    return [{"event_id": f"e{i}", "source_id": f"s{i % 3}"} for i in range(n)]


class FakeKafka:
    """A send(events, topic) that costs ``per_event`` seconds of a fake clock each."""

    def __init__(self, per_event: float):
        self.now, self.per_event, self.chunks = 0.0, per_event, []

    def clock(self) -> float:
        return self.now

    def send(self, events, topic):
        self.chunks.append(len(events))
        self.now += self.per_event * len(events)


def test_the_predicted_cap_is_one_linger_per_record_per_sender():
    assert ladder.predicted_cap(10) == 100
    assert ladder.predicted_cap(5, in_flight=16) == 3200


def test_every_rung_and_every_run_gets_its_own_topic():
    assert ladder.topic_for("Blocking, linger 10 ms", 1700000000) == "lesson06-blocking-linger-10-ms-1700000000"
    assert ladder.topic_for("pool ×4", 1) != ladder.topic_for("pool ×16", 1)
    assert ladder.topic_for("pool ×4", 1) != ladder.topic_for("pool ×4", 2)


def test_a_slow_rung_stops_at_its_budget_with_the_ids_it_sent():
    kafka = FakeKafka(per_event=1 / 75)  # the blocking rung: 75 events/s
    rung = ladder.measure("slow", kafka.send, _events(10_000), "t", budget_s=4, clock=kafka.clock)
    assert 3.9 <= rung.seconds <= 4.5 and rung.sent < 10_000
    assert rung.per_second == pytest.approx(75)
    assert rung.ids == tuple(f"e{i}" for i in range(rung.sent))
    assert kafka.chunks[0] == 10
    for i, chunk in enumerate(kafka.chunks[1:], 1):  # never more than 4x what was sent before it
        assert chunk <= 4 * sum(kafka.chunks[:i]), kafka.chunks


def test_a_fast_rung_sends_the_whole_sample_in_few_chunks():
    kafka = FakeKafka(per_event=1 / 300_000)
    rung = ladder.measure("fast", kafka.send, _events(20_000), "t", budget_s=4, clock=kafka.clock)
    assert rung.sent == 20_000 and rung.seconds < 0.1
    assert len(kafka.chunks) <= 6, kafka.chunks  # growth is capped at 4x what was sent so far


def test_measure_never_sends_more_than_the_sample():
    kafka = FakeKafka(per_event=0.0)  # a clock that does not move: "infinitely fast"
    rung = ladder.measure("instant", kafka.send, _events(25), "t", budget_s=1, clock=kafka.clock)
    assert rung.sent == 25 and sum(kafka.chunks) == 25


def test_the_tally_names_missing_duplicated_and_unexpected_records():
    clean = ladder.tally("t", ["a", "b", "c"], ["c", "a", "b"])
    assert clean.clean and clean.records == clean.expected == 3
    bad = ladder.tally("t", ["a", "b", "c"], ["a", "a", "a", "c", "x"])
    assert (bad.missing, bad.duplicated, bad.unexpected, bad.records) == (1, 2, 1, 5)
    assert not bad.clean


def test_ratios_are_multiples_of_the_baseline():
    slow = ladder.Rung("slow", "t1", 75, 1.0, ())
    fast = ladder.Rung("fast", "t2", 7500, 0.5, ())
    assert ladder.ratios([slow, fast], slow) == {"slow": 1.0, "fast": 200.0}


PERF_OUTPUT = """\
1572141 records sent, 314428.2 records/sec (59.97 MB/sec), 12.3 ms avg latency, 210.0 ms max latency.
2000000 records sent, 315047.3 records/sec (60.09 MB/sec), 11.81 ms avg latency, 210.00 ms max latency, \
9 ms 50th, 25 ms 95th, 41 ms 99th, 190 ms 99.9th.
"""


def test_the_last_summary_line_of_producer_performance_is_the_whole_run():
    s = ladder.parse_summary(PERF_OUTPUT)
    assert (s.records, s.per_second, s.avg_latency_ms) == (2_000_000, 315047.3, 11.81)
    with pytest.raises(LabError):
        ladder.parse_summary("Exception in thread main")


def test_missing_tools_jars_name_the_remedy(tmp_path):
    cfg = LabConfig(home=tmp_path)
    with pytest.raises(MissingTool, match="lab setup"):
        ladder.tools_classpath(cfg)
    tools = tmp_path / "jars" / "kafka-tools"
    tools.mkdir(parents=True)
    (tools / "kafka-tools-4.1.0.jar").write_bytes(b"")
    assert ladder.tools_classpath(cfg) == f"{tools.resolve()}/*"


def test_records_are_keyed_by_source_id():
    assert producers.key_of({"source_id": "sensor-0001"}) == b"sensor-0001"
    assert producers.key_of({"event_id": "x"}) is None


def test_the_ladder_figure_marks_the_seeds_rate_on_a_log_axis():
    import math

    fig = ladder.figure([ladder.Rung("slow", "t1", 75, 1.0, ()), ladder.Rung("fast", "t2", 300_000, 1.0, ())])
    assert fig.layout.yaxis.type == "log" and list(fig.data[0].y) == [75, 300_000]
    assert fig.layout.shapes[0].y0 == ladder.SEED_FIXED_RATE
    # plotly places annotations on a log axis at log10(value): the label sits on the line
    assert fig.layout.annotations[0].y == pytest.approx(math.log10(ladder.SEED_FIXED_RATE))
