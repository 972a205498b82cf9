"""Publish labsupport.events to Kafka, for tests, benchmarks and failure mode 3.

The default sends everything asynchronously (large batches, ~10 ms linger, acks=all,
idempotence on so a retried send cannot duplicate a record), flushes once, then checks
every future: a failed send raises instead of vanishing. ``blocking=True`` waits for each
send's acknowledgement before the next — one network round trip per event, the broken
variant of failure mode 3. Same function, one parameter.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterable

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError


class PublishFailed(LabError):
    """Kafka did not acknowledge some of the records."""


@dataclass
class PublishResult:
    sent: int
    seconds: float
    partitions: dict[int, int]  # partition -> records acknowledged

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else float("inf")


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def key_of(event: dict) -> bytes | None:
    """The record key: the event's source_id, so one sensor's events stay in one partition, in order."""
    key = event.get("source_id")
    return None if key is None else str(key).encode()


def make_producer(cfg: LabConfig | None = None, **overrides):
    from kafka import KafkaProducer

    cfg = cfg or get_config()
    settings = dict(bootstrap_servers=cfg.bootstrap_servers, acks="all", enable_idempotence=True,
                    linger_ms=10, batch_size=256 * 1024, compression_type=None, retries=5,
                    max_in_flight_requests_per_connection=5, request_timeout_ms=30000)
    settings.update(overrides)
    return KafkaProducer(**settings)


def publish(events: Iterable[dict], topic: str, blocking: bool = False, producer=None,
            cfg: LabConfig | None = None, timeout: float = 60.0) -> PublishResult:
    """Send ``events`` (key = source_id) to ``topic``; raises PublishFailed if any send failed."""
    own = producer is None
    producer = producer or make_producer(cfg)
    started = time.monotonic()
    partitions: dict[int, int] = {}
    futures = []
    sent = 0
    try:
        for ev in events:
            fut = producer.send(topic, key=key_of(ev), value=encode(ev))
            if blocking:
                md = fut.get(timeout=timeout)  # one round trip per event: the slow way
                partitions[md.partition] = partitions.get(md.partition, 0) + 1
            else:
                futures.append(fut)
            sent += 1
        producer.flush(timeout=timeout)
        errors = []
        for fut in futures:
            try:
                md = fut.get(timeout=timeout)
                partitions[md.partition] = partitions.get(md.partition, 0) + 1
            except Exception as exc:  # every failure is collected, none is swallowed
                errors.append(exc)
        if errors:
            raise PublishFailed(f"{len(errors)} of {sent} records were not acknowledged by Kafka "
                                f"(first: {type(errors[0]).__name__}: {errors[0]})",
                                "check `lab status` for kafka and publish again (event ids make it idempotent)")
        return PublishResult(sent, time.monotonic() - started, partitions)
    finally:
        if own:
            producer.close(timeout=10)


def publish_raw(records: Iterable[tuple[bytes | None, bytes | None]], topic: str,
                cfg: LabConfig | None = None) -> int:
    """Send (key, value) byte pairs as they are — how tests inject bad records."""
    producer = make_producer(cfg)
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in records]
        producer.flush(timeout=60)
        for f in futures:
            f.get(timeout=60)
        return len(futures)
    finally:
        producer.close(timeout=10)
