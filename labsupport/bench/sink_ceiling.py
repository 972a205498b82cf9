"""`lab bench`'s sink ceiling: the stream's own writer (``CassandraSink.write_batch``)
timed alone on a synthetic micro-batch — what the end-to-end path could reach if Kafka,
Spark and the hand-over to Python cost nothing.

The batch is the frame ``validation.parse`` hands the sink (the load generator's events,
valid, stamped now, six Kafka partitions), written once with both tables and once with
``write_by_source=False``, into a scratch keyspace that is dropped afterwards. The
session is opened and the statements prepared before the clock starts; every batch has
fresh event ids, so the dedupe reads find nothing and every row is written.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from typing import Callable

from labsupport.bench import loadgen, scratch_data
from labsupport.config import LabConfig

KEYSPACE = "streamlab_bench_sink"
PARTITIONS = 6
VARIANTS = {"both_tables": True, "one_table": False}  # name -> write_by_source


def synthetic_frame(rows: int, run_id: str, settings, now_ms: int | None = None):
    """``rows`` valid events as the sink receives them: the load generator's events, one
    per millisecond up to now, spread round-robin over six Kafka partitions."""
    from functools import lru_cache

    import pandas as pd

    from labsupport.stream.keys import bucket_of, day_of, shard_of
    from labsupport.times import utc

    @lru_cache(maxsize=None)
    def minute_keys(minute_ms: int) -> tuple[str, str]:  # every bucket width is whole minutes
        return bucket_of(utc(minute_ms / 1000), settings.bucket_width), day_of(utc(minute_ms / 1000))

    shard = lru_cache(maxsize=None)(lambda src: shard_of(src, settings.shards))
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    out = []
    for seq in range(rows):
        ms = now_ms - (rows - seq)
        ev = json.loads(loadgen.event(run_id, seq, ms)[1])
        bucket, day = minute_keys(ms - ms % 60_000)
        out.append({"topic": settings.topic, "kafka_partition": seq % PARTITIONS, "kafka_offset": seq // PARTITIONS,
                    "reason": None, "raw": None, "event_id": ev["event_id"], "source_id": ev["source_id"],
                    "event_type": ev["event_type"], "value": ev["value"], "payload": json.dumps(ev["payload"]),
                    "event_ms": ms, "bucket": bucket, "day": day, "shard": shard(ev["source_id"]),
                    "received_ms": ms, "received_day": day})
    return pd.DataFrame(out)


def measure(cfg: LabConfig, rows: int, repeats: int = 1, progress: Callable[[str], None] = print) -> dict:
    """{variant: {rows, seconds: [...], events_per_s (median), written}} for both variants.

    The variants take turns (both, one, both, one …): Cassandra flushing and compacting
    what the previous batch wrote then weighs on each alike, not on whichever came second."""
    from labsupport.stream.metrics import StreamMetrics
    from labsupport.stream.settings import StreamSettings
    from labsupport.stream.sink import CassandraSink

    run = uuid.uuid4().hex[:8]
    sinks, seconds, written = {}, {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}
    try:
        for variant, by_source in VARIANTS.items():
            settings = StreamSettings.from_env(keyspace=KEYSPACE, topic=f"bench-sink-{run}",
                                               query_name=f"bench_sink_{run}_{variant}", write_by_source=by_source)
            sinks[variant] = CassandraSink(cfg, settings, StreamMetrics(settings.query_name),
                                           lambda v=variant: f"bench-sink-{run}-{v}")
            sinks[variant].session()  # connect, create the keyspace, prepare: not what is timed
        for i in range(repeats):
            for variant, sink in sinks.items():
                frame = synthetic_frame(rows, f"{run}{variant[0]}{i}", sink.settings)
                t0 = time.monotonic()
                result = sink.write_batch(frame, batch_id=i)
                seconds[variant].append(round(time.monotonic() - t0, 3))
                written[variant].append(result["rows"])
                progress(f"  {variant.replace('_', ' ')}: {rows:,} rows in {seconds[variant][-1]:.2f} s "
                         f"= {rows / seconds[variant][-1]:,.0f} events/s")
    finally:
        for sink in sinks.values():
            sink.close()
        scratch_data.drop_keyspace(cfg, KEYSPACE, progress)
    return {v: {"rows": rows, "seconds": seconds[v], "written": written[v],
                "events_per_s": round(rows / statistics.median(seconds[v]), 1)} for v in VARIANTS}
