"""Issue 11 on the real stack: the audit tells the source's duplicates from the sink's.

Events go to a real Kafka topic — a window of them twice, as an Airflow task retried
after a partial publish would — and are read back with their real partitions and
offsets. They reach Cassandra through the stream's own sink (``CassandraSink.write_batch``)
in micro-batches cut by offset, as Spark would cut them, without starting Spark: the
frame the sink receives is built here the way ``validation.parse`` builds it. Own topic
and keyspace, both deleted afterwards; the `stream` service is not touched.
"""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from labsupport import schema
from labsupport.config import get_config
from labsupport.events import Profile, events_between
from labsupport.ingest import producers, topics
from labsupport.lessons.audit import audit
from labsupport.lessons.sandboxes import unique_tag
from labsupport.stream.keys import bucket_of, day_of, shard_of
from labsupport.stream.metrics import StreamMetrics
from labsupport.stream.settings import StreamSettings
from labsupport.stream.sink import CassandraSink
from labsupport.times import epoch_ms, parse_iso

RATE = 20          # events/s
SECONDS = 30       # the window published
REPUBLISHED = 6    # its first seconds, published a second time
RELAID = 2         # seconds of it written again by a writer with another bucket width


def sink_frame(records, settings: StreamSettings) -> pd.DataFrame:
    """The parsed micro-batch ``validation.parse`` hands to the sink, for valid events.
    ``records`` are (partition, offset, event dict)."""
    rows = []
    for part, off, ev in records:
        at = parse_iso(ev["event_time"])
        rows.append({"key": ev["source_id"].encode(), "raw": None, "topic": settings.topic,
                     "kafka_partition": part, "kafka_offset": off, "received_at": at, "reason": None,
                     "event_id": ev["event_id"], "source_id": ev["source_id"], "event_type": ev["event_type"],
                     "value": ev["value"], "payload": json.dumps(ev.get("payload")), "event_ms": epoch_ms(at),
                     "bucket": bucket_of(at, settings.bucket_width), "day": day_of(at),
                     "shard": shard_of(ev["source_id"], settings.shards), "received_ms": epoch_ms(at),
                     "received_day": day_of(at)})
    return pd.DataFrame(rows)


