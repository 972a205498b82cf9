"""The topic the stream reads must exist before its query starts.

Subscribed to a missing topic, Spark's Kafka source does not fail: it logs
UnknownTopicOrPartitionException over and over and reads nothing, which is what a
learner saw after ``lab down --purge kafka``. So the job checks first and, while the
topic is missing, waits and says so in its log.

The stream does not create the topic itself: how a topic is made (partitions, replay
retention) is the ingestion's contract, ``labsupport.ingest.topics.ensure_topic``, and a
stream concern may not import an ingest one. The `stream` service, one layer up,
creates it before it starts the job (``labsupport.stack.services.stream``), so a
purged Kafka gets its topic back on ``lab up stream`` / ``lab restart stream``.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from labsupport.errors import LabError

log = logging.getLogger("labsupport.stream")


class TopicMissing(LabError):
    """The stream's topic does not exist."""


def topic_exists(bootstrap_servers: str, topic: str) -> bool:
    """True if the broker lists ``topic``; False if not, or if no broker answers."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="stream-topic-check",
                                 request_timeout_ms=5000)
    except KafkaError:
        return False
    try:
        return topic in admin.list_topics()
    except KafkaError:
        return False
    finally:
        admin.close()


def await_topic(bootstrap_servers: str, topic: str, timeout: float | None = 60.0,
                should_stop: Callable[[], bool] = lambda: False, interval: float = 2.0,
                exists: Callable[[str, str], bool] = topic_exists) -> bool:
    """Wait until ``topic`` exists, logging every 30 s while it does not. ``timeout=None``
    waits until ``should_stop()`` (the service); otherwise a TopicMissing is raised.
    Returns False only when told to stop."""
    started, said = time.monotonic(), None
    while not exists(bootstrap_servers, topic):
        now = time.monotonic()
        if said is None or now - said >= 30:
            log.warning("topic %s does not exist (yet): waiting for it before starting the query "
                        "(`lab restart stream` creates it, so do the ingestion DAG and lessons)", topic)
            said = now
        if timeout is not None and now - started > timeout:
            raise TopicMissing(f"topic {topic!r} does not exist on {bootstrap_servers}",
                               "create it with labsupport.ingest.topics.ensure_topic(), or `lab up stream`")
        if should_stop():
            return False
        time.sleep(interval)
    return True
