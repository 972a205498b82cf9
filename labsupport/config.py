"""One configuration object with every endpoint and port the lab uses.

Defaults describe the local backend (every service a process on 127.0.0.1). Each field
can be overridden by an environment variable ``LAB_<FIELD>`` (``LAB_KAFKA_PORT=19092``),
and the endpoint fields (``LAB_KAFKA_BOOTSTRAP``, ``LAB_CASSANDRA_HOSTS``,
``LAB_PROMETHEUS_URL``...) point the very same notebooks at the compose stack or a real
cluster instead.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LabConfig:
    home: Path = REPO_ROOT / ".lab"
    backend: str = "local"  # local | compose | external
    host: str = "127.0.0.1"

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_exporter_port: int = 7071
    kafka_heap: str = "512m"  # per broker
    # 1 = one process that is both broker and controller (the default: 2-core machines).
    # N > 1 = a KRaft cluster: one controller process (the quorum, kafka-controller) and
    # N broker processes kafka-1..N, each with its own ports (`kafka_broker_listeners`).
    kafka_brokers: int = 1
    kafka_controller_exporter_port: int = 7070  # the cluster's controller (kafka_brokers > 1)
    kafka_controller_heap: str = "256m"
    #: the JMX exporter's rules for every Kafka process: a file of stack/jmx (the one
    #: directory both backends read). Lesson 7 starts Kafka on kafka.lumped.yml, the
    #: seed's broken rules.
    kafka_jmx_rules: str = "kafka.yml"

    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    cassandra_jmx_port: int = 7199
    cassandra_exporter_port: int = 7072
    cassandra_heap: str = "1G"  # the single node's
    # 1 = one node, the service `cassandra` (the default). N > 1 = a ring of N nodes,
    # the services cassandra-1..N, node n on 127.0.0.n (`cassandra_node_endpoints`).
    cassandra_nodes: int = 1
    cassandra_ring_heap: str = "640M"  # per ring node: three share a 2-core, 24 GiB machine
    cassandra_jmx_rules: str = "cassandra.yml"  # a file of stack/jmx, as kafka_jmx_rules

    prometheus_port: int = 9090
    scrape_interval: str = "5s"

    events_api_port: int = 8000
    airflow_port: int = 8080
    stream_metrics_port: int = 8001
    spark_ui_port: int = 4040
    pipeline_view_port: int = 8501
    grafana_port: int = 3000

    # Spark: where every session runs (the `stream` service, notebooks, `lab bench stream`).
    # local[N] by default; spark://host:port for a standalone cluster (`lab up spark-master
    # spark-worker` runs one here), k8s://… for Kubernetes.
    spark_master: str = "local[2]"
    spark_executor_cores: int = 1
    spark_executor_memory: str = "1g"
    spark_master_port: int = 7077
    spark_master_ui_port: int = 8090     # not Spark's 8080: Airflow's api-server has it
    spark_worker_ui_port: int = 8091
    spark_worker_cores: int = 2
    spark_worker_memory: str = "2g"
    #: where checkpoints live: a local path or any Hadoop filesystem URI a cluster shares
    #: (file:///shared/…, hdfs://…, s3a://…); empty = <lab home>/checkpoints
    spark_checkpoint_root: str = ""
    #: a Spark properties file (spark-defaults.conf format) applied after the lab's own
    #: settings: what a real cluster needs that the lab cannot know (a driver address its
    #: executors can reach, spark.kubernetes.container.image, s3a credentials, …)
    spark_conf_file: str = ""

    #: the learner whose namespace this process works in (labsupport.namespace): set by
    #: `lab hub` in each learner's server from JUPYTERHUB_USER; empty = the single learner,
    #: every name as it has always been. A child process started from a learner's kernel
    #: inherits it with the rest of this config (to_env).
    learner: str = ""
    #: `lab hub`: the proxy's public port (not JupyterHub's 8000: the events API has it),
    #: the hub's own API port and the proxy's REST API port (not 8001: stream metrics)
    hub_port: int = 8100
    hub_api_port: int = 8101
    hub_proxy_api_port: int = 8102

    java_home: str = ""  # empty = discover JDK 17 (see labsupport.java)
    ready_timeout: float = 180.0  # seconds a service may take to become ready

    # Endpoint overrides; empty means "derive from host and port".
    kafka_bootstrap: str = ""
    cassandra_hosts: str = ""
    prometheus_url: str = ""
    airflow_url: str = ""
    events_api_url: str = ""
    grafana_url: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "LabConfig":
        """Defaults, then ``LAB_*`` environment variables, then keyword overrides."""
        return cls(**{**env_values(cls, "LAB_", environ), **overrides})

    def replace(self, **changes) -> "LabConfig":
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """This config as ``LAB_*`` variables: the one way it reaches a child process
        (the stream, the events API, the pipeline view, Airflow's DAG). Endpoints are
        written resolved, so a child sees the same endpoints even when this object was
        built with overrides that are not in the environment.
        ``LabConfig.from_env(cfg.to_env()) == cfg`` up to those resolved endpoints."""
        env = {f"LAB_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}
        env.update(LAB_HOME=str(self.paths.home), LAB_KAFKA_BOOTSTRAP=self.bootstrap_servers,
                   LAB_CASSANDRA_HOSTS=",".join(self.cassandra_contact_points), LAB_PROMETHEUS_URL=self.prometheus,
                   LAB_AIRFLOW_URL=self.airflow, LAB_EVENTS_API_URL=self.events_api,
                   LAB_GRAFANA_URL=self.grafana or "")
        return env

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment for a lab child process: this process's environment without
        any ``LAB_*`` variable of its own (a stale one must not shadow this config), then
        `to_env`, then ``extra``; the repo on PYTHONPATH so the child imports this very
        labsupport, and unbuffered output so its log is live."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
        env.update(self.to_env())
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.paths.repo), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    # ---- endpoints -------------------------------------------------------------------
    @property
    def kafka_broker_listeners(self) -> list[tuple[int, int]]:
        """(client port, JMX exporter port) of broker 1..N: the configured ports for
        broker 1, then every second client port (9092, 9094, 9096: the controller keeps
        9093) and every tenth exporter port (7071, 7081, 7091: Cassandra keeps 7072)."""
        return [(self.kafka_port + 2 * i, self.kafka_exporter_port + 10 * i) for i in range(max(1, self.kafka_brokers))]

    @property
    def bootstrap_servers(self) -> str:
        """Every broker: a client that knows only one cannot start while that one is down."""
        return self.kafka_bootstrap or ",".join(f"{self.host}:{port}" for port, _ in self.kafka_broker_listeners)

    @property
    def cassandra_node_endpoints(self) -> list[tuple[str, int, int]]:
        """(address, JMX port, JMX exporter port) of Cassandra node 1..N. One node: the
        configured host and ports. A ring: node n listens on the n-th loopback address
        from ``host`` (127.0.0.n: same CQL and storage ports, as Cassandra's own ccm
        does), its local JMX port 100 up per node (7199, 7299, 7399: JMX binds
        127.0.0.1 whatever the node) and its exporter 10 up (7072, 7082, 7092: Kafka's
        brokers keep 7071, 7081, 7091)."""
        if self.cassandra_nodes <= 1:
            return [(self.host, self.cassandra_jmx_port, self.cassandra_exporter_port)]
        try:
            first = ipaddress.ip_address(self.host)
        except ValueError:
            from labsupport.errors import LabError

            raise LabError(f"LAB_HOST={self.host!r} is not an IP address: a Cassandra ring numbers its "
                           f"nodes' addresses from it", "unset LAB_HOST (127.0.0.1), or LAB_CASSANDRA_NODES=1") from None
        return [(str(first + i), self.cassandra_jmx_port + 100 * i, self.cassandra_exporter_port + 10 * i)
                for i in range(self.cassandra_nodes)]

    @property
    def cassandra_contact_points(self) -> list[str]:
        """``LAB_CASSANDRA_HOSTS`` if set, else every node's address: a client that knows
        only one node cannot connect while that one is down."""
        if self.cassandra_hosts:
            return [h.strip() for h in self.cassandra_hosts.split(",") if h.strip()]
        return [address for address, _, _ in self.cassandra_node_endpoints]

    @property
    def spark_cluster_url(self) -> str:
        """The lab's own standalone master (the `spark-master` service)."""
        return f"spark://{self.host}:{self.spark_master_port}"

    @property
    def prometheus(self) -> str:
        return self.prometheus_url or f"http://{self.host}:{self.prometheus_port}"

    @property
    def airflow(self) -> str:
        return self.airflow_url or f"http://{self.host}:{self.airflow_port}"

    @property
    def events_api(self) -> str:
        return self.events_api_url or f"http://{self.host}:{self.events_api_port}"

    @property
    def grafana(self) -> str | None:
        """Grafana only exists in the compose stack or a real deployment."""
        if self.grafana_url:
            return self.grafana_url
        return f"http://{self.host}:{self.grafana_port}" if self.backend == "compose" else None

    # ---- lab home layout ---------------------------------------------------------------
    @cached_property
    def paths(self) -> "LabPaths":
        return LabPaths(Path(self.home).resolve())

    def endpoints(self) -> dict[str, str | None]:
        """Every endpoint a notebook may need, for display and for `lab status`."""
        return {
            "kafka": self.bootstrap_servers,
            "cassandra": ",".join(f"{h}:{self.cassandra_port}" for h in self.cassandra_contact_points),
            "prometheus": self.prometheus,
            "airflow": self.airflow,
            "events_api": self.events_api,
            "grafana": self.grafana,
        }


@dataclass(frozen=True)
class LabPaths:
    """Where the lab keeps its state. Everything lives under one gitignored home."""

    home: Path
    repo: Path = field(default=REPO_ROOT)

    def data(self, service: str) -> Path:
        return self.home / "data" / service

    def log(self, service: str) -> Path:
        return self.home / "logs" / f"{service}.log"

    def pidfile(self, service: str) -> Path:
        return self.home / "run" / f"{service}.json"

    def rendered(self, service: str) -> Path:
        """Generated config files for one service (removed by `lab down`)."""
        return self.home / "run" / service

    def jars(self, component: str) -> Path:
        return self.home / "jars" / component

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def airflow_venv(self) -> Path:
        return self.home / "airflow-venv"

    @property
    def checkpoints(self) -> Path:
        return self.home / "checkpoints"

    @property
    def spark_scratch(self) -> Path:
        """Spark's local dirs (shuffle files, spills) for the driver and the lab's own
        worker, given as ``SPARK_LOCAL_DIRS`` the way a cluster manager gives them."""
        return self.home / "spark-tmp"

    @property
    def stack_dir(self) -> Path:
        return self.repo / "stack"


_KINDS = {"int": int, "float": float, "bool": bool, "str": str, "Path": Path}


def env_values(cls, prefix: str, environ: dict[str, str] | None = None, error=None) -> dict:
    """Field values of dataclass ``cls`` given as ``<prefix><FIELD>`` environment variables,
    converted to the field's type; a value that does not convert raises ``error``
    (a LabError subclass) naming the variable and the remedy."""
    from labsupport.errors import LabError

    environ = os.environ if environ is None else environ
    error = error or LabError
    values = {}
    for f in fields(cls):
        raw = environ.get(f"{prefix}{f.name.upper()}")
        if raw is None:
            continue
        kind = f.type if isinstance(f.type, type) else _KINDS.get(str(f.type), str)
        try:
            values[f.name] = _convert(kind, raw)
        except ValueError:
            raise error(f"{prefix}{f.name.upper()}={raw!r} is not a valid {kind.__name__}",
                        f"unset it or give a {kind.__name__}") from None
    return values


def _convert(kind: type, raw: str):
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(raw)
    return kind(raw)


_config: LabConfig | None = None


def get_config() -> LabConfig:
    """The config set by ``set_config``, else a fresh read of the environment (cheap),
    so a changed ``LAB_*`` variable takes effect without restarting a kernel."""
    return _config if _config is not None else LabConfig.from_env()


def set_config(cfg: LabConfig) -> LabConfig:
    global _config
    _config = cfg
    return cfg


class EnvSettings:
    """The environment round trip every settings object of the lab shares (how a
    service passes ``StreamSettings`` or ``IngestSettings`` to its process): fields as
    ``<ENV_PREFIX><FIELD>`` variables, a value that does not convert raises ``ENV_ERROR``."""

    ENV_PREFIX = ""
    ENV_ERROR: type | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides):
        return cls(**{**env_values(cls, cls.ENV_PREFIX, environ, cls.ENV_ERROR), **overrides})

    def to_env(self) -> dict[str, str]:
        return {f"{self.ENV_PREFIX}{f.name.upper()}": _env_text(getattr(self, f.name)) for f in fields(self)}

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _env_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)

