"""Write one micro-batch to Cassandra with cassandra-driver, so a replay changes nothing.

* events: ``INSERT`` keyed by the event's own primary key — a replayed batch upserts the
  same rows. Rows are grouped by partition into UNLOGGED batches (one partition each:
  a single mutation for Cassandra, not a distributed transaction) and sent with
  ``execute_concurrent`` so many requests are in flight at once.
* the per-minute aggregate: one row per (minute, checkpoint id, batch id), so a batch
  Spark replays after a crash overwrites its own row instead of adding to a counter.
* an event the source published twice is written and counted once
  (``labsupport.stream.dedupe``: one copy per id within a batch, and a key already
  stored from another Kafka record is skipped).
* the bucket width and shard count are recorded in ``stream_layout``
  (``labsupport.stream.layout``) so readers find the partitions.
* ``committed_batches`` is written last. A batch found there was fully committed before;
  its metrics are not counted again.
* a failing Cassandra is retried for ``write_retry_seconds`` (each attempt counted in
  ``write_failures_total`` and logged), then the batch raises and the query fails: the
  caller restarts it from the checkpoint, which replays this very batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from typing import Callable, NamedTuple

from labsupport.config import LabConfig
from labsupport.stream import dedupe, layout
from labsupport.stream.metrics import StreamMetrics
from labsupport.stream.poison import is_transient
from labsupport.stream.settings import StreamSettings

log = logging.getLogger("labsupport.stream")

class EventRow(NamedTuple):
    """One good event as the sink writes it: the hand-over frame's columns, in the order
    of ``INSERT_BY_BUCKET`` (its first ten, then ``written_at``), named once here."""

    bucket: str
    shard: int
    event_ms: int
    event_id: str
    source_id: str
    event_type: str
    value: float
    payload: str | None
    kafka_partition: int
    kafka_offset: int
    day: str

    @property
    def position(self) -> tuple[int, int]:
        """Where the record sat in Kafka: (partition, offset)."""
        return self.kafka_partition, self.kafka_offset


INSERT_BY_BUCKET = ("INSERT INTO {ks}.events_by_bucket (bucket, shard, event_time, event_id, source_id, event_type, "
                    "value, payload, kafka_partition, kafka_offset, written_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_BY_SOURCE = ("INSERT INTO {ks}.events_by_source (source_id, day, event_time, event_id, event_type, value) "
                    "VALUES (?, ?, ?, ?, ?, ?)")
INSERT_QUARANTINE = ("INSERT INTO {ks}.quarantine (day, received_at, id, topic, kafka_partition, kafka_offset, "
                     "reason, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_MINUTE = ("INSERT INTO {ks}.events_per_minute (day, minute, checkpoint_id, batch_id, events) "
                 "VALUES (?, ?, ?, ?, ?)")
INSERT_COMMITTED = ("INSERT INTO {ks}.committed_batches (checkpoint_id, batch_id, query_name, topic, rows_written, "
                    "quarantined, end_offsets, committed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
SELECT_COMMITTED = "SELECT batch_id FROM {ks}.committed_batches WHERE checkpoint_id = ? AND batch_id = ?"

MAX_RAW_STORED = 16384  # quarantine keeps the raw record, truncated beyond this


def group_by_partition(rows: list[tuple], key: Callable[[tuple], tuple], size: int,
                       weigh: Callable[[tuple], int] | None = None, max_bytes: int = 0) -> list[list[tuple]]:
    """Rows of the same partition together, in chunks of at most ``size`` rows (and, with
    ``weigh``, at most ``max_bytes``): each chunk becomes one UNLOGGED batch that touches
    a single partition. Cassandra fails a batch above ``batch_size_fail_threshold``, so
    a few large payloads must not push a chunk past it."""
    groups: dict[tuple, list] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    chunks = []
    for part in groups.values():
        chunk, used = [], 0
        for row in part:
            w = weigh(row) if weigh else 0
            if chunk and (len(chunk) >= size or (max_bytes and used + w > max_bytes)):
                chunks.append(chunk)
                chunk, used = [], 0
            chunk.append(row)
            used += w
        if chunk:
            chunks.append(chunk)
    return chunks


def _weigh_event(e: EventRow) -> int:
    """Approximate serialized size of an events_by_bucket row: the payload plus ~160 bytes."""
    return 160 + len(e.payload or "")


def minute_counts(event_ms: list[int]) -> dict[int, int]:
    """Events per event-time minute (keys are the minute's epoch ms)."""
    counts: dict[int, int] = defaultdict(int)
    for ms in event_ms:
        counts[ms - ms % 60000] += 1
    return dict(counts)


def _day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


class CassandraSink:
    """Holds one cassandra-driver session for the life of the query (reconnects by itself)."""

    def __init__(self, cfg: LabConfig, settings: StreamSettings, metrics: StreamMetrics,
                 checkpoint_id: Callable[[], str]):
        self.cfg, self.settings, self.metrics = cfg, settings, metrics
        self.checkpoint_id = checkpoint_id
        self._cluster = self._session = None
        self._stmts: dict[str, object] = {}

    # ---- connection ----------------------------------------------------------------------
    def session(self):
        if self._session is None:
            from cassandra import ConsistencyLevel
            from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
            from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy

            from labsupport import schema

            cl = getattr(ConsistencyLevel, self.settings.consistency.upper())
            profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                                       consistency_level=cl)
            cluster = Cluster(self.cfg.cassandra_contact_points, port=self.cfg.cassandra_port,
                              reconnection_policy=ExponentialReconnectionPolicy(0.5, 4.0),
                              execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                              connect_timeout=5, control_connection_timeout=5, protocol_version=5)
            try:
                session = cluster.connect()
                schema.ensure(self.cfg, self.settings.keyspace, session=session)
                ks = self.settings.keyspace
                for name, cql in (("bucket", INSERT_BY_BUCKET), ("source", INSERT_BY_SOURCE),
                                  ("quarantine", INSERT_QUARANTINE), ("minute", INSERT_MINUTE),
                                  ("committed", INSERT_COMMITTED), ("is_committed", SELECT_COMMITTED),
                                  ("stored", dedupe.SELECT_STORED)):
                    stmt = session.prepare(cql.format(ks=ks))
                    stmt.consistency_level = cl
                    self._stmts[name] = stmt
                layout.record(session, ks, self.settings)
            except Exception:
                cluster.shutdown()
                raise
            self._cluster, self._session, self._cl = cluster, session, cl
        return self._session

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None

    # ---- one micro-batch -------------------------------------------------------------------
    def write_batch(self, pdf, batch_id: int) -> dict:
        """Write a parsed batch (pandas, from ``toPandas``); returns what was written."""
        started = time.monotonic()
        good = pdf[pdf["reason"].isna()]
        bad = pdf[pdf["reason"].notna()]
        events = _event_rows(good)  # every copy: write_events keeps one per id
        quarantine = _quarantine_rows(bad)
        reasons = bad["reason"].value_counts().to_dict() if len(bad) else {}
        self.metrics.before_write(len(events))
        deadline = time.monotonic() + self.settings.write_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                fresh, events = self._write(batch_id, events, quarantine, pdf)
                break
            except Exception as exc:
                self.metrics.write_failures.labels(self.metrics.query).inc()
                left = deadline - time.monotonic()
                retry = left > 0 and is_transient(exc)  # a refused request fails the same way again: no retry
                log.warning("batch %s: Cassandra write failed (attempt %d, %s: %s)%s", batch_id, attempt,
                            type(exc).__name__, str(exc)[:200],
                            f"; retrying for {left:.0f}s more" if retry else "; giving up on the batch")
                if not retry:
                    raise
                time.sleep(min(2.0, 0.25 * 2 ** attempt, max(left, 0.1)))
        newest = max((e.event_ms for e in events), default=None)
        if fresh:
            self.metrics.after_write(batch_id, len(events), reasons, newest, time.monotonic() - started)
        return {"batch_id": batch_id, "rows": len(events), "quarantined": len(quarantine), "replayed": not fresh,
                "attempts": attempt, "committed_ms": int(time.time() * 1000), "event_ms": [e.event_ms for e in events]}

    def _write(self, batch_id: int, events: list[tuple], quarantine: list[tuple], pdf) -> tuple[bool, list]:
        """All writes of one batch; False when the guard says it was committed before.
        Also returns the events written and counted (without copies stored before)."""
        session, st = self.session(), self._stmts
        cp = self.checkpoint_id()
        if session.execute(st["is_committed"], (cp, batch_id)).one() is not None:
            log.info("batch %s of checkpoint %s was committed before: not counted again", batch_id, cp)
            return False, dedupe.first_copies(events)
        events = self.write_events(events)
        self.record_batch(batch_id, events, quarantine, pdf)
        return True, events

    def record_batch(self, batch_id: int, events: list[tuple], quarantine: list[tuple], pdf) -> None:
        """What a batch writes once its events are stored: the quarantined records, the
        per-minute aggregate of ``events`` (keyed by minute, checkpoint and batch: a replay
        overwrites its own rows) and, last, its ``committed_batches`` row."""
        from cassandra.concurrent import execute_concurrent_with_args

        session, st, s = self.session(), self._stmts, self.settings
        cp = self.checkpoint_id()
        now_ms = int(time.time() * 1000)
        if quarantine:
            execute_concurrent_with_args(session, st["quarantine"], quarantine, concurrency=s.concurrency,
                                         raise_on_first_error=True)
        minutes = [(_day(m), m, cp, batch_id, n) for m, n in minute_counts([e.event_ms for e in events]).items()]
        if minutes:
            execute_concurrent_with_args(session, st["minute"], minutes, concurrency=s.concurrency,
                                         raise_on_first_error=True)
        ends: dict[str, int] = {}
        if len(pdf):
            for part, off in pdf.groupby("kafka_partition")["kafka_offset"].max().items():
                ends[str(int(part))] = int(off) + 1
        session.execute(st["committed"], (cp, batch_id, s.query_name, s.topic, len(events), len(quarantine),
                                          json.dumps(ends), now_ms))

    #: pandas rows of good events -> the event tuples ``write_events`` takes
    event_rows = staticmethod(lambda good: _event_rows(good))
    #: pandas rows of quarantined records -> the tuples ``record_batch`` takes
    quarantine_rows = staticmethod(lambda bad: _quarantine_rows(bad))

    def new_events(self, events: list[tuple]) -> list[tuple]:
        """The events a batch writes and counts: one copy per event id, and none whose key
        is stored from a Kafka record outside ``events`` (``labsupport.stream.dedupe``)."""
        session, st, s = self.session(), self._stmts, self.settings
        ours = dedupe.positions_by_id(events)
        events = dedupe.first_copies(events)
        return dedupe.not_counted_before(events, dedupe.stored_positions(session, st["stored"], events,
                                                                         s.concurrency), ours)

    def write_events(self, events: list[tuple]) -> list[tuple]:
        """The event tables' part of a batch: idempotent upserts, nothing counted; returns
        the rows written. One copy per event id, and none over a key stored from a Kafka
        record outside ``events`` (``labsupport.stream.dedupe``), so poison splitting,
        which calls it on parts of a failing batch, never moves a stored row either."""
        from cassandra.concurrent import execute_concurrent
        from cassandra.query import BatchStatement, BatchType

        events = self.new_events(events)
        session, st, s = self.session(), self._stmts, self.settings
        now_ms = int(time.time() * 1000)
        statements = []
        # event = (bucket, shard, event_ms, event_id, source_id, event_type, value, payload, partition, offset, day)
        for chunk in group_by_partition(events, lambda e: (e.bucket, e.shard), s.batch_rows, _weigh_event, s.batch_bytes):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self._cl)
            for e in chunk:
                batch.add(st["bucket"], (*e[:10], now_ms))  # the row's fields in INSERT_BY_BUCKET order
            statements.append((batch, ()))
        if s.write_by_source:
            for chunk in group_by_partition(events, lambda e: (e.source_id, e.day), s.batch_rows):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self._cl)
                for e in chunk:
                    batch.add(st["source"], (e.source_id, e.day, e.event_ms, e.event_id, e.event_type, e.value))
                statements.append((batch, ()))
        if statements:
            execute_concurrent(session, statements, concurrency=s.concurrency, raise_on_first_error=True)
        return events


def _event_rows(good) -> list[EventRow]:
    if not len(good):
        return []
    cols = [good[c].tolist() for c in EventRow._fields]
    return [EventRow(b, int(sh), int(ms), eid, src, et, float(v), p, int(pa), int(of), d)
            for b, sh, ms, eid, src, et, v, p, pa, of, d in zip(*cols)]


def _quarantine_rows(bad) -> list[tuple]:
    if not len(bad):
        return []
    cols = [bad[c].tolist() for c in ("received_day", "received_ms", "kafka_partition", "kafka_offset", "topic",
                                      "reason", "raw")]
    return [(day, int(ms), f"{int(pa)}-{int(of)}", topic, int(pa), int(of), reason,
             None if raw is None else raw[:MAX_RAW_STORED])
            for day, ms, pa, of, topic, reason, raw in zip(*cols)]
