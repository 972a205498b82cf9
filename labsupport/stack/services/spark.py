"""Spark's own standalone cluster manager as two optional lab services: a master and
one worker, from the PyPI ``pyspark`` package (``bin/spark-class`` runs
``org.apache.spark.deploy.master.Master`` / ``...worker.Worker``), each its own process
group on loopback ports.

With ``LAB_SPARK_MASTER=spark://127.0.0.1:7077`` the `stream` service (and any notebook
session) submits to this master and its executors run on the worker: a real cluster, in
miniature. Both expose Spark's PrometheusServlet (master ``/metrics/master/prometheus``,
worker ``/metrics/prometheus``), which Prometheus scrapes like every other service.

Ready: the master's JSON API answers (status ALIVE); the worker once the master lists
it ALIVE — the readiness a submitting driver needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from labsupport.errors import MissingTool
from labsupport.java import find_java_home
from labsupport.stack.services.base import Service

METRICS_PROPERTIES = {
    "*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
    "*.sink.prometheusServlet.path": "/metrics/prometheus",
    "master.sink.prometheusServlet.path": "/metrics/master/prometheus",
    "applications.sink.prometheusServlet.path": "/metrics/applications/prometheus",
}


def daemon_properties() -> str:
    """The master's and the worker's spark-defaults.conf (both backends): metrics for
    Prometheus, no REST submission port (one less listener)."""
    lines = [f"spark.metrics.conf.{k} {v}" for k, v in METRICS_PROPERTIES.items()]
    lines += ["spark.ui.prometheus.enabled true", "spark.master.rest.enabled false"]
    return "\n".join(lines) + "\n"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def master_state(cfg) -> dict:
    """The master's own view (its web UI's JSON API)."""
    r = httpx.get(f"http://{cfg.host}:{cfg.spark_master_ui_port}/json/", timeout=3)
    r.raise_for_status()
    return r.json()


class _SparkDaemon(Service):
    has_data = False
    optional = True  # started only when named: `lab up spark-master spark-worker`
    main_class = ""

    def version(self) -> str:
        import pyspark

        return f"spark {pyspark.__version__}"

    def spark_class(self) -> str:
        path = spark_home() / "bin" / "spark-class"
        if not path.exists():
            raise MissingTool(f"{path} is missing", "run `lab setup` (installs pyspark into the lab venv)")
        return str(path)

    @property
    def properties_file(self) -> Path:
        return self.run_dir / "spark-defaults.conf"

    def prepare(self) -> None:
        self.properties_file.write_text(daemon_properties())

    def env(self) -> dict[str, str]:
        home = spark_home()
        return self.cfg.child_env(
            JAVA_HOME=str(find_java_home(self.cfg.java_home)), SPARK_HOME=str(home),
            SPARK_LOCAL_IP=self.cfg.host, SPARK_LOCAL_HOSTNAME=self.cfg.host,
            SPARK_LOG_DIR=str(self.paths.home / "logs"), SPARK_DAEMON_MEMORY="256m",
            SPARK_LOCAL_DIRS=str(self.paths.spark_scratch),
            SPARK_NO_DAEMONIZE="1", PYSPARK_PYTHON=str(self.paths.venv / "bin" / "python"))


class SparkMasterService(_SparkDaemon):
    name = "spark-master"

    def ports(self) -> dict[str, int]:
        return {"spark_master_port": self.cfg.spark_master_port, "spark_master_ui_port": self.cfg.spark_master_ui_port}

    def argv(self) -> list[str]:
        c = self.cfg
        return [self.spark_class(), "org.apache.spark.deploy.master.Master", "--host", c.host,
                "--port", str(c.spark_master_port), "--webui-port", str(c.spark_master_ui_port),
                "--properties-file", str(self.properties_file)]

    def probe(self) -> str | None:
        try:
            state = master_state(self.cfg)
        except (httpx.HTTPError, ValueError) as exc:
            return f"web UI: {type(exc).__name__}"
        return None if state.get("status") == "ALIVE" else f"master status {state.get('status')}"


class SparkWorkerService(_SparkDaemon):
    name = "spark-worker"

    def ports(self) -> dict[str, int]:
        return {"spark_worker_ui_port": self.cfg.spark_worker_ui_port}

    def argv(self) -> list[str]:
        c = self.cfg
        work = self.paths.home / "spark-work"
        work.mkdir(parents=True, exist_ok=True)
        return [self.spark_class(), "org.apache.spark.deploy.worker.Worker", "--host", c.host,
                "--webui-port", str(c.spark_worker_ui_port), "--cores", str(c.spark_worker_cores),
                "--memory", c.spark_worker_memory, "--work-dir", str(work),
                "--properties-file", str(self.properties_file), c.spark_cluster_url]

    def probe(self) -> str | None:
        try:
            workers = master_state(self.cfg).get("workers", [])
        except (httpx.HTTPError, ValueError) as exc:
            return f"master not answering ({type(exc).__name__}): start spark-master first"
        mine = [w for w in workers if str(w.get("webuiaddress", "")).endswith(f":{self.cfg.spark_worker_ui_port}")]
        if not mine:
            return "not registered with the master yet"
        # a killed worker's entry stays in the master's list as DEAD beside the new
        # registration (same web UI port, in no particular order): ours is the live one
        if any(w.get("state") == "ALIVE" for w in mine):
            return None
        return f"worker state {', '.join(sorted({str(w.get('state')) for w in mine}))}"
