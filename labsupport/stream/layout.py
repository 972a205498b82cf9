"""The partition layout a writer used for ``events_by_bucket``, recorded in the keyspace.

A reader can only find a row if it asks for the right (bucket, shard) partition, and
both depend on the writer's ``bucket_width`` and ``shards``. Those live in the writer's
settings (``LAB_STREAM_*``), not in the reader's environment: an audit run from another
shell, or after the settings changed, would look in the wrong partitions and call the
events missing. So the sink records its layout in ``stream_layout`` when it connects
(an upsert: cheap and idempotent), and readers take every layout ever recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

INSERT_LAYOUT = ("INSERT INTO {ks}.stream_layout (table_name, bucket_width, shards, query_name, recorded_at) "
                 "VALUES ('events_by_bucket', ?, ?, ?, toTimestamp(now()))")
SELECT_LAYOUTS = "SELECT bucket_width, shards FROM {ks}.stream_layout WHERE table_name = 'events_by_bucket'"


@dataclass(frozen=True, order=True)
class Layout:
    bucket_width: str
    shards: int


def record(session, keyspace: str, settings) -> None:
    """Called by the writer once per session: this keyspace holds rows laid out like ``settings``."""
    session.execute(session.prepare(INSERT_LAYOUT.format(ks=keyspace)),
                    (settings.bucket_width, settings.shards, settings.query_name))


def recorded(session, keyspace: str) -> list[Layout]:
    """Every layout a writer recorded in ``keyspace`` (empty when none did)."""
    return sorted({Layout(r.bucket_width, r.shards) for r in session.execute(SELECT_LAYOUTS.format(ks=keyspace))})
