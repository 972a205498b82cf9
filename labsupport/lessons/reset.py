"""`reset_to(n)`: the state lesson ``n`` expects, built from scratch or topped up, so a
learner can open any notebook without running the earlier ones (and CI can run each
notebook alone).

It only ever *adds* state (starts services, creates topics and tables, publishes the
deterministic events of a recent window); it never deletes data.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from labsupport import stack
from labsupport.config import LabConfig, get_config

CORE = ["kafka", "cassandra", "prometheus"]


def _core(cfg: LabConfig) -> None:
    stack.up(CORE, cfg=cfg)


def _ingestion(cfg: LabConfig) -> None:
    """Airflow is not started here: lesson 2 (re)starts it with its own settings
    (`ingest_sandbox`), and starting it twice costs a minute."""
    from labsupport.ingest import topics

    stack.up(["events-api"], cfg=cfg)
    topics.ensure_topic(cfg=cfg)


def _stream_inputs(cfg: LabConfig, minutes: int = 5) -> None:
    """Keyspace and tables, and recent events in the topic.

    Idempotent: when the topic already received records in the last ``minutes`` (by
    broker time), nothing is published. Otherwise the events of
    ``[now - 2*minutes, now - minutes)`` (whole minutes) are: older than any window a
    lesson publishes itself (lesson 3 audits the last minutes it published, and a
    second copy of those events would count as duplicates), and never the window an
    earlier call published, which is at least ``minutes`` older."""
    from labsupport import events
    from labsupport.ingest import producers, topics

    _schema_and_topic(cfg)
    if topics.received_since(topics.EVENTS_TOPIC, time.time() - minutes * 60, cfg=cfg):
        return
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    producers.publish(events.events_between(end - timedelta(minutes=minutes), end), topics.EVENTS_TOPIC, cfg=cfg)


def _schema_and_topic(cfg: LabConfig) -> None:
    """Keyspace and tables, and the `events` topic (empty if new)."""
    from labsupport import schema
    from labsupport.ingest import topics

    schema.ensure(cfg)
    topics.ensure_topic(cfg=cfg)


def _producer_tools(cfg: LabConfig) -> None:
    """Lesson 6's top rung runs Kafka's own ProducerPerformance from the lab's jars: say
    so now, with the remedy, rather than after the lesson's other measurements."""
    from labsupport.ingest import producer_ladder

    producer_ladder.tools_classpath(cfg)


def pipeline_flowing(cfg: LabConfig) -> int:
    """Data in every layer, so every dashboard and pipeline-view query has a series:
    the events API up and having served events, the last minute's events and one
    malformed record (quarantined) in the `events` topic, the stream service (default
    settings) landing them, and the pipeline view up. Waits until the stream has
    committed them and Prometheus has seen the quarantine; returns the number of events
    published (the tests' ``pipeline_flowing`` fixture is this step)."""
    import httpx

    from labsupport import events, schema
    from labsupport.ingest import producers, topics
    from labsupport.observe import prom
    from labsupport.waits import wait_for

    stack.up(["events-api"], cfg=cfg)
    topics.ensure_topic(cfg=cfg)
    schema.ensure(cfg)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    batch = list(events.events_between(end - timedelta(seconds=60), end))
    producers.publish(batch, topics.EVENTS_TOPIC, cfg=cfg)
    producers.publish_raw([(b"sensor-bad", b"{not json")], topics.EVENTS_TOPIC, cfg=cfg)
    r = httpx.get(f"{cfg.events_api}/events", params={"since": (end - timedelta(seconds=5)).isoformat(),
                                                      "until": end.isoformat()}, timeout=10)
    r.raise_for_status()
    stack.up(["stream", "pipeline-view"], cfg=cfg)
    # by the stream's committed offsets, not its counters: a stream started here counts
    # from 0, and Prometheus may still hold the last value of the one that ran before
    wait_for(lambda: topics.group_lag(topics.EVENTS_TOPIC, cfg=cfg) == 0
             and prom.scalar('sum(quarantined_total{job="stream"})', cfg) >= 1, 180,
             "the stream to land the published events and quarantine the malformed record", interval=2)
    return len(batch)


