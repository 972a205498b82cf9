"""The `events` topic and reading it back from the beginning.

Retention is set for full replay: ``retention.ms=-1`` (never delete by age) and
``retention.bytes=-1`` (never delete by size), so a consumer starting from offset 0
sees every event ever published — the lab relies on this to rebuild Cassandra after
a lost checkpoint and to audit exactly-once. On a real cluster this grows without
bound: there you would bound it (or use compaction) and keep the archive elsewhere.
Six partitions keyed by ``source_id`` keep each sensor's events in order while
spreading load over partitions.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Iterator

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError

EVENTS_TOPIC = "events"
PARTITIONS = 6
REPLAY_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1"}
def dead_letter_topic(topic: str) -> str:
    """Where the ingestion DAG sets aside the records ``topic`` cannot take (an event over
    Kafka's record limit), each with the reason (dags/ingest_events.py keeps a copy)."""
    return f"{topic}.dead-letter"


#: the most replicas a lab topic gets (a learner can run more brokers than that)
MAX_REPLICATION = 3


def replication(cfg: LabConfig) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) of the lab's topics on ``cfg``'s brokers.

    One broker: one replica, as it must. A cluster: up to three replicas, and an acks=all
    write needs two of them in sync: one broker may die without refusing a write or
    losing an acknowledged one; with two down writes are refused (NotEnoughReplicas),
    visibly, instead of being acknowledged by a single copy."""
    rf = max(1, min(cfg.kafka_brokers, MAX_REPLICATION))
    return rf, (2 if rf >= 3 else 1)


def _replication_configs(cfg: LabConfig) -> dict[str, str]:
    rf, min_isr = replication(cfg)
    return {"min.insync.replicas": str(min_isr)} if rf > 1 else {}


class TopicProblem(LabError):
    """A topic is missing or configured differently from what the lab needs."""


def _admin(cfg: LabConfig):
    from kafka.admin import KafkaAdminClient

    logging.getLogger("kafka").setLevel(logging.ERROR)
    return KafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers, client_id="lab-topics",
                            request_timeout_ms=10_000)


def ensure_topic(name: str = EVENTS_TOPIC, partitions: int = PARTITIONS, cfg: LabConfig | None = None) -> bool:
    """Create ``name`` with full-replay retention, replicated as `replication` says for
    this lab's brokers; True if created, False if it existed.

    Idempotent: an existing topic is kept, but one with fewer partitions than asked is
    refused (keys would map to other partitions than the lessons assume)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    cfg = cfg or get_config()
    admin = _admin(cfg)
    try:
        try:
            admin.create_topics([NewTopic(name, partitions, replication(cfg)[0],
                                          topic_configs={**REPLAY_CONFIGS, **_replication_configs(cfg)})])
            created = True
        except TopicAlreadyExistsError:
            created = False
        have = partitions if created else _settled_partition_count(admin, name)
        if have < partitions:
            raise TopicProblem(f"topic {name!r} has {have} partitions, the lab needs {partitions}",
                               f"delete it (kafka-topics --delete --topic {name}) or use another topic name")
        return created
    finally:
        admin.close()


def delete_topic(name: str, cfg: LabConfig | None = None) -> None:
    """Delete a scratch topic (benchmarks and tests only: the lab's own topics are never deleted)."""
    if name == EVENTS_TOPIC:
        raise TopicProblem(f"refusing to delete the lab's topic {name!r}", "delete it by hand if you really mean to")
    admin = _admin(cfg or get_config())
    try:
        admin.delete_topics([name])
    finally:
        admin.close()


