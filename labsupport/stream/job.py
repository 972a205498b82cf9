"""The streaming job: Kafka → parse/validate in the JVM → foreachBatch → Cassandra.

One module, two ways to run it:

    python -m labsupport.stream             # the managed service `stream` (killable)

    from labsupport.stream.job import StreamJob
    job = StreamJob(settings=StreamSettings(trigger="availableNow"))
    job.start(); job.query.awaitTermination(); job.stop()   # in a notebook

Recovery lives in the checkpoint: Spark records a batch's offsets before running it and
commits it after ``write_batch`` returns, so a crash in between replays the same batch
id over the same offsets — which the idempotent sink absorbs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError, MissingTool
from labsupport.stream.metrics import StreamMetrics
from labsupport.stream.settings import StreamSettings

log = logging.getLogger("labsupport.stream")


def spark_jars(cfg: LabConfig) -> list[str]:
    """The Kafka source's four jars, from the lab home (never resolved over the network)."""
    jars = sorted(str(p) for p in cfg.paths.jars("spark-kafka").glob("*.jar"))
    if not any("spark-sql-kafka" in j for j in jars):
        raise MissingTool(f"the Spark Kafka source jars are missing from {cfg.paths.jars('spark-kafka')}",
                          "run `lab setup` (resolves them with Maven)")
    return jars


def cluster_conf(cfg: LabConfig) -> dict[str, str]:
    """What a session needs on a real cluster (``LAB_SPARK_MASTER=spark://…`` or
    ``k8s://…``): executors sized from the config, the Kafka source's jars shipped to them
    from the lab home (``spark.jars``: no --packages resolution over the network), and
    Python workers started with the lab's interpreter. Empty for ``local[N]``."""
    if cfg.spark_master.startswith("local"):
        return {}
    return {"spark.executor.cores": str(cfg.spark_executor_cores),
            "spark.executor.memory": cfg.spark_executor_memory,
            "spark.cores.max": str(cfg.spark_executor_cores),
            "spark.pyspark.python": sys.executable,
            "spark.executorEnv.PYTHONPATH": str(cfg.paths.repo)}


def user_conf(cfg: LabConfig) -> dict[str, str]:
    """The entries of ``LAB_SPARK_CONF_FILE`` (empty without one). Spark reads its own
    spark-defaults.conf only as defaults under what a session sets, so the lab applies
    this file itself, last: a cluster's settings win over the lab's."""
    import javaproperties

    if not cfg.spark_conf_file:
        return {}
    path = Path(cfg.spark_conf_file).expanduser()
    try:
        with open(path, encoding="utf-8") as f:
            conf = javaproperties.load(f)
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(f"LAB_SPARK_CONF_FILE={path} cannot be read ({type(exc).__name__}: {exc})",
                       "point it at a readable spark-defaults.conf, or unset it") from None
    if bad := sorted(k for k in conf if not k.startswith("spark.")):
        raise LabError(f"LAB_SPARK_CONF_FILE={path}: {', '.join(bad)} are not Spark properties",
                       "every key of the file starts with `spark.`")
    return conf


def spark_session(cfg: LabConfig | None = None, app_name: str = "streamlab-stream", serve_ui: bool = False):
    """A session on ``cfg.spark_master`` (``local[2]`` by default) with the Kafka source,
    UTC, Arrow hand-over and Prometheus metrics.

    Only the managed `stream` service (``serve_ui=True``) claims the lab's Spark UI port,
    which Prometheus scrapes; a session in a notebook gets a free port of its own, so it
    can run while the service does."""
    from pyspark.sql import SparkSession

    from labsupport.java import find_java_home

    cfg = cfg or get_config()
    os.environ["JAVA_HOME"] = str(find_java_home(cfg.java_home))
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers must find pyarrow: the lab venv
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", cfg.host)
    # scratch space under the lab home, set the way a cluster manager sets it (with
    # `spark.local.dir` instead, Spark warns on every start that a cluster manager overrides it)
    os.environ.setdefault("SPARK_LOCAL_DIRS", str(cfg.paths.spark_scratch))
    builder = SparkSession.builder
    for k, v in session_conf(cfg, app_name, serve_ui).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def session_conf(cfg: LabConfig, app_name: str, serve_ui: bool) -> dict[str, str]:
    """Every setting of a lab session: the lab's, a cluster's (`cluster_conf`), then the
    learner's own file (`user_conf`), later ones winning."""
    return {
        "spark.master": cfg.spark_master,
        "spark.app.name": app_name,
        "spark.driver.memory": "1g",
        "spark.driver.host": cfg.host,
        "spark.driver.bindAddress": cfg.host,
        "spark.jars": ",".join(spark_jars(cfg)),
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.port": str(cfg.spark_ui_port) if serve_ui else "0",
        "spark.ui.showConsoleProgress": "false",
        "spark.port.maxRetries": "0",  # a taken UI port is an error, not a silent move to +1
        "spark.ui.prometheus.enabled": "true",
        "spark.sql.streaming.metricsEnabled": "true",
        "spark.metrics.namespace": "streamlab",
        "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
        "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
        **cluster_conf(cfg),
        **user_conf(cfg),
    }