def _kafka_rules(cfg: LabConfig) -> None:
    """Lesson 7 restarts Kafka on the seed's broken JMX rules; a run that stopped midway
    may have left it there."""
    from labsupport.lessons.jmx_rules import kafka_rules_restored

    kafka_rules_restored(cfg)


def _stream_jars(cfg: LabConfig) -> None:
    """Lessons 8 and 11 start sandboxed streams (11: the learner's own job): say that the Kafka source's jars are
    missing now, with the remedy, rather than when the first one fails to start."""
    from labsupport.stream.job import spark_jars

    spark_jars(cfg)


def _kafka_cluster(cfg: LabConfig) -> LabConfig:
    """Lesson 9 kills brokers: Kafka as a three-broker cluster (the one broker stopped,
    its data kept), Prometheus on the cluster's targets. The steps after this one, and
    this kernel (`set_config`), use the cluster; the lesson switches back at its end.
    The production pipeline is paused for the lesson (it measures the stream's capacity
    on two cores); `restore_layout` at its end turns it back on if it flowed."""
    from labsupport.lessons.pipeline import pause_for
    from labsupport.lessons.replication import use_kafka_brokers

    pause_for("lesson09", cfg)
    use_kafka_brokers(3, cfg)
    return get_config()


def _cassandra_ring(cfg: LabConfig) -> LabConfig:
    """Lesson 10 kills Cassandra nodes: Cassandra as a three-node ring (the one node
    stopped, its data kept), Prometheus on each node's exporter, the production pipeline
    paused while three Cassandra JVMs share the cores. The steps after this one, and this
    kernel, use the ring; the lesson switches back at its end."""
    from labsupport.lessons.ring_outages import ring_for_lesson

    return ring_for_lesson(cfg)


#: which lessons need each step. Lesson 3 on consume the topic, not the DAG: they get the
#: events published directly and no Airflow (two minutes of start-up and a core's worth of
#: CPU on a small machine). A later lesson that needs the DAG again widens its range.
STEPS: list[tuple[range | tuple[int, ...], str, Callable[[LabConfig], object]]] = [
    (range(9, 10), "Kafka as a three-broker cluster (your one broker stopped, its data kept)", _kafka_cluster),
    (range(10, 11), "Cassandra as a three-node ring (your one node stopped, its data kept)", _cassandra_ring),
    (range(1, 100), "core services up (Kafka, Cassandra, Prometheus)", _core),
    (range(2, 3), "events API up, `events` topic created (Airflow starts with the lesson's settings)", _ingestion),
    (range(3, 9), "Cassandra schema applied, recent events in the topic", _stream_inputs),
    # lesson 9's streams read topics of their own: the cluster's `events` topic stays empty
    (range(9, 100), "Cassandra schema applied, `events` topic created", _schema_and_topic),
    (range(6, 7), "Kafka's producer tools resolved (ProducerPerformance, `lab setup`)", _producer_tools),
    (range(7, 100), "Kafka's exporter on the configured JMX rules (LAB_KAFKA_JMX_RULES, kafka.yml)", _kafka_rules),
    (range(7, 8), "the pipeline flowing: stream, events-API traffic, a quarantined record, pipeline view",
     pipeline_flowing),
    # lesson 11's job is the learner's own Spark process
    ((8, 11), "the Spark Kafka source's jars resolved (`lab setup`)", _stream_jars),
]


def reset_to(lesson: int, cfg: LabConfig | None = None, progress=print) -> list[str]:
    """Prepare the state lesson ``lesson`` starts from; returns the steps taken."""
    cfg = cfg or get_config()
    done = []
    for lessons, what, step in STEPS:
        if lesson in lessons:
            progress(f"reset_to({lesson}): {what}")
            changed = step(cfg)
            if isinstance(changed, LabConfig):  # a step that switched the layout: later steps use it
                cfg = changed
            done.append(what)
    return done