def _settled_partition_count(admin, name: str, timeout: float = 30.0) -> int:
    """Partitions of an existing topic. A topic created moments ago (by another client)
    can show 0 partitions until its metadata has propagated: poll until it has some."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        have = _partition_count(admin, name)
        if have or time.monotonic() >= deadline:
            return have
        time.sleep(0.2)


def _partition_count(admin, name: str) -> int:
    for meta in admin.describe_topics([name]):
        if meta.get("name", meta.get("topic")) == name:
            return len(meta.get("partitions") or [])
    return 0


def topic_configs(name: str = EVENTS_TOPIC, cfg: LabConfig | None = None) -> dict[str, str]:
    """The topic's effective retention settings (to show they allow full replay)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = _admin(cfg or get_config())
    try:
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, list(REPLAY_CONFIGS))])
        entries = res.get("topic", {}).get(name, {})
        return {k: v["value"] for k, v in entries.items() if k in REPLAY_CONFIGS}
    finally:
        admin.close()


def received_since(topic: str, since: float, cfg: LabConfig | None = None) -> bool:
    """Whether ``topic`` holds a record whose (broker or producer) timestamp is at or
    after ``since`` (epoch seconds): Kafka's time index answers without reading data."""
    from kafka import KafkaConsumer, TopicPartition

    cfg = cfg or get_config()
    logging.getLogger("kafka").setLevel(logging.ERROR)
    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                             client_id="lab-topics")
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        found = consumer.offsets_for_times({TopicPartition(topic, p): int(since * 1000) for p in parts})
        return any(v is not None for v in found.values())
    finally:
        consumer.close()


def replay(topic: str = EVENTS_TOPIC, cfg: LabConfig | None = None, timeout: float = 60.0,
           decode: bool = True) -> Iterator[dict]:
    """Every record of ``topic`` from offset 0 up to the end offsets seen at the start.

    Reads with no consumer group (nothing is committed), and stops once each partition
    reached its end offset, so it terminates even while producers keep writing.
    Raises TopicProblem if the end is not reached within ``timeout`` seconds."""
    from kafka import KafkaConsumer, TopicPartition

    cfg = cfg or get_config()
    logging.getLogger("kafka").setLevel(logging.ERROR)
    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id="lab-replay",
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise TopicProblem(f"topic {topic!r} does not exist", "create it with labsupport.ingest.topics.ensure_topic()")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TopicProblem(f"replay of {topic!r} did not reach the end offsets in {timeout:.0f}s",
                                   "check that Kafka is healthy (`lab status`) or pass a larger timeout")
            for tp, records in consumer.poll(timeout_ms=500, max_records=50_000).items():
                for rec in records:
                    if rec.offset < ends[tp]:
                        yield json.loads(rec.value) if decode else rec
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        consumer.close()


def records_in(topic: str, cfg: LabConfig | None = None) -> int | None:
    """How many records ``topic`` holds (its retention deletes none): the sum of its end
    offsets; 0 for a topic not created yet, None when Kafka does not answer."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    cfg = cfg or get_config()
    try:
        consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                 client_id="lab-count", request_timeout_ms=5000)
    except KafkaError:
        return None
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    except KafkaError:
        return None
    finally:
        consumer.close()


def group_lag(topic: str, group: str = "streamlab-stream", cfg: LabConfig | None = None) -> int:
    """Records of ``topic`` that ``group`` has not committed yet: the sum over partitions
    of (log end offset − committed offset; 0 when nothing is committed)."""
    from kafka import KafkaConsumer, TopicPartition

    cfg = cfg or get_config()
    admin = _admin(cfg)
    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                             client_id="lab-lag")
    try:
        listed = admin.list_group_offsets(group)
        listed = listed.get(group, listed)  # kafka-python 3 keys the answer by group id
        committed = {tp: om.offset for tp, om in listed.items() if tp.topic == topic and om.offset >= 0}
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(tps)
        return sum(end - committed.get(tp, 0) for tp, end in ends.items())
    finally:
        consumer.close()
        admin.close()


def wait_caught_up(topic: str, group: str = "streamlab-stream", timeout: float = 120,
                   cfg: LabConfig | None = None) -> None:
    """Poll until ``group`` has committed everything in ``topic`` (lag 0)."""
    from labsupport.waits import wait_for

    wait_for(lambda: group_lag(topic, group, cfg) == 0, timeout, f"group {group} to consume all of {topic}")
