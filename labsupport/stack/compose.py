"""The compose backend: Kafka, Cassandra, Prometheus and Grafana in Docker containers.

`stack/compose.yaml` takes every value that depends on the lab's config as a ``${LAB_*}``
variable; `render` writes those variables (``LabConfig.to_env``) to an env file under
the lab home, next to the files whose contents depend on the host (Kafka's
server.properties, cassandra.yaml, prometheus.yml: the shared files of stack/ plus the
container's keys, as the local backend renders them for its processes) and the JMX
agent jar under a fixed name. Every compose command goes through `compose_command`,
which names the project and that env file, so a ``LAB_*`` override moves the
containers' ports exactly as it moves the local processes'.

The layouts of Kafka and Cassandra are compose profiles the lab chooses from the config
(`profiles`): Kafka's cluster with ``LAB_KAFKA_BROKERS=3``, Cassandra's ring (`ring`)
with ``LAB_CASSANDRA_NODES=3``. The ring's first node is the compose service
``cassandra`` in both layouts (so Prometheus can depend on it), known to the lab as
``cassandra-1`` on the ring (`CONTAINERS`).

With ``LAB_BACKEND=compose`` the service factory (`labsupport.stack.services.service`)
returns a `ComposeService` for the services the compose file runs: `stack.up`,
`stack.kill`, `reset_to(n)` and the notebooks then drive containers, with the local
services' own readiness probes, instead of starting local processes.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import yaml

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError, MissingTool, PortBusy, ServiceFailed
from labsupport.stack import services
from labsupport.stack.services import members, service
from labsupport.stack.services.base import Service, http_probe, jmx_rules_file
from labsupport.stack.services.cassandra import CassandraNode, CassandraService, cassandra_nodes, is_ring, ring_settings
from labsupport.stack.services.families import FAMILIES
from labsupport.stack.services.kafka import is_cluster, kafka_nodes, render_properties
from labsupport.stack.services.layout import NodeGroup
from labsupport.stack.services.prometheus import render_config
from labsupport.stack.services.spark import daemon_properties

PROJECT = "streamlab"
AGENT_JAR = "jmx_prometheus_javaagent.jar"

#: the services the compose file runs, in start order, with the LabConfig port fields
#: each one takes on the host (published ports, or listening ports on the host network);
#: the Kafka cluster's nodes take the ports the local backend gives them (KafkaService.ports)
HOST_PORTS: dict[str, tuple[str, ...]] = {
    "kafka": ("kafka_port", "kafka_exporter_port"),
    "cassandra": ("cassandra_port", "cassandra_exporter_port"),
    "prometheus": ("prometheus_port",),
    "grafana": ("grafana_port",),
    "spark-master": ("spark_master_port", "spark_master_ui_port"),
    "spark-worker": ("spark_worker_ui_port",),
}
#: the `kafka-cluster` profile: the local backend's cluster with this many brokers
CLUSTER_BROKERS = 3
CLUSTER_NODES = ["kafka-controller", *(f"kafka-{n}" for n in range(1, CLUSTER_BROKERS + 1))]
#: the `spark-cluster` profile: Spark's standalone master and worker
SPARK_CLUSTER = ["spark-master", "spark-worker"]
#: the `ring` profile: the local backend's Cassandra ring with this many nodes; its first
#: node is the `cassandra` service, which the profile adds these to
RING_NODES = 3
RING_SERVICES = [f"cassandra-{n}" for n in range(2, RING_NODES + 1)]
SERVICES = ["kafka", *CLUSTER_NODES, *SPARK_CLUSTER, "cassandra", *RING_SERVICES, "prometheus", "grafana"]
#: a lab service -> the compose service that runs it, where their names differ
CONTAINERS = {"cassandra-1": "cassandra"}

#: where each file a local service reads comes from in the containers (the static test
#: fails on a new config file until it is placed here): mounted from stack/ as it is,
#: or rendered with the container's keys into the compose render dir
RENDERED = {
    "kafka/server.properties": "kafka/server.properties",
    "cassandra/cassandra.yaml": "cassandra/cassandra.yaml",
    "prometheus/jobs.yml": "prometheus/prometheus.yml",
}
#: ... or deliberately not used there, and why
IMAGE_PROVIDES = {
    "cassandra/jvm17.options": "the image's bin/cassandra applies Cassandra's own conf/jvm17-server.options, "
                               "the file this one copies the JPMS flags from for the Maven jars",
    "cassandra/logback.xml": "bin/cassandra puts -Dlogback.configurationFile=logback.xml after JVM_EXTRA_OPTS; "
                             "the image's logback logs to the console (`docker compose logs`) too",
    "cassandra/schema.cql": "not a server file: the lab applies it over CQL (labsupport.schema), to either backend",
}


def _say(msg: str) -> None:
    print(msg, flush=True)


def compose_file(cfg: LabConfig) -> Path:
    return cfg.paths.stack_dir / "compose.yaml"


def render_dir(cfg: LabConfig) -> Path:
    return cfg.paths.rendered("compose")


def env_file(cfg: LabConfig) -> Path:
    return render_dir(cfg) / "compose.env"


def spec(cfg: LabConfig | None = None) -> dict:
    """The compose file as written (variables not substituted)."""
    return yaml.safe_load(compose_file(cfg or get_config()).read_text())


# ---- rendering ---------------------------------------------------------------------------
def on_own_spark_cluster(cfg: LabConfig) -> bool:
    return cfg.spark_master == cfg.spark_cluster_url


def profiles(cfg: LabConfig) -> list[str]:
    """The compose profiles ``cfg`` asks for: the Kafka layout, Cassandra's ring, and
    Spark's standalone cluster when the stream is to run on the lab's own master."""
    return ["kafka-cluster" if is_cluster(cfg) else "one-broker", *(["ring"] if is_ring(cfg) else []),
            *(["spark-cluster"] if on_own_spark_cluster(cfg) else [])]


def active_services(cfg: LabConfig) -> list[str]:
    """The lab's services the compose file runs for ``cfg``, in start order."""
    spark = SPARK_CLUSTER if on_own_spark_cluster(cfg) else []
    return [*members("kafka", cfg), *members("cassandra", cfg), "prometheus", *spark, "grafana"]


