"""The pipeline-level numbers the Streamlit view shows: rates and health from
Prometheus, the total landed from Cassandra.

Kept apart from the Streamlit script so notebooks and tests read the same numbers.

Why the total comes from Cassandra: ``rows_written_total`` lives in the stream's
process, so every restart of the `stream` service starts it at 0 while Cassandra still
holds every row — ``sum(rows_written_total)`` then shows 0 on a full table.
Prometheus cannot give the total back either: ``increase(...[range])`` survives resets
but extrapolates to the range's edges, never sees what a process counted before its
first scrape, ends at the retention (15 days by default), and adds whatever keyspace
the service was last pointed at. The stream's own durable count is the per-minute
aggregate in Cassandra (``events_per_minute``, written with each batch, exact by event
id): the total is its sum, one server-side ``sum`` per day partition — a few small
requests per refresh, whatever the row count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from labsupport.config import LabConfig, get_config
from labsupport.observe import dashboards, prom
from labsupport.schema import DEFAULT_KEYSPACE

RATE = 'sum(rate(rows_written_total{job="stream"}[1m]))'


@dataclass
class PipelineStats:
    events_landed: int | None     # events the stream stored (its aggregate in Cassandra); None: no answer
    events_per_s_now: float
    events_per_s_avg: float       # over the window
    events_per_s_peak: float      # over the window
    under_replicated: float       # Kafka partitions below their replica count
    under_min_isr: float          # partitions below min.insync.replicas (writes with acks=all fail)
    kafka_up: bool                # every Kafka process scraped is up
    cassandra_up: bool            # every Cassandra node scraped is up
    stream_up: bool
    stream_lag_s: float
    quarantined: float
    kafka_nodes_up: float = 0     # how many of ``kafka_nodes`` are up (a cluster: brokers and controller)
    kafka_nodes: float = 0
    cassandra_nodes_up: float = 0  # how many of ``cassandra_nodes`` are up (a ring: each node)
    cassandra_nodes: float = 0

    def as_dict(self) -> dict:
        return asdict(self)


DAYS = "SELECT DISTINCT day FROM {ks}.events_per_minute"
EVENTS_ON = "SELECT sum(CAST(events AS bigint)) AS events FROM {ks}.events_per_minute WHERE day = ?"


def events_landed(session, keyspace: str = DEFAULT_KEYSPACE) -> int:
    """Every event the stream stored in ``keyspace``: the sum of its per-minute aggregate.
    0 before the stream created the table."""
    from cassandra import InvalidRequest

    try:
        days = [r.day for r in session.execute(DAYS.format(ks=keyspace))]
    except InvalidRequest:  # no such keyspace or table yet: nothing has landed
        return 0
    stmt = session.prepare(EVENTS_ON.format(ks=keyspace))
    return sum(session.execute(stmt, (day,)).one().events or 0 for day in days)


def landed_or_none(session=None, keyspace: str = DEFAULT_KEYSPACE, cfg: LabConfig | None = None) -> int | None:
    """``events_landed``, or None when Cassandra does not answer (the view says so)."""
    from cassandra import DriverException
    from cassandra.cluster import NoHostAvailable

    from labsupport import schema

    cluster = None
    try:
        if session is None:
            cluster, session = schema.connect(cfg or get_config(), connect_timeout=3)
        return events_landed(session, keyspace)
    except (NoHostAvailable, DriverException, OSError):
        return None
    finally:
        if cluster is not None:
            cluster.shutdown()


def queries(window: str = "15m") -> dict[str, str]:
    """Every PromQL query the pipeline view shows, by the field it fills (`lab
    lint-metrics` checks these like the dashboard's)."""
    return {
        "events_per_s_now": RATE,
        "events_per_s_avg": f"avg_over_time(({RATE})[{window}:5s])",
        "events_per_s_peak": f"max_over_time(({RATE})[{window}:5s])",
        "under_replicated": 'sum(kafka_server_replicamanager_underreplicatedpartitions{job="kafka"})',
        "under_min_isr": 'sum(kafka_server_replicamanager_underminisrpartitioncount{job="kafka"})',
        "kafka_up": 'min(up{job="kafka"})',
        "cassandra_up": 'min(up{job="cassandra"})',
        "kafka_nodes_up": 'sum(up{job="kafka"})',
        "kafka_nodes": 'count(up{job="kafka"})',
        "cassandra_nodes_up": 'sum(up{job="cassandra"})',
        "cassandra_nodes": 'count(up{job="cassandra"})',
        "stream_up": 'min(up{job="stream"})',
        "stream_lag_s": 'max(event_time_lag_seconds{job="stream"})',
        "quarantined": 'sum(quarantined_total{job="stream"})',
    }


def nodes_health(up: float, total: float) -> str:
    """A layout's health in a word or three: ``up``, ``DOWN``, or on a cluster or ring
    with some nodes down ``2 of 3 up`` — at RF 3 a ring with one node down still takes
    quorum writes, which a bare DOWN would hide."""
    if total <= 0 or up <= 0:
        return "DOWN"
    return "up" if up >= total else f"{up:.0f} of {total:.0f} up"


def panels() -> list[dashboards.Panel]:
    """The view's queries as panels, so the linter reads them like the dashboard's."""
    return [dashboards.Panel("pipeline-view", i, f"Pipeline view: {name}", "", "", (dashboards.Target(expr, name),))
            for i, (name, expr) in enumerate(queries().items())]


def collect(window: str = "15m", cfg: LabConfig | None = None, session=None,
            keyspace: str = DEFAULT_KEYSPACE) -> PipelineStats:
    """``session``: a Cassandra session to reuse (the view keeps one); otherwise one per call."""
    values = {name: prom.scalar(expr, cfg) for name, expr in queries(window).items()}
    for up in ("kafka_up", "cassandra_up", "stream_up"):
        values[up] = values[up] == 1
    return PipelineStats(events_landed=landed_or_none(session, keyspace, cfg), **values)
