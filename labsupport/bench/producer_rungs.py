"""`lab bench`'s producer step: lesson 06's producer ladder (``ingest.producer_ladder``)
on topics of the benchmark's own, one time budget per rung.

The rungs the suite compares: kafka-python blocking (one acknowledgement per event, the
broken producer), the seed's fix (a pool of blocking senders), kafka-python batched (the
lab's ``producers.publish``, the fixed producer), confluent-kafka (librdkafka) and
Kafka's Java ``ProducerPerformance`` as the ceiling. Each rung's count is checked
against its topic's log-end offsets (cheap: no replay), then the topics are deleted.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from labsupport import events
from labsupport.bench import scratch_data
from labsupport.config import LabConfig
from labsupport.ingest import producer_ladder, producers, topics

TOPIC_PREFIX = "bench"
BLOCKING, SEED_FIX, BATCHED, LIBRDKAFKA = ("kafka-python blocking", "kafka-python pool x16", "kafka-python batched",
                                           "confluent-kafka")
JAVA = producer_ladder.JAVA_RUNG
RUNGS = (BLOCKING, SEED_FIX, BATCHED, LIBRDKAFKA, JAVA)
LINGER_MS, POOL_LINGER_MS, POOL_WORKERS = 10, 5, 16  # as lesson 06 (the seed's settings)


def pool_sender(producer, workers: int = POOL_WORKERS) -> producer_ladder.Send:
    """The seed's fix: ``workers`` threads share one producer, each sending one event and
    waiting for its acknowledgement before taking the next."""
    def send(evs: Sequence[dict], topic: str) -> None:
        def one(ev: dict):
            return producer.send(topic, key=producers.key_of(ev), value=producers.encode(ev)).get(timeout=60)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, evs))  # list(): a failed send re-raises here
    return send


class BenchLadder(producer_ladder.Ladder):
    """The lesson's ladder on ``bench-<rung>-<run>`` topics, remembered for deletion."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.created: list[str] = []

    def topic(self, name: str) -> str:
        topic = producer_ladder.topic_for(name, self.run).replace(producer_ladder.LESSON, TOPIC_PREFIX, 1)
        topics.ensure_topic(topic, cfg=self.cfg)
        self.created.append(topic)
        return topic

    def delete_topics(self, progress: Callable[[str], None]) -> None:
        for topic in self.created:
            scratch_data.delete_topic(self.cfg, topic, progress)


def sample(n: int) -> list[dict]:
    """``n`` lab events (1,000/s of an hour ago, no bursts): what every rung sends."""
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=1)
    return list(events.events_between(start, start + timedelta(seconds=max(1, n // 1000)),
                                      events.Profile(rate=1000, burst_every=0, seed="bench")))[:n]


def measure(cfg: LabConfig, budget_s: float, sample_size: int, java_records: int,
            progress: Callable[[str], None] = print) -> dict:
    """Every rung once; returns {"rungs": [{name, records, seconds, per_second, in_topic}]}."""
    ladder = BenchLadder(sample(sample_size), budget_s, run=int(time.time()), cfg=cfg,
                         out=lambda line: progress(f"  {line}"))
    made = {BLOCKING: producers.make_producer(cfg, linger_ms=LINGER_MS),
            SEED_FIX: producers.make_producer(cfg, linger_ms=POOL_LINGER_MS),
            BATCHED: producers.make_producer(cfg, linger_ms=LINGER_MS)}
    try:
        ladder.rung(BLOCKING, lambda evs, t: producers.publish(evs, t, blocking=True, producer=made[BLOCKING]))
        ladder.rung(SEED_FIX, pool_sender(made[SEED_FIX]))
        ladder.rung(BATCHED, lambda evs, t: producers.publish(evs, t, producer=made[BATCHED]))
        ladder.rung(LIBRDKAFKA, producer_ladder.librdkafka_sender(cfg))
        ladder.java(java_records)
        rungs = [{"name": r.name, "records": r.sent, "seconds": round(r.seconds, 3),
                  "per_second": round(r.per_second, 1), "in_topic": producer_ladder.records_in(r.topic, cfg)}
                 for r in ladder.rungs.values()]
    finally:
        for p in made.values():
            p.close(timeout=10)
        ladder.delete_topics(progress)
    return {"budget_s": budget_s, "rungs": rungs}