def container_of(name: str) -> str:
    """The compose service running the lab's service ``name``."""
    return CONTAINERS.get(name, name)


def cluster_config(cfg: LabConfig) -> LabConfig:
    return cfg.replace(kafka_brokers=CLUSTER_BROKERS)


def ring_config(cfg: LabConfig) -> LabConfig:
    return cfg.replace(cassandra_nodes=RING_NODES)


def _node_variable(name: str, what: str) -> str:
    return f"LAB_{name.upper().replace('-', '_')}_{what}"


def compose_env(cfg: LabConfig) -> dict[str, str]:
    """The variables the compose file uses: the lab's config, as every child process gets
    it, plus what it derives for the multi-node layouts (the local backend's): each
    cluster broker's and ring node's exporter port, each ring node's address, and the
    Cassandra layout's heap and first node's volume (each layout keeps its own data)."""
    brokers = [n for n in kafka_nodes(cluster_config(cfg)) if n.is_broker]
    ring = cassandra_nodes(ring_config(cfg))
    return {**cfg.to_env(),
            **{_node_variable(n.name, "EXPORTER_PORT"): str(n.exporter_port) for n in [*brokers, *ring]},
            **{_node_variable(n.name, "ADDRESS"): n.address for n in ring},
            "LAB_CASSANDRA_NODE_HEAP": CassandraService(cfg).heap,
            "LAB_CASSANDRA_VOLUME": f"{members('cassandra', cfg)[0]}-data"}


def interpolate(text: str, env: dict[str, str]) -> str:
    """``text`` of the compose file with its ``${VAR}`` / ``${VAR:?...}`` replaced from ``env``."""
    return re.sub(r"\$\{(\w+)(?::?[?-][^}]*)?\}", lambda m: env[m.group(1)], text)


