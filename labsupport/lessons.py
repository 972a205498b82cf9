"""`reset_to(n)`: the state lesson ``n`` expects, built from scratch or topped up, so a
learner can open any notebook without running the earlier ones (and CI can run each
notebook alone).

It only ever *adds* state (starts services, creates topics and tables, publishes the
deterministic events of a recent window); it never deletes data.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

from labsupport import stack
from labsupport.config import LabConfig, get_config

CORE = ["kafka", "cassandra", "prometheus"]


def _core(cfg: LabConfig) -> None:
    stack.up(CORE, cfg=cfg)


def _ingestion(cfg: LabConfig) -> None:
    from labsupport import topics

    stack.up(["events-api", "airflow"], cfg=cfg)
    topics.ensure_topic(cfg=cfg)


def _stream_inputs(cfg: LabConfig, minutes: int = 5) -> None:
    """Keyspace and tables, and the last few minutes of events in the topic."""
    from labsupport import events, producers, schema, topics

    schema.ensure(cfg)
    topics.ensure_topic(cfg=cfg)
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    producers.publish(events.events_between(end - timedelta(minutes=minutes), end), topics.EVENTS_TOPIC, cfg=cfg)


#: cumulative: lesson n gets every step of the lessons before it
STEPS: list[tuple[int, str, Callable[[LabConfig], None]]] = [
    (1, "core services up (Kafka, Cassandra, Prometheus)", _core),
    (2, "events API and Airflow up, `events` topic created", _ingestion),
    (3, "Cassandra schema applied, recent events in the topic", _stream_inputs),
]


def reset_to(lesson: int, cfg: LabConfig | None = None, progress=print) -> list[str]:
    """Prepare the state lesson ``lesson`` starts from; returns the steps taken."""
    cfg = cfg or get_config()
    done = []
    for n, what, step in STEPS:
        if n <= lesson:
            progress(f"reset_to({lesson}): {what}")
            step(cfg)
            done.append(what)
    return done
