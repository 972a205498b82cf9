"""Kafka in KRaft mode: by default one node that is both broker and controller; with
``LAB_KAFKA_BROKERS=N`` (N > 1) a cluster of one controller process and N brokers.

Why a separate controller and not N combined nodes: the lessons kill brokers. With
combined nodes, killing two of three also kills two of three quorum voters, the
metadata quorum is gone, nobody can shrink an ISR or elect a leader, and an acks=all
write times out instead of being refused. With the quorum in its own process, two dead
brokers leave a working controller, and the write is refused the way Kafka documents:
NotEnoughReplicas, below ``min.insync.replicas``. One voter is enough on one machine
(three voters there fail together anyway) and costs one small JVM, not three.

Every node is its own service (its own process group, log, data dir and JMX exporter),
named after its role: ``kafka`` alone, or ``kafka-controller`` and ``kafka-1..N`` (node
ids 1..N: ``kafka-2`` is broker 2). ``kafka`` always means all of Kafka
(`labsupport.stack.services.expand`).
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from labsupport.config import LabConfig
from labsupport.errors import DataDirProblem, ServiceFailed
from labsupport.ingest.topics import replication
from labsupport.stack.services.base import JvmService
from labsupport.stack.services.layout import NodeFamily, NodeGroup

HEALTH_TOPIC = "_lab_health"
CONTROLLER = "kafka-controller"
#: the cluster controller's node id (brokers are 1..N)
CONTROLLER_ID = 0


def new_cluster_id() -> str:
    """URL-safe base64 of 16 random bytes, unpadded, not starting with '-' (Kafka's rule)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class KafkaNode:
    """One Kafka process of the local backend: its service name, node id, roles, ports."""

    name: str
    node_id: int
    roles: str  # Kafka's process.roles
    exporter_port: int
    port: int | None = None  # client (PLAINTEXT) listener: brokers
    controller_port: int | None = None  # CONTROLLER listener: controllers

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles


def is_cluster(cfg: LabConfig) -> bool:
    return cfg.kafka_brokers > 1


def kafka_nodes(cfg: LabConfig) -> list[KafkaNode]:
    """The Kafka processes ``cfg`` asks for, in start order (the quorum first)."""
    if not is_cluster(cfg):
        return [KafkaNode("kafka", 1, "broker,controller", cfg.kafka_exporter_port,
                          cfg.kafka_port, cfg.kafka_controller_port)]
    controller = KafkaNode(CONTROLLER, CONTROLLER_ID, "controller", cfg.kafka_controller_exporter_port,
                           controller_port=cfg.kafka_controller_port)
    brokers = [KafkaNode(f"kafka-{n}", n, "broker", exporter, port=port)
               for n, (port, exporter) in enumerate(cfg.kafka_broker_listeners, start=1)]
    return [controller, *brokers]


def quorum_voters(cfg: LabConfig) -> str:
    """``controller.quorum.voters``: the same static list on every node."""
    return ",".join(f"{n.node_id}@{cfg.host}:{n.controller_port}" for n in kafka_nodes(cfg) if n.is_controller)


def cluster_properties(cfg: LabConfig, node: KafkaNode) -> dict[str, str]:
    """What a cluster node changes in the shared server.properties: its role and id, and
    internal topics replicated like the lab's own (`topics.replication`)."""
    rf, min_isr = replication(cfg)
    keys = {"process.roles": node.roles, "node.id": str(node.node_id)}
    if node.is_broker:
        keys.update({
            "offsets.topic.replication.factor": str(rf),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            "default.replication.factor": str(rf),
        })
    return keys


def listener_properties(cfg: LabConfig, node: KafkaNode, data_dir: Path) -> dict[str, str]:
    """The host-specific keys: listeners, the quorum, where the log lives."""
    h = cfg.host
    listeners = [f"PLAINTEXT://{h}:{node.port}"] if node.is_broker else []
    listeners += [f"CONTROLLER://{h}:{node.controller_port}"] if node.is_controller else []
    keys = {"listeners": ",".join(listeners)}
    if node.is_broker:
        keys["advertised.listeners"] = f"PLAINTEXT://{h}:{node.port}"
    keys["controller.quorum.voters"] = quorum_voters(cfg)
    keys["log.dirs"] = str(data_dir / "logs")
    return keys


def render_properties(base: str, cfg: LabConfig, node: KafkaNode, data_dir: Path) -> str:
    """The shared file with the node's keys appended; a key the node sets is removed from
    the shared part first, so every key appears once (the single node changes none)."""
    changed = cluster_properties(cfg, node) if is_cluster(cfg) else {}
    if node.roles == "controller":  # a controller-only node has no broker listener to name
        changed["inter.broker.listener.name"] = None
    kept = [ln for ln in base.splitlines() if ln.split("=", 1)[0].strip() not in changed]
    text = "\n".join(kept) + "\n"
    node_keys = {k: v for k, v in changed.items() if v is not None}
    if node_keys:
        text += f"\n# ---- {node.name}: node {node.node_id} of a {cfg.kafka_brokers}-broker cluster ----\n"
        text += "".join(f"{k}={v}\n" for k, v in node_keys.items())
    host = listener_properties(cfg, node, data_dir)
    return f"{text}\n# ---- rendered by the lab for this host ----\n" + "".join(f"{k}={v}\n" for k, v in host.items())


def read_meta(data_dir: Path) -> dict[str, str]:
    """meta.properties of a formatted node (empty if not formatted)."""
    meta = data_dir / "logs" / "meta.properties"
    if not meta.exists():
        return {}
    pairs = (ln.split("=", 1) for ln in meta.read_text().splitlines() if "=" in ln and not ln.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


class KafkaService(JvmService):
    name = "kafka"
    jar_component = "kafka"
    main_class = "kafka.Kafka"

    def __init__(self, cfg: LabConfig, node: KafkaNode | None = None):
        super().__init__(cfg)
        self.node = node or kafka_nodes(cfg)[0]
        self.name = self.node.name

    def ports(self) -> dict[str, int]:
        n = self.node
        if not is_cluster(self.cfg):
            return {"kafka_port": n.port, "kafka_controller_port": n.controller_port,
                    "kafka_exporter_port": n.exporter_port}
        if n.is_controller:
            return {"kafka_controller_port": n.controller_port, "kafka_controller_exporter_port": n.exporter_port}
        return {"kafka_port": n.port, "kafka_exporter_port": n.exporter_port}

    def version(self) -> str:
        return f"kafka {self.jar_version('kafka_2.13')}"

    def check_ports_free(self) -> None:
        KAFKA.refuse_other_layout(self.name, self.cfg)
        super().check_ports_free()

    @property
    def address(self) -> str:
        """This broker alone (readiness asks it, not whichever broker answers first)."""
        return f"{self.cfg.host}:{self.node.port}"

    @property
    def properties_file(self):
        return self.run_dir / "server.properties"

    def render_properties(self) -> str:
        base = (self.paths.stack_dir / "kafka" / "server.properties").read_text()
        return render_properties(base, self.cfg, self.node, self.data_dir)

    def jvm_args(self) -> list[str]:
        stack = self.paths.stack_dir
        heap = self.cfg.kafka_controller_heap if self.node.roles == "controller" else self.cfg.kafka_heap
        return [
            f"-Xms{heap}", f"-Xmx{heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={stack / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.paths.home / 'logs'}",
            "-cp", self.classpath(),
        ]

    def prepare(self) -> None:
        KAFKA.record_layout(self.cfg)
        self.properties_file.write_text(self.render_properties())
        mine = read_meta(self.data_dir).get("cluster.id")
        wanted = self.cluster_id()
        if mine is None:
            self.format_storage(wanted)
        elif mine != wanted:
            raise DataDirProblem(f"{self.name}: its data belongs to cluster {mine}, the controller's to {wanted}",
                                 "`lab down --purge kafka` starts the whole cluster empty (deletes its data)")

    def cluster_id(self) -> str:
        """The id to format with. Single node, or the controller: its own, else a new one.
        A cluster broker: the controller's (it is formatted first: start order)."""
        if not is_cluster(self.cfg) or self.node.is_controller:
            return read_meta(self.data_dir).get("cluster.id") or new_cluster_id()
        found = read_meta(self.paths.data(CONTROLLER)).get("cluster.id")
        if not found:
            raise ServiceFailed(f"{self.name}: the cluster's controller has never been started",
                                "`lab up kafka` starts the controller first, then the brokers")
        return found

    def format_storage(self, cluster_id: str) -> None:
        """First start only: KRaft storage must be formatted with the cluster's id."""
        cmd = [self.java(), *self.jvm_args(), "kafka.tools.StorageTool", "format",
               "-t", cluster_id, "-c", str(self.properties_file)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            lines = (out.stdout + out.stderr).strip().splitlines() or ["no output"]
            raise ServiceFailed(f"{self.name}: formatting storage failed: {lines[-1]}",
                                f"read {self.log}; `lab down --purge kafka` starts empty")

    def argv(self) -> list[str]:
        agent = self.exporter_agent(self.node.exporter_port, self.jmx_rules("kafka_jmx_rules"))
        return [self.java(), agent, *self.jvm_args(), self.main_class, str(self.properties_file)]

    def probe(self) -> str | None:
        return self._probe_broker() if self.node.is_broker else self._probe_controller()

    def _probe_controller(self) -> str | None:
        """A controller serves no clients: ready when its exporter reports it the active
        controller (a single voter elects itself)."""
        import httpx

        try:
            text = httpx.get(f"http://{self.cfg.host}:{self.node.exporter_port}/metrics", timeout=5).text
        except httpx.HTTPError as exc:
            return f"exporter not answering ({type(exc).__name__})"
        active = [ln for ln in text.splitlines() if ln.startswith("kafka_controller_kafkacontroller_activecontrollercount")]
        if not active or float(active[0].split()[-1]) < 1:
            return "no active controller yet"
        return None

    def _probe_broker(self) -> str | None:
        """Ready when this broker answers metadata on its own listener, is registered
        with the controller, and a topic can be created."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaConfigurationError, KafkaError, TopicAlreadyExistsError

        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        try:
            # a short bootstrap: a first try made before the listener opens would
            # otherwise hold the poll for the client's default 30 s
            admin = KafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=5000,
                                     bootstrap_timeout_ms=5000, client_id="lab-readiness")
        except KafkaConfigurationError:
            raise
        except KafkaError as exc:
            return f"no metadata yet ({type(exc).__name__})"
        try:
            registered = {b["broker_id"] for b in admin.describe_cluster().get("brokers") or []}
            if self.node.node_id not in registered:
                return f"broker {self.node.node_id} not registered yet"
            if HEALTH_TOPIC not in admin.list_topics():
                try:
                    admin.create_topics([NewTopic(HEALTH_TOPIC, 1, 1)])
                except TopicAlreadyExistsError:
                    pass
            return None
        except KafkaConfigurationError:
            raise
        except KafkaError as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            admin.close()


class KafkaCluster(NodeGroup):
    """``kafka`` when the lab runs a cluster: every node at once."""

    def __init__(self, cfg: LabConfig, members: list | None = None):
        """``members``: the nodes as another backend runs them (compose containers);
        by default the local processes."""
        self.cfg = cfg
        super().__init__("kafka", members if members is not None else
                         [KafkaService(cfg, node) for node in kafka_nodes(cfg)])


KAFKA = NodeFamily("kafka", "kafka_brokers", kafka_nodes, KafkaService, KafkaCluster,
                   label="Kafka", one="one broker", many="a cluster")

# the family's layout machinery under the names lesson 09 and its tests know
running_kafka = KAFKA.running
layout_file = KAFKA.layout_file
record_layout = KAFKA.record_layout
brokers_of = KAFKA.size_of
other_running_layout = KAFKA.other_running_layout