def kafka_properties(cfg: LabConfig) -> str:
    """The shared server.properties plus the container's keys: the broker listens on
    every interface of its container (the published port forwards to it) and advertises
    the host's address, where clients reach the published port."""
    base = (cfg.paths.stack_dir / "kafka" / "server.properties").read_text()
    keys = {
        "listeners": f"PLAINTEXT://0.0.0.0:{cfg.kafka_port},CONTROLLER://127.0.0.1:{cfg.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{cfg.host}:{cfg.kafka_port}",
        "controller.quorum.voters": f"1@127.0.0.1:{cfg.kafka_controller_port}",
        "log.dirs": "/var/lib/kafka/data",
    }
    return f"{base}\n# ---- rendered by the lab for the compose container ----\n" + \
        "".join(f"{k}={v}\n" for k, v in keys.items())


def cluster_node_properties(cfg: LabConfig, name: str) -> str:
    """A cluster node's server.properties: exactly what the local backend renders for it
    (the nodes run on the host network), its log under the node's volume."""
    cluster = cluster_config(cfg)
    node = next(n for n in kafka_nodes(cluster) if n.name == name)
    base = (cfg.paths.stack_dir / "kafka" / "server.properties").read_text()
    return render_properties(base, cluster, node, Path("/var/lib/kafka/data"))  # the volume, as the one broker


def cassandra_yaml(cfg: LabConfig, node: CassandraNode | None = None) -> dict:
    """The shared cassandra.yaml plus the container's keys for ``node`` (default: the
    first) of ``cfg``'s layout: CQL on every interface of the container, announced to
    clients as the node's address on the host, where its port is published (the driver
    connects to the address a node announces). One node gossips on its container's
    loopback. A ring node gossips on its container's own address (its hostname: Docker
    maps it in /etc/hosts), every node a seed by service name (the project network's
    DNS; a stopped node's name does not resolve, which Cassandra skips with a warning),
    with the local ring's token and memtables (`ring_settings`)."""
    node = node or cassandra_nodes(cfg)[0]
    ring = is_ring(cfg)
    conf = yaml.safe_load((cfg.paths.stack_dir / "cassandra" / "cassandra.yaml").read_text())
    d = "/var/lib/cassandra"
    seeds = ",".join(container_of(n.name) for n in cassandra_nodes(cfg)) if ring else "127.0.0.1"
    conf.update({
        "listen_address": container_of(node.name) if ring else "127.0.0.1",
        "rpc_address": "0.0.0.0",
        "broadcast_rpc_address": node.address,
        "native_transport_port": cfg.cassandra_port,
        "storage_port": cfg.cassandra_storage_port,
        "seed_provider": [{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                           "parameters": [{"seeds": seeds}]}],
        "data_file_directories": [f"{d}/data"],
        "commitlog_directory": f"{d}/commitlog",
        "saved_caches_directory": f"{d}/saved_caches",
        "hints_directory": f"{d}/hints",
        "cdc_raw_directory": f"{d}/cdc_raw",
    })
    if ring:
        conf.update(ring_settings(cfg, node))
    return conf


def cassandra_files(cfg: LabConfig) -> dict[str, dict]:
    """Each Cassandra container's cassandra.yaml, by its path under the render dir: the
    first node's for ``cfg``'s layout, the other ring nodes' always (every file the
    compose file mounts exists, whichever layout runs)."""
    _, *others = cassandra_nodes(ring_config(cfg))
    return {RENDERED["cassandra/cassandra.yaml"]: cassandra_yaml(cfg),
            **{f"{container_of(n.name)}/cassandra.yaml": cassandra_yaml(ring_config(cfg), n) for n in others}}


def _env_line(key: str, value: str) -> str:
    """Single quotes: literal in both compose implementations' dotenv parsers."""
    if "'" in value or "\n" in value:
        raise LabError(f"{key}={value!r} cannot be passed to Docker Compose (a quote or newline)",
                       f"choose a value for {key} without one")
    return f"{key}='{value}'\n"


