"""Lesson 11's plumbing around the stream the learner builds alone: a per-source,
per-minute rollup of ``events``, run as a process of its own that can be killed -9.

The learner writes the subject in their own cells: the table's CQL, the job's function
(``spark.readStream`` … ``from_json`` … a group-by in ``foreachBatch``, cassandra-driver's
prepare/execute, a prometheus_client counter bumped after the write) and a panel's
PromQL. What is not the subject comes from here:

* ``write_job``: the learner's function written into a script (its source, as typed);
* ``JobContext``: what that script is handed: the sandbox's topic, keyspace, checkpoint
  (under the lab home) and metrics address, a Spark session with the Kafka source's jars,
  a Cassandra session, the event contract's schema and the checkpoint's query id;
* ``LearnerJob``: the script run as the lab's `stream` service runs (its process group,
  pid file, log, metrics port — so Prometheus scrapes it as ``job="stream"`` — and the
  check of the checkpoint's newest batch files before each start), on the sandbox's own
  topic, keyspace, checkpoint and consumer group; the default stream is stopped meanwhile
  and put back after (one stream holds the metrics port at a time);
* ``grade_key``, ``table_key`` and ``partition_sizes``: the table's key, graded and measured.

The audit itself is ``labsupport.lessons.audit.rollup_audit``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from labsupport.config import LabConfig, get_config
from labsupport.lessons.reads import PartitionStats
from labsupport.lessons.rollup import MINUTE_MS, partition_sizes
from labsupport.lessons.sandboxes import restore_stream, stream_sandbox
from labsupport.stack.services.stream import StreamService, lab_python
from labsupport.stream.settings import StreamSettings
from labsupport.times import epoch_ms

TABLE = "rollup_by_source_minute"
#: the learner's counter as prometheus_client exports it (a Counter named ``rollup_rows_written``)
ROWS_METRIC = "rollup_rows_written_total"
#: the columns the lesson gives; the learner chooses the key
COLUMNS = ("source_id", "day", "minute", "checkpoint_id", "batch_id", "events", "value_min", "value_max",
           "value_sum")
#: a learner's job stops by itself after this long, should a kernel die and leave it behind
LIFETIME_S = 3600
#: what the sandboxed job runs with: short triggers so batches come every few seconds
JOB_SETTINGS = dict(trigger="2 seconds", max_offsets_per_trigger=5000, starting_offsets="earliest",
                    checkpoint="persistent")


# ---- the key ----------------------------------------------------------------------------------
def grade_key(partition_key: list[str], clustering: list[str]) -> list[str]:
    """What is wrong with a rollup table's primary key for "the last N minutes of one
    source", written back safely after a replay; [] when nothing is."""
    problems = []
    replay = {"checkpoint_id", "batch_id"}
    if "source_id" not in partition_key:
        problems.append("source_id is not in the partition key: the query names one source, so its rows must "
                        "share partitions")
    buckets = [c for c in partition_key if c != "source_id"]
    if "minute" in partition_key:
        problems.append("minute is in the partition key: the last N minutes would be N partitions, not one slice")
    elif not buckets:
        problems.append("the partition key is the source alone: one partition per source grows forever; "
                        "add a time bucket (the day)")
    if replay & set(partition_key):
        problems.append("checkpoint_id/batch_id in the partition key: one source-minute would be spread over "
                        "partitions the read cannot name")
    if not clustering or clustering[0] != "minute":
        problems.append(f"the first clustering column is {clustering[0] if clustering else 'missing'}, not minute: "
                        "the last N minutes are a slice only when rows are ordered by minute")
    if not replay <= set(partition_key) | set(clustering):
        problems.append("checkpoint_id and batch_id are not both in the key: a second batch of the same minute "
                        "would overwrite the first (lost events), unless every batch rewrote whole minutes")
    return problems


def table_key(session, keyspace: str, table: str) -> tuple[list[str], list[str]]:
    """(partition key columns, clustering columns) of a table, in order, as Cassandra has it."""
    rows = session.execute("SELECT column_name, kind, position FROM system_schema.columns "
                           "WHERE keyspace_name = %s AND table_name = %s", (keyspace, table))
    cols = sorted((r.position, r.kind, r.column_name) for r in rows if r.kind in ("partition_key", "clustering"))
    return ([c for _, k, c in cols if k == "partition_key"], [c for _, k, c in cols if k == "clustering"])


@dataclass(frozen=True)
class TableSizes:
    """How one run's rollup rows spread over partitions: under the table's own partition
    key, and under two keys the lesson compares it with."""
    by_key: dict[str, PartitionStats]
    minutes: float  #: minutes of events the rows cover

    def per_day(self, key: str) -> float:
        """Rows the largest such partition holds after a day at this rate (a day bucket's size)."""
        return self.by_key[key].max_rows * 1440 / self.minutes if self.minutes else 0.0


