"""A paced load generator for the stream benchmark: N events/s for D seconds, stamped now.

``python -m labsupport.bench.loadgen --topic T --rate R --seconds D --run ID`` prints one JSON
line: what it sent, how fast it really sent, and its own CPU time. Every event's
``event_time`` is the moment it was produced, so "event time -> row committed in
Cassandra" is the end-to-end latency. It runs in its own process (the benchmark's
CPU accounting sees it separately) and uses librdkafka through confluent-kafka:
pure-Python kafka-python tops out near 7,000 records/s on one core of the lab machine,
below the rates the benchmark asks for.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib

from labsupport.events import EVENT_TYPES
from labsupport.times import iso_ms

TICK_S = 0.005  # pacing granularity: a 5 ms slice of the rate is sent at once
# linger 20 ms: a few large produce requests instead of hundreds of tiny ones (the broker's
# CPU per event drops several-fold); it adds at most 20 ms to a latency measured in seconds


def event(run: str, seq: int, now_ms: int, sources: int = 200) -> tuple[bytes, bytes]:
    """(key, value) of one benchmark event; key = source_id like the lab's producers."""
    h = zlib.crc32(f"{run}{seq}".encode())
    source = f"sensor-{h % sources:04d}"
    body = {"event_id": f"{run}-{seq:010d}", "event_time": iso_ms(now_ms), "source_id": source,
            "event_type": EVENT_TYPES[h % len(EVENT_TYPES)], "value": round(20 + (h % 1000) / 100, 2),
            "payload": {"unit": "C", "firmware": f"1.{h % 7}.{h % 10}"}}
    return source.encode(), json.dumps(body, separators=(",", ":")).encode()


def run(bootstrap: str, topic: str, rate: float, seconds: float, run_id: str) -> dict:
    from confluent_kafka import KafkaException, Producer

    errors: list[str] = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 20, "queue.buffering.max.messages": 1_000_000,
                         "client.id": f"streamlab-loadgen-{run_id}"})
    total = int(rate * seconds)
    cpu0, t0 = time.process_time(), time.monotonic()
    sent, first_ms, last_ms, worst_behind = 0, None, None, 0
    while sent < total:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        worst_behind = max(worst_behind, due - sent)
        while sent < due:
            now_ms = int(time.time() * 1000)
            key, value = event(run_id, sent, now_ms)
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered)
            except BufferError:
                producer.poll(0.05)
                continue
            first_ms = first_ms if first_ms is not None else now_ms
            last_ms = now_ms
            sent += 1
        producer.poll(0)
        sleep = t0 + sent / rate - time.monotonic()
        if sleep > 0:
            time.sleep(min(sleep, TICK_S))
    elapsed = time.monotonic() - t0
    left = producer.flush(60)
    if left or errors:
        raise KafkaException(f"{left} records undelivered, {len(errors)} failed (first: {errors[:1]})")
    return {"run": run_id, "topic": topic, "target_rate": rate, "sent": sent, "seconds": round(elapsed, 3),
            "send_rate": round(sent / elapsed, 1), "first_ms": first_ms, "last_ms": last_ms,
            "max_backlog": worst_behind, "cpu_s": round(time.process_time() - cpu0, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=float, required=True, help="events per second")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--run", required=True, help="run id: prefix of every event id")
    a = ap.parse_args(argv)
    print(json.dumps(run(a.bootstrap, a.topic, a.rate, a.seconds, a.run)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
