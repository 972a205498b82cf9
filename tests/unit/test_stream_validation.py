"""Validation rules, run in a local Spark session on a batch DataFrame (no services)."""

from __future__ import annotations

import json
import time

import pytest

from labsupport.events import Profile, make_event
from labsupport.times import iso_ms
from labsupport.stream.keys import bucket_of, shard_of
from labsupport.stream.settings import StreamSettings
from labsupport.stream.validation import REASONS, parse


@pytest.fixture(scope="module")
def spark():
    """An in-process session; it takes a free UI port, never the `stream` service's."""
    from labsupport.stream.job import spark_session

    session = spark_session(app_name="streamlab-unit")
    yield session
    session.stop()


def test_each_bad_record_gets_its_reason_and_good_ones_none(spark):
    from datetime import datetime, timezone

    now_ms = int(time.time() * 1000)
    good = make_event(Profile(), now_ms // 1000, 0, 1)

    def ev(**ch):
        e = {**good, **ch}
        return json.dumps({k: v for k, v in e.items() if v is not ...})

    day = 86_400_000
    cases = [(b"k", ev(), None), (None, ev(), "null_key"), (b"k", ev(payload="x" * 5000), "oversized"),
             (b"k", "{oops", "malformed_json"), (b"k", "[1, 2]", "malformed_json"),
             (b"k", ev(value="warm"), "wrong_type"), (b"k", ev(event_time="noon"), "wrong_type"),
             (b"k", ev(event_id=...), "missing_field"),
             (b"k", ev(event_time=iso_ms(now_ms + day)), "event_time_future"),
             (b"k", ev(event_time=iso_ms(now_ms - 30 * day)), "event_time_past")]
    assert {c[2] for c in cases} - {None} == set(REASONS)
    rows = [(k, v.encode(), "t", 0, i, datetime.now(timezone.utc)) for i, (k, v, _) in enumerate(cases)]
    df = spark.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset long, "
                                     "timestamp timestamp")
    out = {r.kafka_offset: r for r in parse(df, StreamSettings()).collect()}
    assert [out[i].reason for i in range(len(cases))] == [c[2] for c in cases]
    ok = out[0]
    t = datetime.fromtimestamp(ok.event_ms / 1000, timezone.utc)
    assert (ok.bucket, ok.shard) == (bucket_of(t), shard_of(good["source_id"], 4))  # JVM and Python agree
    assert json.loads(ok.payload) == good["payload"]