def read_checkpoint_id(checkpoint: Path) -> str:
    """The query id Spark stores in ``<checkpoint>/metadata``: stable across restarts on
    the same checkpoint, new for a fresh one — exactly the identity the guard needs."""
    return json.loads((checkpoint / "metadata").read_text().splitlines()[0])["id"]


def batch_frame(df):
    """A micro-batch as a pandas frame, handed over with Arrow (column-wise, ~10x
    cheaper than ``collect()``).

    foreachBatch runs on a py4j callback thread where no SparkSession may be active:
    Spark 4.2 then builds the plan with a null session and fails with an intermittent
    NullPointerException in SparkPlan.sparkContext (seen here), so set it first."""
    from labsupport.stream.validation import handover_columns

    jss = df.sparkSession._jsparkSession
    df.sparkSession._jvm.org.apache.spark.sql.SparkSession.setActiveSession(jss)
    return handover_columns(df).toPandas()


class StreamJob:
    def __init__(self, cfg: LabConfig | None = None, settings: StreamSettings | None = None,
                 metrics: StreamMetrics | None = None, spark=None, serve_ui: bool = False):
        from labsupport.stream.sink import CassandraSink

        self.cfg = cfg or get_config()
        self.settings = settings or StreamSettings.from_env()
        self.metrics = metrics or StreamMetrics(self.settings.query_name, self.settings.count_before_write)
        #: as Spark takes it: a local path or a cluster filesystem URI
        self.checkpoint_location = self.settings.checkpoint_location(self.cfg)
        self._spark = spark
        self.serve_ui = serve_ui
        self._cp_id: str | None = None
        self.sink = CassandraSink(self.cfg, self.settings, self.metrics, self.checkpoint_id)
        self.query = None
        self.listener = None
        #: called after each committed batch with the sink's result plus the hand-over and
        #: write seconds (how the benchmark measures latency without touching the data)
        self.batch_listeners: list = []
        #: (checkpoint id, batch id) -> times that batch failed with no part writable
        self._whole_failures: dict[tuple[str, int], int] = {}

    @property
    def spark(self):
        if self._spark is None:
            self._spark = spark_session(self.cfg, serve_ui=self.serve_ui)
        return self._spark

    @property
    def checkpoint(self) -> Path:
        """The checkpoint as a local folder (an error for a remote filesystem URI)."""
        return self.settings.checkpoint_dir(self.cfg)

    def checkpoint_id(self) -> str:
        """The id Spark keeps in the checkpoint's metadata: the running query's own id
        (``StreamingQuery.id`` persists across restarts from the same checkpoint, so this
        works wherever the checkpoint lives), else read from a local checkpoint."""
        if self._cp_id is None:
            self._cp_id = str(self.query.id) if self.query is not None else read_checkpoint_id(self.checkpoint)
        return self._cp_id

    # ---- the query -----------------------------------------------------------------------
    def source(self):
        s = self.settings
        return (self.spark.readStream.format("kafka")
                .option("kafka.bootstrap.servers", self.cfg.bootstrap_servers)
                .option("subscribe", s.topic)
                .option("startingOffsets", s.starting_offsets)
                .option("maxOffsetsPerTrigger", str(s.max_offsets_per_trigger))
                # retention deleting unread data is reported in the log, not fatal
                .option("failOnDataLoss", "false")
                .load())

    def write_batch(self, df, batch_id: int) -> None:
        """foreachBatch: hand the parsed batch to Python with Arrow, write it, then count it.

        A failure that is not transient is blamed on the records, and the batch is split
        until the poison ones are found and quarantined (``labsupport.stream.poison``)."""
        from labsupport.stream.poison import is_transient

        t0 = time.monotonic()
        try:
            pdf = batch_frame(df)
        except Exception as exc:
            if is_transient(exc):
                raise
            pdf = self._split_handover(df, batch_id, exc)
        if not len(pdf):
            return
        t1 = time.monotonic()
        try:
            result = self.sink.write_batch(pdf, batch_id)
        except Exception as exc:
            if self.settings.swallow_write_errors:  # the seed's bug: returning lets Spark commit the batch
                log.error("batch %s: the write failed and the error was swallowed: Spark commits the batch, its "
                          "%d rows are lost (%s)", batch_id, len(pdf), _first_line(exc))
                return
            if is_transient(exc):
                raise
            pdf = self._split_write(df, pdf, batch_id, exc)
            result = self.sink.write_batch(pdf, batch_id)
        result.update(handover_s=t1 - t0, write_s=time.monotonic() - t1)
        log.info("batch %(batch_id)s: %(rows)s rows, %(quarantined)s quarantined, replayed=%(replayed)s, "
                 "hand-over %(handover_s).2fs, write %(write_s).2fs", result)
        for listener in self.batch_listeners:
            listener(result)

    # ---- poison records: the last line of defence -----------------------------------------
    def _split_handover(self, df, batch_id: int, exc: Exception):
        """The batch could not be handed to Python: find the records that cannot, by
        handing over halves, and quarantine them."""
        import pandas as pd

        from labsupport.stream.poison import isolate

        log.error("batch %s: hand-over to Python failed (%s): splitting it to find the poison record", batch_id,
                  _first_line(exc))
        keys = sorted((int(r[0]), int(r[1])) for r in df.select("kafka_partition", "kafka_offset").collect())
        done, poison = isolate(keys, lambda part: batch_frame(self._only(df, part)), self._count_split)
        poison_keys = self._accept_poison(batch_id, keys, done, poison, exc)
        frames = [f for f in done if len(f)]
        if poison_keys:
            frames.append(self._poison_frame(df, poison_keys))
        return pd.concat(frames, ignore_index=True) if frames else batch_frame(self._only(df, []))

    def _split_write(self, df, pdf, batch_id: int, exc: Exception):
        """Cassandra refused the batch: write halves of its events until the rows it
        refuses alone are found; returns the batch with those marked as quarantined."""
        import pandas as pd

        from labsupport.stream.poison import isolate

        log.error("batch %s: Cassandra refused it (%s): splitting it to find the poison record", batch_id,
                  _first_line(exc))
        good = pdf[pdf["reason"].isna()]
        keys = sorted(zip(good["kafka_partition"].astype(int), good["kafka_offset"].astype(int)))
        by_key = good.set_index(["kafka_partition", "kafka_offset"], drop=False)

        def attempt(part):
            self.sink.write_events(self.sink.event_rows(by_key.loc[part]))
            return part

        done, poison = isolate(keys, attempt, self._count_split)
        poison_keys = self._accept_poison(batch_id, keys, done, poison, exc)
        if not poison_keys:
            return pdf
        marked = self._poison_frame(df, poison_keys)
        hit = pd.MultiIndex.from_frame(pdf[["kafka_partition", "kafka_offset"]].astype(int)).isin(poison_keys)
        return pd.concat([pdf[~hit], marked], ignore_index=True)

    def _accept_poison(self, batch_id, keys, done, poison, exc) -> list[tuple[int, int]]:
        """The poison keys, once it is the records' fault: some part of the batch went
        through, or this same batch has failed as a whole ``poison_after_failures`` times."""
        if not poison:
            return []
        if not done:
            seen = self._whole_failures[(self.checkpoint_id(), batch_id)] = \
                self._whole_failures.get((self.checkpoint_id(), batch_id), 0) + 1
            if seen < self.settings.poison_after_failures:
                log.error("batch %s: no part of it can be written (failure %d of %d before its %d records are "
                          "quarantined as poison): the query fails and restarts", batch_id, seen,
                          self.settings.poison_after_failures, len(keys))
                raise exc
        from labsupport.stream.poison import error_text

        for (part, off), err in poison:
            log.error("batch %s: record %s-%s is a poison record, quarantined: %s", batch_id, part, off,
                      error_text(err))
        self.metrics.poison_records.labels(self.settings.query_name).inc(len(poison))
        return [k for k, _ in poison]

    def _count_split(self) -> None:
        self.metrics.batch_splits.labels(self.settings.query_name).inc()

    @staticmethod
    def _only(df, keys):
        """The rows of ``df`` whose (partition, offset) lie in the ranges of ``keys``."""
        from functools import reduce

        from pyspark.sql import functions as F

        from labsupport.stream.poison import offset_ranges

        conds = [(F.col("kafka_partition") == p) & F.col("kafka_offset").between(lo, hi)
                 for p, (lo, hi) in offset_ranges(keys).items()]
        return df.where(reduce(lambda a, b: a | b, conds) if conds else F.lit(False))

    def _poison_frame(self, df, keys):
        """Quarantine rows for the poison records, built in the JVM from what always
        converts: their coordinates, and the raw text if even that can be handed over."""
        from pyspark.sql import functions as F

        from labsupport.stream.validation import POISON

        position = F.concat_ws("-", "kafka_partition", "kafka_offset")
        rows = self._only(df, keys).where(position.isin([f"{p}-{o}" for p, o in keys]))
        cols = ["topic", "kafka_partition", "kafka_offset", "received_ms", "received_day",
                F.lit(POISON).alias("reason")]
        try:
            return rows.select(*cols, "raw").toPandas()
        except Exception:  # noqa: BLE001 - the raw text itself is what cannot cross
            return rows.select(*cols, F.lit(None).cast("string").alias("raw")).toPandas()

    def start(self, topic_timeout: float | None = 60.0, should_stop=lambda: False):
        """Start the query once its topic exists (waiting ``topic_timeout`` s for it, None:
        until ``should_stop()``). Returns the query, or None when told to stop first."""
        from labsupport.stream.offsets import OffsetCommitter
        from labsupport.stream.source_topic import await_topic
        from labsupport.stream.validation import parse

        s = self.settings
        if not await_topic(self.cfg.bootstrap_servers, s.topic, topic_timeout, should_stop):
            return None
        if "://" not in self.checkpoint_location:
            Path(self.checkpoint_location).mkdir(parents=True, exist_ok=True)
        self._cp_id = None
        if self.listener is None:
            self.listener = OffsetCommitter(self.cfg.bootstrap_servers, s.group_id, s.query_name)
            self.listener.on_idle = lambda _e: self.metrics.query_idle.labels(s.query_name).set(1)
            self.listener.on_lag = self.metrics.lag
            self.spark.streams.addListener(self.listener)
        writer = (parse(self.source(), s).writeStream.queryName(s.query_name)
                  .option("checkpointLocation", self.checkpoint_location)
                  .foreachBatch(self.write_batch))
        if s.trigger == "availableNow":
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=s.trigger)
        self.query = writer.start()
        self.metrics.query_active.labels(s.query_name).set(1)
        self.metrics.reads(s.topic)
        return self.query

    def stop(self) -> None:
        if self.query is not None and self.query.isActive:
            self.query.stop()
        self.metrics.query_active.labels(self.settings.query_name).set(0)
        if self.listener is not None and self._spark is not None:
            self._spark.streams.removeListener(self.listener)
            self.listener.close()
            self.listener = None
        self.sink.close()

    def run_forever(self, should_stop=lambda: False, restart_delay: float = 3.0) -> None:
        """The service's loop: a failed query is logged, counted and restarted from its
        checkpoint (which replays the failed batch), until ``should_stop()``."""
        q = self.settings.query_name
        if self.start(topic_timeout=None, should_stop=should_stop) is None:
            return self.stop()
        while not should_stop():
            try:
                finished = self.query.awaitTermination(1)
            except Exception:  # pyspark raises StreamingQueryException for a failed query
                finished = True
            if finished:
                err = self.query.exception()
                if err is None:
                    log.info("query %s finished", q)
                    return
                self.metrics.query_active.labels(q).set(0)
                self.metrics.query_restarts.labels(q).inc()
                log.error("query %s failed, restarting from its checkpoint in %.0fs: %s", q, restart_delay,
                          str(err).splitlines()[0][:300])
                deadline = time.monotonic() + restart_delay
                while time.monotonic() < deadline and not should_stop():
                    time.sleep(0.2)
                if not should_stop() and self.start(topic_timeout=None, should_stop=should_stop) is None:
                    break
        self.stop()


def _first_line(exc: BaseException) -> str:
    from labsupport.stream.poison import error_text

    return error_text(exc)
