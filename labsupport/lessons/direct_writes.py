"""Events written straight into Cassandra, one INSERT each, without Spark.

Lesson 01 uses it to make Cassandra's write metrics move before any stream exists: the
same prepared statement the stream's sink uses for ``events_by_source``, sent one event
per request (``execute_concurrent_with_args`` keeps many in flight). Lesson 03's sink
groups rows per partition instead; compare the writes/s panel of both.
"""

from __future__ import annotations

from typing import Iterable

from labsupport import schema
from labsupport.config import LabConfig
from labsupport.times import parse_iso
from labsupport.stream.keys import day_of
from labsupport.stream.sink import INSERT_BY_SOURCE


def insert_events(evs: Iterable[dict], keyspace: str, cfg: LabConfig | None = None, concurrency: int = 32) -> int:
    """Insert API events (``labsupport.events`` dicts) into ``keyspace.events_by_source``,
    creating the schema if needed; returns how many Cassandra acknowledged (all, or it raises)."""
    from cassandra.concurrent import execute_concurrent_with_args

    rows = []
    for e in evs:
        at = parse_iso(e["event_time"])
        rows.append((e["source_id"], day_of(at), at, e["event_id"], e["event_type"], float(e["value"])))
    cluster, session = schema.connect(cfg)
    try:
        schema.ensure(cfg, keyspace, session=session)
        insert = session.prepare(INSERT_BY_SOURCE.format(ks=keyspace))
        execute_concurrent_with_args(session, insert, rows, concurrency=concurrency, raise_on_first_error=True)
        return len(rows)
    finally:
        cluster.shutdown()
