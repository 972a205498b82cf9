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
    from labsupport import events, schema
    from labsupport.ingest import producers, topics

    schema.ensure(cfg)
    topics.ensure_topic(cfg=cfg)
    if topics.received_since(topics.EVENTS_TOPIC, time.time() - minutes * 60, cfg=cfg):
        return
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    producers.publish(events.events_between(end - timedelta(minutes=minutes), end), topics.EVENTS_TOPIC, cfg=cfg)


def _producer_tools(cfg: LabConfig) -> None:
    """Lesson 6's top rung runs Kafka's own ProducerPerformance from the lab's jars: say
    so now, with the remedy, rather than after the lesson's other measurements."""
    from labsupport.ingest import producer_ladder

    producer_ladder.tools_classpath(cfg)


#: which lessons need each step. Lesson 3 on consume the topic, not the DAG: they get the
#: events published directly and no Airflow (two minutes of start-up and a core's worth of
#: CPU on a small machine). A later lesson that needs the DAG again widens its range.
STEPS: list[tuple[range, str, Callable[[LabConfig], None]]] = [
    (range(1, 100), "core services up (Kafka, Cassandra, Prometheus)", _core),
    (range(2, 3), "events API up, `events` topic created (Airflow starts with the lesson's settings)", _ingestion),
    (range(3, 100), "Cassandra schema applied, recent events in the topic", _stream_inputs),
    (range(6, 7), "Kafka's producer tools resolved (ProducerPerformance, `lab setup`)", _producer_tools),
]


def reset_to(lesson: int, cfg: LabConfig | None = None, progress=print) -> list[str]:
    """Prepare the state lesson ``lesson`` starts from; returns the steps taken."""
    cfg = cfg or get_config()
    done = []
    for lessons, what, step in STEPS:
        if lesson in lessons:
            progress(f"reset_to({lesson}): {what}")
            step(cfg)
            done.append(what)
    return done
