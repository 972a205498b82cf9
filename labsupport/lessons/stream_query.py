"""Lesson 03's plumbing around the streaming query and the batch function the learner writes.

The learner types the lesson's subject in their own cells: ``spark.readStream`` … ``from_json``
… ``writeStream.foreachBatch(…)`` with its checkpoint and trigger, and the cassandra-driver
code of the batch function (a prepared statement, rows grouped by partition, concurrent
execution, the counter bumped after the write). What is not the subject comes from here,
and is the very code the ``stream`` service runs, so the learner's query and the
service's give the same rows:

* ``EVENT_SCHEMA`` and ``validate``: the event contract for ``from_json`` and the JVM-side
  checks that give each refused record its quarantine reason
  (``labsupport.stream.validation``);
* ``LessonSink``: the Cassandra session, the Arrow hand-over, the copies the source
  published twice, and what a batch writes besides its events (quarantined records, the
  per-minute aggregate the audit compares, the committed-batch row)
  (``labsupport.stream.sink``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from labsupport.config import LabConfig, get_config
from labsupport.lessons.audit import layouts_of, rows_between
from labsupport.stream.job import batch_frame, read_checkpoint_id
from labsupport.stream.metrics import StreamMetrics
from labsupport.stream.settings import StreamSettings
from labsupport.stream.sink import CassandraSink
from labsupport.stream.validation import event_schema, validate

__all__ = ["EVENT_SCHEMA", "validate", "lesson_settings", "LessonSink", "same_rows", "handover_speed"]

#: the event contract as ``from_json``'s schema (one field per ``labsupport.events.EVENT_FIELDS``)
EVENT_SCHEMA = event_schema()


def lesson_settings(keyspace: str, query_name: str, topic: str) -> StreamSettings:
    """The service's settings (``LAB_STREAM_*`` and defaults) for a bounded lesson run:
    its own keyspace, topic, query name and consumer group (where ``StreamJob`` commits the
    offsets it read, for lag tools: never the service's group), an ``availableNow`` trigger
    and a checkpoint under the lab home named after the query."""
    return StreamSettings.from_env(keyspace=keyspace, query_name=query_name, topic=topic, group_id=query_name,
                                   trigger="availableNow", starting_offsets="earliest", checkpoint="persistent")


class LessonSink:
    """What the learner's batch function calls around its own writes.

    ``session`` is the sink's cassandra-driver session (token-aware, the lab's consistency
    level, the keyspace's tables created and its partition layout recorded for the audit)."""

    def __init__(self, settings: StreamSettings, cfg: LabConfig | None = None):
        self.settings = settings
        self.cfg = cfg or get_config()
        #: where the query keeps its checkpoint: a folder under the lab home
        self.checkpoint = settings.checkpoint_dir(self.cfg)
        self._sink = CassandraSink(self.cfg, settings, StreamMetrics(settings.query_name),
                                   lambda: read_checkpoint_id(self.checkpoint))

    @property
    def session(self):
        return self._sink.session()

    @staticmethod
    def hand_over(df):
        """The micro-batch as a pandas frame, moved column by column with Arrow."""
        return batch_frame(df)

    def new_events(self, pdf) -> list:
        """The good events of the batch as ``EventRow`` tuples (named fields in the
        column order of ``events_by_bucket``'s INSERT), one copy per event id, without
        the copies the source published twice whose first copy is already stored."""
        return self._sink.new_events(CassandraSink.event_rows(pdf[pdf["reason"].isna()]))

    def finish_batch(self, pdf, events: list, batch_id: int) -> int:
        """After the batch's events are stored: its quarantined records, the per-minute
        aggregate of ``events`` and its committed-batch row. Returns the records quarantined."""
        quarantine = CassandraSink.quarantine_rows(pdf[pdf["reason"].notna()])
        self._sink.record_batch(batch_id, events, quarantine, pdf)
        return len(quarantine)

    def close(self) -> None:
        self._sink.close()


@dataclass(frozen=True)
class RowComparison:
    """The event rows two keyspaces hold for one window, compared by their key."""

    left: int
    right: int
    only_left: int
    only_right: int

    @property
    def same(self) -> bool:
        return self.only_left == 0 and self.only_right == 0 and self.left == self.right


def same_rows(left: str, right: str, since, until, cfg: LabConfig | None = None) -> RowComparison:
    """Compare ``events_by_bucket`` of two keyspaces for ``[since, until)``: each row by its
    whole primary key (bucket, shard, event time, event id)."""
    from labsupport import schema

    cfg = cfg or get_config()
    cluster, session = schema.connect(cfg)
    try:
        keys = []
        for ks in (left, right):
            layouts, _ = layouts_of(session, ks, StreamSettings.from_env(keyspace=ks))
            keys.append({r.key for r in rows_between(session, ks, since, until, layouts)})
    finally:
        cluster.shutdown()
    a, b = keys
    return RowComparison(len(a), len(b), len(a - b), len(b - a))


def handover_speed(spark, rows: int = 200_000, repeats: int = 2) -> dict[str, float]:
    """Rows per second moving one cached DataFrame of event-like columns to Python, best
    of ``repeats``: ``collect()`` (one Row object per row) and ``toPandas()`` with Arrow
    (column by column), the hand-over ``LessonSink.hand_over`` uses."""
    from pyspark.sql import functions as F

    df = (spark.range(rows)
          .select(F.concat(F.lit("evt-"), F.col("id").cast("string")).alias("event_id"),
                  (F.col("id") % 200).cast("string").alias("source_id"), F.lit("reading").alias("event_type"),
                  (F.col("id") * 0.5).alias("value"), F.col("id").alias("event_ms"),
                  F.lit('{"unit":"C"}').alias("payload"))
          .cache())
    df.count()  # materialise the cache: only the hand-over is timed
    out = {}
    try:
        for name, move in (("collect()", lambda: df.collect()), ("toPandas() with Arrow", lambda: df.toPandas())):
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                move()
                best = min(best, time.perf_counter() - t0)
            out[name] = rows / best
    finally:
        df.unpersist()
    return out
