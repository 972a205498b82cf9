"""Issue 11 acceptance on the real stack: the stream survives any record.

Hostile records of every kind are produced into the topic of a RUNNING `stream` service
(its own topic, keyspace and checkpoint), between two windows of good events. Each must
land in quarantine with its reason, every good event around them must land (audit), and
the query must not restart. One record passes the rules but makes Cassandra refuse the
write (an event_id longer than a clustering key may be, with the identifier rule widened
by a StreamSettings field): the job must split its batch and quarantine it as
``poison_record``. One service start for all of it (a start costs ~30 s on 2 cores).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from labsupport import schema
from labsupport.config import get_config
from labsupport.events import Profile, events_between, make_event
from labsupport.ingest import producers, topics
from labsupport.lessons.audit import audit
from labsupport.lessons.sandboxes import LESSON_STREAM, sandbox_names, unique_tag
from labsupport.stack.services.stream import StreamService
from labsupport.stream.settings import StreamSettings
from labsupport.stream.validation import ALL_REASONS, POISON
from labsupport.times import iso_ms
from labsupport.waits import wait_for

DAY = 86_400_000
MAX_PAYLOAD = 200_000  # room for the poison record; "oversized" is then a 300 kB value
MAX_IDENTIFIER = 100_000  # the identifier rule widened so a 70,000-char event_id passes it


def hostile_records(tag: str, now_ms: int) -> list[tuple[bytes | None, bytes | None, int | None, str]]:
    """(key, value, Kafka timestamp ms or None, expected reason): what a hostile producer sends."""
    good = make_event(Profile(seed=tag + "h"), now_ms // 1000, 0, 1)
    value = str(good["value"]).encode()

    def ev(**changes) -> bytes:
        e = {**good, **changes}
        return json.dumps({k: v for k, v in e.items() if v is not ...}).encode()

    return [
        (None, ev(), None, "null_key"),
        (b"\xff\xfe\xfa", ev(), None, "invalid_key"),  # the record of the bug report
        (b"k", None, None, "tombstone"),
        (b"k", b"", None, "empty_value"),
        (b"k", b" \r\n ", None, "empty_value"),
        (b"k", ev(payload={"pad": "x" * 300_000}), None, "oversized"),
        (b"k", b"\xff\xfe\xfa", None, "invalid_utf8"),
        (b"k", ev().replace(b'"sensor-', b'"\xc3\x28sensor-'), None, "invalid_utf8"),
        (b"k", ev(), 631_152_000_000, "bad_record_timestamp"),  # a record stamped 1990
        (b"k", ev(payload=json.loads('{"a":' * 30 + "1" + "}" * 30)), None, "too_deep"),
        (b"k", b"[" * 3000 + b"]" * 3000, None, "too_deep"),
        (b"k", ev().replace(b'"value": ' + value, b'"value": NaN'), None, "non_finite_number"),
        (b"k", ev().replace(b'"value": ' + value, b'"value": Infinity'), None, "non_finite_number"),
        (b"k", ev().replace(b'"value": ' + value, b'"value": 1e400'), None, "non_finite_number"),
        (b"k", b'{"event_id": "x", ' + ev()[1:], None, "duplicate_key"),
        (b"k", b'{"event_id": "broken", ', None, "malformed_json"),
        (b"k", ev() + b"{}", None, "malformed_json"),
        (b"k", b"[1, 2, 3]", None, "not_an_object"),
        (b"k", b"42", None, "not_an_object"),
        (b"k", ev(source_id=...), None, "missing_field"),
        (b"k", ev(value="warm"), None, "wrong_type"),
        (b"k", ev(event_id=12345), None, "wrong_type"),
        (b"k", ev(payload="unit=C"), None, "wrong_type"),
        (b"k", ev(source_id=""), None, "bad_identifier"),
        (b"k", ev(event_id="a\u0000b"), None, "bad_identifier"),
        (b"k", ev(event_type="t" * 120_000), None, "field_too_long"),
        (b"k", ev(event_time="yesterday-ish"), None, "bad_event_time"),
        (b"k", ev(event_time="2026-11-25T07:00:00"), None, "bad_event_time"),
        (b"k", ev(event_time=iso_ms(now_ms + DAY)), None, "event_time_future"),
        (b"k", ev(event_time=iso_ms(now_ms - 30 * DAY)), None, "event_time_past"),
        # valid by every rule, refused by Cassandra: a clustering key may not exceed 64 KiB
        (b"k", ev(event_id="p" * 70_000), None, POISON),
    ]


@pytest.fixture
def sandbox(lab_stack):
    tag = unique_tag()
    names = sandbox_names(f"hostile{tag}")
    settings = StreamSettings(**{**names, **LESSON_STREAM, "max_payload_bytes": MAX_PAYLOAD,
                                 "max_identifier_chars": MAX_IDENTIFIER})
    topics.ensure_topic(settings.topic, partitions=3)
    schema.ensure(get_config(), settings.keyspace)
    StreamService(get_config()).stop()  # one stream service at a time
    svc = StreamService(get_config(), settings)
    yield tag, settings, svc
    svc.stop(grace=20)
    svc.purge()
    topics.delete_topic(settings.topic)


def _send(topic: str, records) -> list[tuple[int, int]]:
    """Each record as it is (key, value, timestamp); returns (partition, offset) of each."""
    producer = producers.make_producer(max_request_size=2 * 1024 * 1024)
    try:
        futures = [producer.send(topic, key=k, value=v, timestamp_ms=ts) for k, v, ts, _ in records]
        producer.flush(timeout=60)
        return [(m.partition, m.offset) for m in (f.get(timeout=60) for f in futures)]
    finally:
        producer.close(timeout=10)


def _quarantine(keyspace: str) -> dict[str, str]:
    cluster, session = schema.connect(get_config())
    try:
        return {r.id: r.reason for r in session.execute(f"SELECT id, reason FROM {keyspace}.quarantine")}
    finally:
        cluster.shutdown()


def test_hostile_records_are_quarantined_with_their_reason_and_the_stream_keeps_going(sandbox):
    tag, settings, svc = sandbox
    svc.start()
    assert svc.metric("query_restarts_total") == 0
    # the Quarantined rows panel has a series per reason before anything was quarantined
    text = httpx.get(f"http://{get_config().host}:{get_config().stream_metrics_port}/metrics", timeout=5).text
    assert all(f'reason="{r}"' in text for r in ALL_REASONS)

    profile = Profile(rate=20, burst_every=0, seed=tag)
    now = int(time.time())
    producers.publish(events_between(now - 4, now - 2, profile), settings.topic)
    hostile = hostile_records(tag, now * 1000)
    positions = _send(settings.topic, hostile)
    sent_after = time.monotonic()
    producers.publish(events_between(now - 2, now, profile), settings.topic)

    landed = lambda: audit(now - 4, now, profile, keyspace=settings.keyspace)  # noqa: E731
    report = wait_for(lambda: (r := landed()).missing == 0 and r or None, 180,
                      "the good events after the hostile ones to land")
    took = time.monotonic() - sent_after
    expected = {f"{p}-{o}": reason for (p, o), (*_, reason) in zip(positions, hostile)}
    got = wait_for(lambda: q if len(q := _quarantine(settings.keyspace)) >= len(expected) else None, 60,
                   "every hostile record in quarantine")
    restarts = svc.metric("query_restarts_total")
    print(f"\n{len(hostile)} hostile records ({len(set(expected.values()))} kinds): good events after them "
          f"landed {took:.1f} s after they were sent; query restarts {restarts:.0f}, batch splits "
          f"{svc.metric('batch_splits_total'):.0f}, poison records {svc.metric('poison_records_total'):.0f}")

    assert got == expected
    assert (report.produced, report.landed, report.duplicated) == (80, 80, 0), report.as_dict()
    assert restarts <= settings.poison_after_failures - 1 and restarts == 0, "a record restarted the query"
    assert svc.metric("poison_records_total") == 1 and svc.metric("batch_splits_total") >= 1
    assert svc.metric("quarantined_total") == len(hostile) and svc.running()


def test_the_service_creates_a_missing_topic_before_it_starts_the_job(lab_stack):
    """After `lab down --purge kafka` the stream's topic is gone: `lab up stream` must bring
    it back instead of leaving Spark's source polling a topic nobody creates."""
    from labsupport.stream.source_topic import topic_exists

    cfg = get_config()
    settings = StreamSettings(**sandbox_names(f"notopic{unique_tag()}"))
    assert not topic_exists(cfg.bootstrap_servers, settings.topic)
    try:
        StreamService(cfg, settings).prepare()  # what start() runs before spawning the job
        assert wait_for(lambda: topic_exists(cfg.bootstrap_servers, settings.topic), 30, "the topic")
    finally:
        topics.delete_topic(settings.topic)
