"""The stream's own Prometheus metrics, served from the Spark driver.

The counters move only once Cassandra has confirmed a batch: then ``rows_written_total``
can never exceed the rows really stored, whatever crashes. ``count_before_write=True``
moves the increment in front of the write — the same code with one flag flipped, the
broken variant of failure mode 2, where a failing write is counted anyway (and counted
again when Spark retries the batch).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class StreamMetrics:
    def __init__(self, query: str, count_before_write: bool = False):
        self.query = query
        self.count_before_write = count_before_write
        self.registry = r = CollectorRegistry()
        lbl = ["query"]
        self.rows_written = Counter("rows_written", "Events written to Cassandra", lbl, registry=r)
        self.batches_committed = Counter("batches_committed", "Micro-batches fully written", lbl, registry=r)
        self.quarantined = Counter("quarantined", "Records sent to quarantine", lbl + ["reason"], registry=r)
        self.batch_duration = Histogram("batch_duration_seconds", "Time to write one micro-batch", lbl,
                                        buckets=_BUCKETS, registry=r)
        self.event_time_lag = Gauge("event_time_lag_seconds",
                                    "Now minus the newest event time of the last committed batch", lbl, registry=r)
        self.write_failures = Counter("write_failures", "Failed attempts to write a batch", lbl, registry=r)
        self.query_restarts = Counter("query_restarts", "Times the query was restarted after failing", lbl,
                                      registry=r)
        self.consumer_lag = Gauge("consumer_lag_offsets", "Records of the topic not read yet when the last "
                                  "batch was planned (Kafka's latest offset minus the batch's end, summed over "
                                  "partitions)", lbl + ["topic"], registry=r)
        self.source_info = Gauge("query_source_info", "1 for each topic the query reads (a dashboard joins "
                                 "Kafka's per-topic series on it)", lbl + ["topic"], registry=r)
        self.query_active = Gauge("query_active", "1 while the streaming query runs", lbl, registry=r)
        self.query_idle = Gauge("query_idle", "1 once the query has caught up with its topic", lbl, registry=r)
        self.last_batch_id = Gauge("last_batch_id", "Id of the last committed micro-batch", lbl, registry=r)
        self.poison_records = Counter("poison_records", "Records quarantined because the batch holding them "
                                      "failed without them passing (found by splitting it)", lbl, registry=r)
        self.batch_splits = Counter("batch_splits", "Times a failing micro-batch was split in two to find "
                                    "a poison record", lbl, registry=r)
        self.server = None
        self._zero_series()

    def _zero_series(self) -> None:
        """Every series exists from the start, at 0: a clean pipeline's *Quarantined rows*
        panel shows a flat 0 per reason instead of "No data", and ``increase()`` sees the
        first quarantined record as a step from 0 rather than a series appearing."""
        from labsupport.stream.validation import ALL_REASONS

        q = self.query
        for reason in ALL_REASONS:
            self.quarantined.labels(q, reason)
        for counter in (self.rows_written, self.batches_committed, self.write_failures, self.query_restarts,
                        self.poison_records, self.batch_splits):
            counter.labels(q)

    def serve(self, host: str, port: int):
        """Expose /metrics on host:port (the driver's HTTP thread)."""
        self.server, _ = start_http_server(port, addr=host, registry=self.registry)
        return self.server

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    # ---- the one code path, with the flag deciding WHEN rows are counted --------------
    def before_write(self, rows: int) -> None:
        if self.count_before_write:
            self.rows_written.labels(self.query).inc(rows)

    def after_write(self, batch_id: int, rows: int, quarantined: dict[str, int], newest_event_ms: int | None,
                    seconds: float) -> None:
        q = self.query
        if not self.count_before_write:
            self.rows_written.labels(q).inc(rows)
        for reason, n in quarantined.items():
            self.quarantined.labels(q, reason).inc(n)
        self.batches_committed.labels(q).inc()
        self.batch_duration.labels(q).observe(seconds)
        self.last_batch_id.labels(q).set(batch_id)
        if newest_event_ms is not None:
            self.event_time_lag.labels(q).set(max(0.0, time.time() - newest_event_ms / 1000))

    def reads(self, topic: str) -> None:
        """The query reads ``topic``: its source series and its lag exist from the start (at 0)."""
        self.source_info.labels(self.query, topic).set(1)
        self.consumer_lag.labels(self.query, topic)

    def lag(self, offsets_by_topic: dict[str, int]) -> None:
        for topic, n in offsets_by_topic.items():
            self.consumer_lag.labels(self.query, topic).set(n)

    # ---- reading back (tests, notebooks) -------------------------------------------------
    def value(self, name: str, **labels) -> float:
        v = self.registry.get_sample_value(name, {"query": self.query, **labels})
        return v or 0.0