def _write(path: Path, text: str) -> bool:
    """Write ``text`` in place (same inode: a running container's bind mount of the
    file sees it); True if the content changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    with open(path, "w") as f:  # truncates and rewrites the same inode, unlike a rename
        f.write(text)
    return True


def write_env(cfg: LabConfig) -> Path:
    """The env file every compose command reads (cheap: written before each command)."""
    _write(env_file(cfg), "".join(_env_line(k, v) for k, v in sorted(compose_env(cfg).items())))
    return env_file(cfg)


def agent_jar(cfg: LabConfig) -> Path:
    """The one JMX exporter agent `lab setup` resolved (its file name carries its version)."""
    jars = sorted(cfg.paths.jars("jmx-exporter").glob("jmx_prometheus_javaagent-*.jar"))
    if not jars:
        raise MissingTool("the JMX exporter agent jar is missing", "run `./lab setup` first")
    if len(jars) > 1:
        raise LabError(f"{len(jars)} JMX exporter agent jars in {jars[0].parent}",
                       "run `./lab setup` (it resolves exactly one)")
    return jars[0]


def render(cfg: LabConfig) -> dict[str, bool]:
    """Write everything the compose file mounts from the lab home; returns which files
    changed (a running Prometheus must reload a changed config)."""
    if is_cluster(cfg) and cfg.kafka_brokers != CLUSTER_BROKERS:
        raise LabError(f"the compose stack's Kafka cluster has {CLUSTER_BROKERS} brokers, "
                       f"LAB_KAFKA_BROKERS={cfg.kafka_brokers}",
                       f"set LAB_KAFKA_BROKERS={CLUSTER_BROKERS} (or 1), or run {cfg.kafka_brokers} brokers "
                       "with the local backend")
    if is_ring(cfg) and cfg.cassandra_nodes != RING_NODES:
        raise LabError(f"the compose stack's Cassandra ring has {RING_NODES} nodes, "
                       f"LAB_CASSANDRA_NODES={cfg.cassandra_nodes}",
                       f"set LAB_CASSANDRA_NODES={RING_NODES} (or 1), or run {cfg.cassandra_nodes} nodes "
                       "with the local backend")
    for field in ("kafka_jmx_rules", "cassandra_jmx_rules"):  # the file uses them under the mounted stack/jmx
        jmx_rules_file(cfg, field)
    out = render_dir(cfg)
    jar = agent_jar(cfg)
    fixed = out / AGENT_JAR
    jar_changed = not fixed.exists() or fixed.read_bytes() != jar.read_bytes()
    if jar_changed:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(jar, fixed)
    write_env(cfg)
    # both layouts, whichever runs: every file the compose file mounts exists
    cluster_changed = [_write(out / name / "server.properties", cluster_node_properties(cfg, name))
                       for name in CLUSTER_NODES]
    spark_changed = _write(out / "spark" / "spark-defaults.conf", daemon_properties())
    cfg.paths.checkpoints.mkdir(parents=True, exist_ok=True)  # the worker's mount of the shared root
    return {
        "jar": jar_changed,
        "kafka": _write(out / RENDERED["kafka/server.properties"], kafka_properties(cfg)) or any(cluster_changed),
        "cassandra": any([_write(out / path, yaml.safe_dump(conf, sort_keys=False))
                          for path, conf in cassandra_files(cfg).items()]),
        "spark": spark_changed,
        "prometheus": _write(out / RENDERED["prometheus/jobs.yml"],
                             yaml.safe_dump(render_config(cfg), sort_keys=False)),
    }


# ---- running compose -----------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _compose_program() -> tuple[str, ...]:
    """`docker compose` (v2 plugin) or the older `docker-compose`, whichever exists."""
    if shutil.which("docker"):
        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise MissingTool("Docker Compose is not installed",
                      "install Docker with the compose plugin, or use the local backend (the default)")


def compose_command(cfg: LabConfig) -> list[str]:
    """The compose program with the project name, the env file, the compose file and the
    Kafka layout's profile."""
    return [*_compose_program(), "-p", PROJECT, "--env-file", str(env_file(cfg)), "-f", str(compose_file(cfg)),
            *(arg for name in profiles(cfg) for arg in ("--profile", name))]


