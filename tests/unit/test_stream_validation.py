"""Validation rules, run in a local Spark session on a batch DataFrame (no services).

Every kind of record a hostile producer can send, each with the reason it must be
quarantined for; and the whole batch must cross to pandas (``toPandas``) without error."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from labsupport.events import Profile, make_event
from labsupport.stream.keys import bucket_of, shard_of
from labsupport.stream.settings import StreamSettings
from labsupport.stream.validation import MAX_RAW_STORED, REASONS, parse
from labsupport.times import iso_ms

NOW_MS = int(time.time() * 1000)
DAY = 86_400_000
GOOD = make_event(Profile(), NOW_MS // 1000, 0, 1)


def ev(**changes) -> bytes:
    """The good event with fields changed (``...`` removes one), as JSON bytes."""
    e = {**GOOD, **changes}
    return json.dumps({k: v for k, v in e.items() if v is not ...}).encode()


def spliced(text: str) -> bytes:
    """The good event's JSON with ``text`` put in front of its fields, byte for byte."""
    return ("{" + text + ", " + ev().decode()[1:]).encode()


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


#: (key, value, record timestamp ms or None for now, expected reason or None for a good event)
CASES = [
    (b"k", ev(), None, None),
    (b"k", ev(payload=...), None, None),                     # payload is optional
    (b"k", ev(payload=None), None, None),
    (b"k", ev(value=21), None, None),                        # an integer is a number
    (b"k", ev(extra={"x": [1, 2]}), None, None),             # unknown fields are ignored
    (b"k", ev(event_time=iso_ms(NOW_MS)[:-1] + "+00:00"), None, None),
    (None, ev(), None, "null_key"),
    (b"\xff\xfe\xfa", ev(), None, "invalid_key"),
    (b"k", None, None, "tombstone"),
    (b"k", b"", None, "empty_value"),
    (b"k", b" \n\t ", None, "empty_value"),
    (b"k", ev(payload={"pad": "x" * 5000}), None, "oversized"),
    (b"k", b" " * 10_000, None, "oversized"),
    (b"k", b"\xff\xfe\xfa", None, "invalid_utf8"),
    (b"k", ev().replace(b'"sensor-', b'"\xc3\x28sensor-'), None, "invalid_utf8"),
    (b"k", ev(), 631_152_000_000, "bad_record_timestamp"),  # a record stamped 1990
    (b"k", ev(payload=json.loads(nested(20))), None, "too_deep"),
    (b"k", b"[" * 1500 + b"]" * 1500, None, "too_deep"),
    (b"k", ev().replace(b'"value": ' + str(GOOD["value"]).encode(), b'"value": NaN'), None, "non_finite_number"),
    (b"k", ev().replace(b'"value": ' + str(GOOD["value"]).encode(), b'"value": -Infinity'), None,
     "non_finite_number"),
    (b"k", ev().replace(b'"value": ' + str(GOOD["value"]).encode(), b'"value": 1e400'), None, "non_finite_number"),
    (b"k", spliced('"event_id": "first"'), None, "duplicate_key"),
    (b"k", b"{oops", None, "malformed_json"),
    (b"k", ev()[:-9], None, "malformed_json"),
    (b"k", ev().replace(b'"', b"'"), None, "malformed_json"),
    (b"k", ev() + b" trailing", None, "malformed_json"),
    (b"k", ev(event_id="\ud800abc"), None, "malformed_json"),  # a lone surrogate escape
    (b"k", b"[1, 2]", None, "not_an_object"),
    (b"k", b"42", None, "not_an_object"),
    (b"k", b'"an event"', None, "not_an_object"),
    (b"k", b"null", None, "not_an_object"),
    (b"k", ev(event_id=...), None, "missing_field"),
    (b"k", ev(source_id=None), None, "missing_field"),
    (b"k", b"{}", None, "missing_field"),
    (b"k", ev(value="warm"), None, "wrong_type"),
    (b"k", ev(value="NaN"), None, "wrong_type"),
    (b"k", ev(value=True), None, "wrong_type"),
    (b"k", ev(event_id=123), None, "wrong_type"),
    (b"k", ev(event_time=NOW_MS), None, "wrong_type"),
    (b"k", ev(payload="unit=C"), None, "wrong_type"),
    (b"k", ev(source_id=["sensor-0001"]), None, "wrong_type"),
    (b"k", ev(source_id=""), None, "bad_identifier"),
    (b"k", ev(event_type="   "), None, "bad_identifier"),
    (b"k", ev(event_id="abc\u0000def"), None, "bad_identifier"),
    (b"k", ev(event_id="x" * 300), None, "field_too_long"),
    (b"k", ev(event_time="noon"), None, "bad_event_time"),
    (b"k", ev(event_time="2026-11-25T07:00:00"), None, "bad_event_time"),  # no zone: which 07:00?
    (b"k", ev(event_time="2026-13-45T99:00:00Z"), None, "bad_event_time"),
    (b"k", ev(event_time="+99999-01-01T00:00:00Z"), None, "bad_event_time"),
    (b"k", ev(event_time=iso_ms(NOW_MS + DAY)), None, "event_time_future"),
    (b"k", ev(event_time=iso_ms(NOW_MS - 30 * DAY)), None, "event_time_past"),
]


