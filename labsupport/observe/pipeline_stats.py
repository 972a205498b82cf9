"""The pipeline-level numbers the Streamlit view shows, from Prometheus.

Kept apart from the Streamlit script so notebooks and tests read the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from labsupport.observe import prom
from labsupport.config import LabConfig

RATE = 'sum(rate(rows_written_total{job="stream"}[1m]))'


@dataclass
class PipelineStats:
    events_landed: float          # rows the stream wrote to Cassandra (after commit)
    events_per_s_now: float
    events_per_s_avg: float       # over the window
    events_per_s_peak: float      # over the window
    under_replicated: float       # Kafka partitions below their replica count
    under_min_isr: float          # partitions below min.insync.replicas (writes with acks=all fail)
    kafka_up: bool
    cassandra_up: bool
    stream_up: bool
    stream_lag_s: float
    quarantined: float

    def as_dict(self) -> dict:
        return asdict(self)


def collect(window: str = "15m", cfg: LabConfig | None = None) -> PipelineStats:
    q = lambda expr: prom.scalar(expr, cfg)  # noqa: E731
    return PipelineStats(
        events_landed=q('sum(rows_written_total{job="stream"})'),
        events_per_s_now=q(RATE),
        events_per_s_avg=q(f"avg_over_time(({RATE})[{window}:5s])"),
        events_per_s_peak=q(f"max_over_time(({RATE})[{window}:5s])"),
        under_replicated=q('sum(kafka_server_replicamanager_underreplicatedpartitions{job="kafka"})'),
        under_min_isr=q('sum(kafka_server_replicamanager_underminisrpartitioncount{job="kafka"})'),
        kafka_up=q('min(up{job="kafka"})') == 1,
        cassandra_up=q('min(up{job="cassandra"})') == 1,
        stream_up=q('min(up{job="stream"})') == 1,
        stream_lag_s=q('max(event_time_lag_seconds{job="stream"})'),
        quarantined=q('sum(quarantined_total{job="stream"})'),
    )