def micro_batches(records, n: int) -> list[list]:
    """``records`` cut into ``n`` batches by offset range in each partition, as Spark's
    Kafka source cuts them: a batch holds consecutive offsets of every partition."""
    by_part: dict[int, list] = {}
    for rec in sorted(records, key=lambda r: (r[0], r[1])):
        by_part.setdefault(rec[0], []).append(rec)
    batches = [[] for _ in range(n)]
    for recs in by_part.values():
        size = -(-len(recs) // n)
        for i in range(n):
            batches[i].extend(recs[i * size:(i + 1) * size])
    return batches


@pytest.fixture
def sandbox(lab_stack):
    tag = unique_tag()
    topic, keyspace = f"audit-{tag}", f"t_audit_{tag}"
    cfg = get_config()
    topics.ensure_topic(topic, partitions=3, cfg=cfg)
    schema.ensure(cfg, keyspace)
    yield tag, topic, keyspace
    topics.delete_topic(topic, cfg=cfg)
    cluster, session = schema.connect(cfg)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


def write(settings: StreamSettings, checkpoint: str, batches, first_batch_id: int = 0) -> StreamMetrics:
    metrics = StreamMetrics(settings.query_name)
    sink = CassandraSink(get_config(), settings, metrics, lambda: checkpoint)
    try:
        for batch_id, batch in enumerate(batches, start=first_batch_id):
            sink.write_batch(sink_frame(batch, settings), batch_id)
    finally:
        sink.close()
    return metrics


def test_source_duplicates_and_keys_written_twice_are_told_apart_on_real_data(sandbox):
    tag, topic, keyspace = sandbox
    profile = Profile(rate=RATE, burst_every=0, seed=tag)
    start = int(time.time()) - 120
    since, until = start, start + SECONDS
    window = list(events_between(since, until, profile))
    again = [e for e in window if epoch_ms(e["event_time"]) < (start + REPUBLISHED) * 1000]
    producers.publish(window, topic)
    producers.publish(again, topic)  # the retried task publishes its first seconds again
    records = [(r.partition, r.offset, json.loads(r.value)) for r in topics.replay(topic, decode=False)]
    assert len(records) == len(window) + len(again)

    # the stream's sink, three micro-batches: the second copies land in a later batch than the first
    settings = StreamSettings(topic=topic, keyspace=keyspace, query_name=f"audit_{tag}")
    metrics = write(settings, f"cp-{tag}", micro_batches(records, 3))
    assert metrics.value("rows_written_total") == len(window)  # each id counted once

    report = audit(since, until, keyspace=keyspace, published_to=topic)
    assert (report.produced, report.landed, report.missing) == (len(window), len(window), 0), report.as_dict()
    assert report.published_twice == len(again), report.as_dict()
    # the stream's counts are exact by id: the source's duplicates are not the sink's
    assert (report.aggregate, report.duplicated, report.under_counted, report.stored_twice) == \
        (report.distinct_rows, 0, 0, 0), report.as_dict()
    assert report.layouts == ["hour x 4"] and report.notes == [], report.as_dict()
    twice_by_minute = {m["minute"]: m["published_twice"] for m in report.minutes if m["published_twice"]}
    assert sum(twice_by_minute.values()) == len(again) and not report.clean

    # without the topic the audit cannot know, and says so instead of reporting 0
    blind = audit(since, until, profile, keyspace=keyspace)
    assert blind.published_twice is None and any("no topic" in n for n in blind.notes), blind.as_dict()
    assert (blind.produced, blind.missing, blind.duplicated) == (len(window), 0, 0), blind.as_dict()

    # a writer with another bucket width re-writes two seconds: the same ids under a second key
    relaid = [r for r in records if epoch_ms(r[2]["event_time"]) >= (until - RELAID) * 1000]
    relaid_ids = {r[2]["event_id"] for r in relaid}
    write(settings.replace(bucket_width="minute", query_name=f"audit_{tag}_minute"), f"cp2-{tag}", [relaid])
    after = audit(since, until, keyspace=keyspace, published_to=topic)
    assert after.layouts == ["hour x 4", "minute x 4"], after.as_dict()  # read as the writers recorded
    assert after.stored_twice == len(relaid_ids) > 0, after.as_dict()
    assert after.duplicated == len(relaid_ids), after.as_dict()  # that writer counted them a second time
    assert (after.landed, after.missing, after.published_twice) == (len(window), 0, len(again)), after.as_dict()


def test_total_landed_is_the_pipelines_and_survives_a_restart_of_the_stream_counter(sandbox):
    """A restarted stream starts ``rows_written_total`` at 0 in a fresh registry; the
    view's total is read from what Cassandra holds, so it keeps every event."""
    from labsupport import schema
    from labsupport.observe.pipeline_stats import events_landed

    tag, topic, keyspace = sandbox
    settings = StreamSettings(topic=topic, keyspace=keyspace, query_name=f"landed_{tag}")
    start = int(time.time()) - 300
    first = list(events_between(start, start + 10, Profile(rate=RATE, burst_every=0, seed=tag)))
    later = list(events_between(start + 10, start + 15, Profile(rate=RATE, burst_every=0, seed=tag)))
    before = write(settings, f"cp-{tag}", [[(0, i, e) for i, e in enumerate(first)]])
    # the restart: a new process's registry, the same checkpoint resuming
    after = write(settings, f"cp-{tag}", [[(0, len(first) + i, e) for i, e in enumerate(later)]], first_batch_id=1)
    assert before.value("rows_written_total") == len(first)
    assert after.value("rows_written_total") == len(later)  # what the live counter shows now

    cluster, session = schema.connect(get_config())
    try:
        total = events_landed(session, keyspace)
    finally:
        cluster.shutdown()
    assert total == len(first) + len(later), total
    report = audit(start, start + 15, Profile(rate=RATE, burst_every=0, seed=tag), keyspace=keyspace)
    assert total == report.distinct_rows == report.landed, report.as_dict()


def test_a_batch_already_committed_is_rewritten_but_never_counted_again(sandbox):
    """The sink's replay guard, driven deterministically instead of by a random kill:
    the same (checkpoint id, batch id) written twice — what Spark does when it re-runs
    a batch whose commit it did not record — stores the same rows, reports the second
    write as a replay, and adds nothing to the counter or the per-minute aggregate."""
    tag, topic, keyspace = sandbox
    settings = StreamSettings(topic=topic, keyspace=keyspace, query_name=f"q_{tag}")
    now = int(time.time()) // 60 * 60 - 120
    events = list(events_between(now, now + 5, Profile(rate=RATE, burst_every=0, seed=tag)))
    frame = sink_frame([(i % 3, i, ev) for i, ev in enumerate(events)], settings)
    metrics = StreamMetrics(settings.query_name)
    sink = CassandraSink(get_config(), settings, metrics, lambda: f"cp-{tag}")
    first = sink.write_batch(frame, 7)
    again = sink.write_batch(frame, 7)
    assert not first["replayed"] and again["replayed"], (first, again)
    assert metrics.value("rows_written_total") == len(events) == first["rows"]
    report = audit(now, now + 5, Profile(rate=RATE, burst_every=0, seed=tag), keyspace=keyspace, settings=settings)
    assert report.landed == report.produced == len(events) and report.aggregate == len(events), report.as_dict()
    assert report.duplicated == 0 and report.clean, report.as_dict()
    # a new checkpoint id is a new query: the very same batch id now counts (failure mode 1)
    CassandraSink(get_config(), settings, metrics, lambda: f"cp-{tag}-fresh").write_batch(frame, 7)
    assert metrics.value("rows_written_total") == 2 * len(events)