def _process_env() -> dict[str, str]:
    """Compose prefers the process environment to the env file: no stale LAB_* of ours."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}


def run(cfg: LabConfig, *args: str, capture: bool = False) -> str:
    """One compose command; a failure is one line naming it and its last output line."""
    write_env(cfg)
    cmd = [*compose_command(cfg), *args]
    out = subprocess.run(cmd, env=_process_env(), text=True,
                         stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if out.returncode != 0:
        last = ((out.stderr or "").strip().splitlines() or [f"exit {out.returncode}"])[-1]
        raise ServiceFailed(f"`{' '.join(cmd[:len(_compose_program())])} {' '.join(args)}` failed: {last}",
                            "is the Docker engine running (`docker info`)?" + ("" if capture else " see its output above"))
    return out.stdout or ""


class ComposeService(Service):
    """A lab service that is a compose container: the local service's readiness probe,
    container state instead of a pid file, compose commands instead of signals."""

    def __init__(self, name: str, cfg: LabConfig):
        if name not in SERVICES and name not in CONTAINERS:
            raise LabError(f"the compose stack has no service {name!r}", f"choose one of: {', '.join(SERVICES)}")
        super().__init__(cfg.replace(backend="compose"))
        self.name = name
        self.container_name = container_of(name)  # in every compose command

    def ring_node(self) -> CassandraNode | None:
        """This service's node of the Cassandra ring, if it is one."""
        return next((n for n in cassandra_nodes(ring_config(self.cfg)) if n.name == self.name), None)

    def local_twin(self) -> Service | None:
        """The local backend's service of the same name: its ports (a cluster node's) and
        its readiness probe, which the container is polled with too."""
        if self.name == "grafana":
            return None
        local = self.cfg.replace(backend="local")
        if self.name in CLUSTER_NODES:
            return service(self.name, cluster_config(local))
        return service(self.name, ring_config(local) if self.ring_node() else local)

    def ports(self) -> dict[str, int]:
        """The ports it takes on the host: a cluster node's are the local one's (host
        network); a ring node's are CQL's on its own address and its exporter's."""
        if self.name in CLUSTER_NODES:
            return self.local_twin().ports()
        if node := self.ring_node():
            return {"cassandra_port": self.cfg.cassandra_port, "cassandra_exporter_port": node.exporter_port}
        return {field: getattr(self.cfg, field) for field in HOST_PORTS[self.name]}

    def bind_address(self, label: str) -> str:
        node = self.ring_node()
        return node.address if node and label == "cassandra_port" else self.cfg.host

    def version(self) -> str:
        return spec(self.cfg)["services"][self.container_name]["image"]

    def probe(self) -> str | None:
        if self.name == "grafana":
            return http_probe(f"{self.cfg.grafana}/api/health")
        return self.local_twin().probe()

    def container(self) -> str | None:
        cid = run(self.cfg, "ps", "-a", "-q", self.container_name, capture=True).strip()  # -a: exited ones too
        return cid or None

    def state(self) -> str:
        cid = self.container()
        if not cid:
            return "stopped"
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", cid], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"

    def running(self) -> bool:
        return self.state() == "running"

    def check_ports_free(self) -> None:
        """Before a container takes its ports: name the local backend or Debian's own
        Prometheus when one of them holds a port (the usual culprits)."""
        local = self.local_twin()
        if local and local.running():
            raise PortBusy(f"{self.name}: the local backend's {self.name} is running on the same ports",
                           f"stop it first (`./lab down {self.name}`); both backends use the LAB_* ports")
        try:
            super().check_ports_free()
        except PortBusy as busy:
            if self.name == "prometheus":
                raise PortBusy(busy.cause, "if it is Debian's own Prometheus: `sudo systemctl disable --now "
                                           f"prometheus`; else {busy.remedy}") from None
            raise

    def start(self, progress: Callable[[str], None] = _say) -> "ComposeService":
        up(self.cfg, [self.name], progress=progress)
        return self

    def log_tail(self, lines: int = 40, since: int = 0) -> str:
        return run(self.cfg, "logs", "--no-color", "--tail", str(lines), self.container_name, capture=True)

    def stop(self, grace: float = 30.0, progress: Callable[[str], None] = _say) -> bool:
        was = self.running()
        if was:
            run(self.cfg, "stop", "-t", str(int(grace)), self.container_name)
        return was

    def kill(self, progress: Callable[[str], None] = _say) -> bool:
        """SIGKILL the container's process, as a crash would (`start` brings it back)."""
        was = self.running()
        if was:
            run(self.cfg, "kill", "-s", "SIGKILL", self.container_name)
        return was

    def volumes(self) -> list[str]:
        """The named volumes this service keeps its data in (this layout's), as Docker names them."""
        env = compose_env(self.cfg)
        mounts = spec(self.cfg)["services"][self.container_name].get("volumes", [])
        sources = [interpolate(v, env).split(":", 1)[0] for v in mounts]
        return [f"{PROJECT}_{s}" for s in sources if s in (spec(self.cfg).get("volumes") or {})]

    def purge(self) -> None:
        """Delete the container and its data volumes. Only reachable through --purge."""
        run(self.cfg, "rm", "-f", "-s", "-v", self.container_name)
        for volume in self.volumes():
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)

    def status(self) -> dict:
        state = self.state()
        return {"state": state, "pid": None, "ports": list(self.ports().values()),
                "healthy": state == "running" and self._probe_ok(), "log": f"docker compose logs {self.container_name}"}

    def _probe_ok(self) -> bool:
        try:
            return self.probe() is None
        except Exception:
            return False