def partition_sizes_of(session, keyspace: str, table: str, partition_key: list[str]) -> TableSizes:
    """Measure the rows of ``keyspace.table`` per partition (the table's key), per source
    alone and per day alone (every source in one partition)."""
    rows = [r._asdict() for r in session.execute(f"SELECT {', '.join(dict.fromkeys(['source_id', 'day', 'minute', *partition_key]))} "
                                                  f"FROM {keyspace}.{table}")]
    minutes = {epoch_ms(r["minute"]) for r in rows}
    span = (max(minutes) - min(minutes)) / MINUTE_MS + 1 if minutes else 0.0
    own = f"({', '.join(partition_key)})"
    return TableSizes({own: partition_sizes(rows, lambda r: tuple(r[c] for c in partition_key)),
                       "(source_id)": partition_sizes(rows, lambda r: r["source_id"]),
                       "(day)": partition_sizes(rows, lambda r: r["day"])}, span)


# ---- the job ----------------------------------------------------------------------------------
@dataclass
class JobContext:
    """What the learner's job function is handed in its own process: where to read and
    write, and the plumbing that is not the lesson's subject."""
    settings: StreamSettings
    cfg: LabConfig = field(default_factory=get_config)
    table: str = TABLE
    lifetime_s: float = LIFETIME_S
    _checkpoint_id: str | None = None

    @classmethod
    def from_env(cls) -> "JobContext":
        """The sandbox's settings, from the ``LAB_STREAM_*`` variables ``LearnerJob`` sets."""
        return cls(StreamSettings.from_env())

    topic = property(lambda self: self.settings.topic)
    keyspace = property(lambda self: self.settings.keyspace)
    query_name = property(lambda self: self.settings.query_name)
    trigger = property(lambda self: self.settings.trigger)
    max_offsets_per_trigger = property(lambda self: self.settings.max_offsets_per_trigger)
    bootstrap_servers = property(lambda self: self.cfg.bootstrap_servers)
    metrics_host = property(lambda self: self.cfg.host)
    metrics_port = property(lambda self: self.cfg.stream_metrics_port)

    @property
    def checkpoint(self) -> str:
        """The checkpoint's location: under the lab home (or LAB_SPARK_CHECKPOINT_ROOT), never /tmp."""
        return self.settings.checkpoint_location(self.cfg)

    @property
    def schema(self):
        """The event contract as ``from_json``'s schema (``labsupport.events.EVENT_FIELDS``)."""
        from labsupport.stream.validation import event_schema

        return event_schema()

    def spark(self):
        """A Spark session with the Kafka source's jars, UTC, on the lab's Spark UI port."""
        from labsupport.stream.job import spark_session

        return spark_session(self.cfg, app_name=self.query_name, serve_ui=True)

    def cassandra(self):
        """A cassandra-driver session on the lab's Cassandra (closed when the process ends)."""
        from labsupport import schema

        return schema.connect(self.cfg)[1]

    def checkpoint_id(self) -> str:
        """The query id Spark keeps in the checkpoint: the same after a restart on it."""
        from labsupport.stream.job import read_checkpoint_id

        if self._checkpoint_id is None:
            self._checkpoint_id = read_checkpoint_id(self.settings.checkpoint_dir(self.cfg))
        return self._checkpoint_id

    @staticmethod
    def on_batch_thread(df):
        """``df`` ready to use in ``foreachBatch``'s callback thread, where Spark 4.2 has no
        active session and planning can fail with a NullPointerException (seen here)."""
        jss = df.sparkSession._jsparkSession
        df.sparkSession._jvm.org.apache.spark.sql.SparkSession.setActiveSession(jss)
        return df


def write_job(path: Path, function: Callable) -> Path:
    """A script that runs ``function(JobContext.from_env())``: the function's source as it
    was typed (edit the notebook, not the script)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'"""Written by lesson 11 from the notebook\'s {function.__name__}: edit it there."""\n'
                    "from labsupport.lessons.capstone import JobContext\n\n\n"
                    f"{inspect.getsource(function)}\n\n"
                    f'if __name__ == "__main__":\n    {function.__name__}(JobContext.from_env())\n')
    return path


class LearnerJob(StreamService):
    """The learner's script run the way the `stream` service runs (its process group, so
    ``kill()`` is a real ``kill -9`` of Python and its Spark JVM together)."""

    def __init__(self, cfg: LabConfig, settings: StreamSettings, script: Path):
        super().__init__(cfg, settings)
        self.script = Path(script)

    def version(self) -> str:
        return f"learner job {self.script.name}"

    def argv(self) -> list[str]:
        return [lab_python(self.cfg), str(self.script)]

    def env(self) -> dict[str, str]:
        return {**super().env(), "TZ": "UTC"}

    def probe(self) -> str | None:
        """Ready once the job exports its rows counter (it may still be starting Spark)."""
        import httpx

        try:
            found = self.metrics()
        except httpx.HTTPError:
            return "metrics endpoint not up yet (is start_http_server called first?)"
        return None if ROWS_METRIC in found else f"{ROWS_METRIC} not exported yet"

    def rows_written(self) -> float | None:
        """The job's own count of confirmed rollup rows; None while it does not answer."""
        return self.metric(ROWS_METRIC)