@pytest.fixture(scope="module")
def spark():
    """An in-process session; it takes a free UI port, never the `stream` service's."""
    from labsupport.stream.job import spark_session

    session = spark_session(app_name="streamlab-unit")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def kafka_rows(spark):
    """Every case as the Kafka source hands it over: binary key and value, a record time."""
    def stamp(ms):
        return datetime.fromtimestamp((ms or NOW_MS) / 1000, timezone.utc)

    rows = [(k, v, "t", 0, i, stamp(ms)) for i, (k, v, ms, _) in enumerate(CASES)]
    return spark.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset long, "
                                       "timestamp timestamp")


@pytest.fixture(scope="module")
def parsed(kafka_rows):
    return parse(kafka_rows, StreamSettings())


def test_every_rule_is_exercised():
    assert {c[3] for c in CASES} - {None} == set(REASONS)


def test_each_hostile_record_gets_its_reason_and_good_ones_none(parsed):
    out = {r.kafka_offset: r.reason for r in parsed.collect()}
    got = [(i, out[i]) for i in range(len(CASES))]
    assert got == [(i, c[3]) for i, c in enumerate(CASES)]


def test_the_whole_batch_crosses_to_pandas_and_only_safe_text_crosses(parsed):
    """The hand-over the stream does: invalid UTF-8 anywhere must not break it."""
    from labsupport.stream.job import batch_frame

    pdf = batch_frame(parsed).set_index("kafka_offset").sort_index()
    assert "key" not in pdf.columns
    bad = pdf[pdf["reason"].notna()]
    assert bad["raw"].notna().sum() == len(bad) - 1  # all but the tombstone keep their raw text
    assert bad["raw"].dropna().str.len().max() <= MAX_RAW_STORED
    assert "\ufffd" in bad.loc[CASES.index(next(c for c in CASES if c[1] == b"\xff\xfe\xfa")), "raw"]
    assert bad["event_id"].isna().all() and bad["value"].isna().all()  # parsed fields only for good events
    good = pdf[pdf["reason"].isna()]
    assert good["raw"].isna().all() and len(good) == sum(1 for c in CASES if c[3] is None)


def test_good_event_fields_and_keys_match_python(parsed):
    ok = {r.kafka_offset: r for r in parsed.collect()}
    first = ok[0]
    t = datetime.fromtimestamp(first.event_ms / 1000, timezone.utc)
    assert (first.bucket, first.shard) == (bucket_of(t), shard_of(GOOD["source_id"], 4))  # JVM and Python agree
    assert json.loads(first.payload) == GOOD["payload"]
    assert (first.event_id, first.source_id, first.event_type, first.value) == \
        (GOOD["event_id"], GOOD["source_id"], GOOD["event_type"], GOOD["value"])
    assert ok[1].payload is None and ok[2].payload is None and ok[3].value == 21.0
