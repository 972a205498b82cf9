"""Partition keys computed the same way in Python as the job computes them in the JVM.

Readers (the audit, notebooks) need the bucket and shard of a time range and a source
without asking Spark; ``shard_of`` is crc32 like Spark's ``crc32`` function, so both
sides always agree.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta, timezone

from labsupport.stream.settings import BUCKET_FORMATS

_STEP = {"day": timedelta(days=1), "hour": timedelta(hours=1), "minute": timedelta(minutes=1)}


def shard_of(source_id: str, shards: int) -> int:
    return zlib.crc32(source_id.encode()) % shards


def bucket_of(ts: datetime, width: str = "hour") -> str:
    return ts.astimezone(timezone.utc).strftime(BUCKET_FORMATS[width][1])


def day_of(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _floor(ts: datetime, width: str) -> datetime:
    ts = ts.astimezone(timezone.utc)
    if width == "day":
        return ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if width == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(second=0, microsecond=0)


def buckets_between(since: datetime, until: datetime, width: str = "hour") -> list[str]:
    """Every bucket that overlaps [since, until)."""
    out, t = [], _floor(since, width)
    while t < until:
        out.append(bucket_of(t, width))
        t += _STEP[width]
    return out


def days_between(since: datetime, until: datetime) -> list[str]:
    return buckets_between(since, until, "day")