def sandbox(script: Path, name: str = "lesson11", cfg: LabConfig | None = None) -> tuple[LearnerJob, bool]:
    """(the learner's job on a topic, keyspace, checkpoint and consumer group of its own,
    not started; whether the default stream was running). The default stream is stopped:
    the job takes its metrics port. ``finish`` puts it back."""
    cfg = cfg or get_config()
    was_running = StreamService(cfg).running()
    job = stream_sandbox(name, cfg, start=False, **JOB_SETTINGS,
                         service=lambda c, s: LearnerJob(c, replace(s, group_id=s.query_name), script))
    return job, was_running


def finish(job: LearnerJob, stream_was_running: bool, progress=print) -> None:
    """Stop the learner's job; the default stream back if it ran before."""
    job.stop()
    if stream_was_running:
        restore_stream(job.cfg, progress)


def panel(title: str, expr: str, unit: str = ""):
    """A dashboard panel of the learner's own query, drawn and linted as the shipped ones are."""
    from labsupport.observe.dashboards import Panel, Target

    return Panel("lesson11", 0, title, unit, "the capstone's panel", (Target(expr, ""),))


# ---- the kill -----------------------------------------------------------------------------------
def batch_in_flight(checkpoint: Path) -> int | None:
    """The micro-batch Spark has planned (its ``offsets/N`` written) but not committed (no
    ``commits/N`` yet), read from the checkpoint; None between batches."""
    from labsupport.stream.checkpoint_files import newest

    planned, done = newest(checkpoint / "offsets"), newest(checkpoint / "commits")
    if planned is None:
        return None
    n = int(planned.name)
    return n if done is None or int(done.name) < n else None


def kill_mid_batch(job: LearnerJob, written: Callable[[int], int] | None = None, timeout: float = 60,
                   progress=print) -> int:
    """``kill -9`` the job while a micro-batch is between its planned offsets and its
    commit: the case a replay must get right. With ``written`` (rows a batch has stored
    so far), wait for a batch caught half-way, some of its rows written and its commit
    not, for up to ``timeout`` seconds, then settle for any batch in flight (the window
    between a batch's first write and its commit is a fraction of a second). Returns the
    batch's id."""
    from labsupport.waits import TimedOut, wait_for

    def in_flight(need_rows: bool):
        n = batch_in_flight(job.checkpoint)
        return (n,) if n is not None and (not need_rows or written(n) > 0) else None

    try:
        (batch,) = wait_for(lambda: in_flight(written is not None), timeout, "a micro-batch half written",
                            interval=0.01)
    except TimedOut:
        (batch,) = wait_for(lambda: in_flight(False), timeout, "a micro-batch in flight", interval=0.01)
    job.kill(progress)
    return batch


def beside_own(own_panel, **kwargs):
    """A panel of one's own drawn as the dashboard draws it, beside a live plot of the
    same query (``widgets.beside`` does this for the shipped panels, found by title)."""
    import ipywidgets as widgets
    import plotly.graph_objects as go

    from labsupport.observe import panels
    from labsupport.observe.widgets import LivePlot

    live = LivePlot(own_panel.title, expr=own_panel.targets[0].expr, unit=own_panel.unit, **kwargs)
    return widgets.HBox([go.FigureWidget(panels.figure(own_panel.title, cfg=live.cfg, panel=own_panel)),
                         live.widget]), live


def committed_through(checkpoint: Path) -> int | None:
    """The id of the newest micro-batch the checkpoint marks committed; None before the first."""
    from labsupport.stream.checkpoint_files import newest

    done = newest(Path(checkpoint) / "commits")
    return int(done.name) if done is not None else None


def as_rollup(row):
    """A row read with ``events, value_min, value_max, value_sum`` as a ``Rollup``."""
    from labsupport.lessons.rollup import Rollup

    return Rollup(row.events, row.value_min, row.value_max, row.value_sum or 0.0)


def rows_of_batch(session, keyspace: str, table: str, batch_id: int) -> int:
    """The rows one micro-batch has written so far (a full read of the lesson's small
    table: ``batch_id`` is a clustering column, which no read can fix alone)."""
    return sum(1 for r in session.execute(f"SELECT batch_id FROM {keyspace}.{table}") if r.batch_id == batch_id)