def up(cfg: LabConfig | None = None, names: list[str] | None = None, wait: bool = True,
       progress: Callable[[str], None] = _say) -> dict:
    """Start the compose services (all by default) and, with ``wait``, poll each with the
    lab's own readiness probe (the same for Compose v1, which has no --wait, and v2)."""
    cfg = (cfg or get_config()).replace(backend="compose")
    asked = {m for n in (names or active_services(cfg)) for m in members(n, cfg)}
    chosen = [n for n in active_services(cfg) if n in asked]
    svcs = [ComposeService(n, cfg) for n in chosen]
    for svc in svcs:
        if not svc.running():
            svc.check_ports_free()
    prometheus_was_up = ComposeService("prometheus", cfg).running()
    changed = render(cfg)
    if "cassandra" in chosen:  # node 1 alone: the ring's other nodes go (one layout at a time; volumes kept)
        run(ring_config(cfg), "stop", *RING_SERVICES)
    run(cfg, "up", "-d", *map(container_of, chosen))
    if prometheus_was_up and changed["prometheus"]:
        import httpx

        httpx.post(f"{cfg.prometheus}/-/reload", timeout=10).raise_for_status()
        progress("prometheus: re-rendered config reloaded")
    if wait:
        for svc in svcs:
            svc.wait_ready(progress)
    return {svc.name: svc.status() for svc in svcs}


def down(cfg: LabConfig | None = None, purge: bool = False, progress: Callable[[str], None] = _say) -> None:
    """Stop and remove the containers; ``purge`` also deletes their volumes (the data)."""
    cfg = (cfg or get_config()).replace(backend="compose")
    run(cfg, "down", *(["--volumes"] if purge else []))
    if purge:
        shutil.rmtree(render_dir(cfg), ignore_errors=True)
        progress("compose: containers, volumes and rendered files removed")


def backend_service(name: str, cfg: LabConfig) -> Service | NodeGroup | None:
    """The compose stack's ``name``: a container (or every container of a family's
    multi-node layout: ``kafka`` on the cluster, ``cassandra`` on the ring), or None for
    a service that runs as a local process here."""
    family = FAMILIES.get(name)
    if family is not None and family.is_multi(cfg):
        return family.group(cfg, [ComposeService(n, cfg) for n in family.names(cfg)])
    return ComposeService(name, cfg) if name in SERVICES or name in CONTAINERS else None


services.BACKENDS["compose"] = backend_service
