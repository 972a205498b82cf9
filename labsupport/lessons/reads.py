"""The time-series reads the schema is designed for, and the numbers that show why.

``events_by_bucket`` is keyed by ``(bucket, shard)``: "everything in the last N
minutes" touches one or two time buckets × a few shards, and writes spread over
several partitions instead of piling onto one. ``partition_sizes`` measures that from
Cassandra itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from labsupport import schema
from labsupport.config import LabConfig, get_config
from labsupport.stream.keys import buckets_between, day_of
from labsupport.stream.settings import StreamSettings


@dataclass
class PartitionStats:
    partitions: int
    rows: int
    max_rows: int

    @property
    def mean_rows(self) -> float:
        return self.rows / self.partitions if self.partitions else 0.0


def _stats(sizes: Counter) -> PartitionStats:
    return PartitionStats(len(sizes), sum(sizes.values()), max(sizes.values(), default=0))


def partition_sizes(keyspace: str = "streamlab", cfg: LabConfig | None = None) -> dict[str, PartitionStats]:
    """Rows per partition of events_by_bucket as keyed, and as two naive keys would be:
    one partition per time bucket (no shard), and one single partition for everything."""
    cluster, session = schema.connect(cfg or get_config())
    try:
        rows = session.execute(f"SELECT bucket, shard, count(*) AS n FROM {keyspace}.events_by_bucket "
                               "GROUP BY bucket, shard", timeout=120)
        keyed, by_bucket = Counter(), Counter()
        for r in rows:
            keyed[(r.bucket, r.shard)] += r.n
            by_bucket[r.bucket] += r.n
    finally:
        cluster.shutdown()
    total = Counter({"all": sum(keyed.values())}) if keyed else Counter()
    return {"(bucket, shard)": _stats(keyed), "(bucket)": _stats(by_bucket), "single partition": _stats(total)}


def last_minutes(minutes: float, keyspace: str = "streamlab", settings: StreamSettings | None = None,
                 now: datetime | None = None, cfg: LabConfig | None = None) -> tuple[list, int]:
    """Every event of the last ``minutes``: (rows, partitions read)."""
    settings = settings or StreamSettings.from_env(keyspace=keyspace)
    until = now or datetime.now(timezone.utc)
    since = until - timedelta(minutes=minutes)
    cluster, session = schema.connect(cfg or get_config())
    try:
        stmt = session.prepare(f"SELECT event_time, event_id, source_id, event_type, value "
                               f"FROM {keyspace}.events_by_bucket WHERE bucket = ? AND shard = ? "
                               "AND event_time >= ? AND event_time < ?")
        keys = [(b, s) for b in buckets_between(since, until, settings.bucket_width) for s in range(settings.shards)]
        rows = [r for b, s in keys for r in session.execute(stmt, (b, s, since, until))]
    finally:
        cluster.shutdown()
    return sorted(rows, key=lambda r: r.event_time), len(keys)

def count_rows(keyspace: str = "streamlab", table: str = "events_by_bucket", cfg: LabConfig | None = None) -> int:
    """Rows actually stored in ``keyspace.table`` (a full scan: lesson and test keyspaces
    only, never a production table)."""
    cluster, session = schema.connect(cfg or get_config())
    try:
        return sum(1 for _ in session.execute(f"SELECT event_id FROM {keyspace}.{table}", timeout=60))
    finally:
        cluster.shutdown()
