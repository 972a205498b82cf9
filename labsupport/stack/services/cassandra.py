"""Cassandra 5.0 from `cassandra-all` on Maven Central, run on JDK 17: by default one
node (the service ``cassandra``); with ``LAB_CASSANDRA_NODES=N`` (N > 1) a ring of N
nodes, the services ``cassandra-1..N``, and ``cassandra`` then names all of them
(`labsupport.stack.services.expand`).

Each ring node owns one arc of the token ring (``num_tokens: 1``, tokens evenly spaced,
`initial_token`): a lab ring is never resized, so what vnodes buy (even streaming when a
node joins or leaves) does not apply, and one token per node is a ring a learner can
read in ``system.local``/``system.peers`` and reason about by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import yaml

from labsupport.config import LabConfig
from labsupport.stack.services.base import JvmService
from labsupport.stack.services.layout import NodeFamily, NodeGroup

#: Murmur3Partitioner's token range: [-2**63, 2**63)
MIN_TOKEN = -2 ** 63


@dataclass(frozen=True)
class CassandraNode:
    """One Cassandra process of the local backend: its service name, 1-based index in
    the ring, the address it listens on (CQL, storage) and its JMX and exporter ports."""

    name: str
    index: int
    address: str
    jmx_port: int
    exporter_port: int


def is_ring(cfg: LabConfig) -> bool:
    return cfg.cassandra_nodes > 1


def cassandra_nodes(cfg: LabConfig) -> list[CassandraNode]:
    """The Cassandra processes ``cfg`` asks for, in start order: ``cassandra`` alone, or
    ``cassandra-1..N``."""
    endpoints = cfg.cassandra_node_endpoints
    if not is_ring(cfg):
        return [CassandraNode("cassandra", 1, *endpoints[0])]
    return [CassandraNode(f"cassandra-{n}", n, *ends) for n, ends in enumerate(endpoints, start=1)]


def initial_token(index: int, nodes: int) -> int:
    """Node ``index`` (1-based) of ``nodes``: tokens evenly spaced from the ring's start,
    so each node owns exactly 1/nodes of it."""
    return MIN_TOKEN + (index - 1) * 2 ** 64 // nodes


def seeds(cfg: LabConfig) -> str:
    """Every node is a seed: any one of them, started alone, is a ring to join."""
    return ",".join(node.address for node in cassandra_nodes(cfg))


def heap_mib(heap: str) -> int:
    """A JVM heap size (``640M``, ``1G``) in MiB."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    return int(float(heap[:-1]) * units[heap[-1].lower()]) if heap[-1].lower() in units else int(heap) // 2 ** 20


def ring_settings(cfg: LabConfig, node: CassandraNode) -> dict:
    """What a ring node changes in the shared cassandra.yaml: its one token, no
    bootstrap (a fresh lab ring has no data to stream, and a node that is not a seed of
    a running ring would otherwise wait to join before it serves), and memtables sized
    for its smaller heap (a quarter, Cassandra's own default share)."""
    quarter = heap_mib(cfg.cassandra_ring_heap) // 4
    return {"num_tokens": 1, "initial_token": str(initial_token(node.index, cfg.cassandra_nodes)),
            "auto_bootstrap": False,
            "memtable_heap_space": f"{quarter}MiB", "memtable_offheap_space": f"{quarter // 2}MiB"}


class CassandraService(JvmService):
    name = "cassandra"
    jar_component = "cassandra"
    main_class = "org.apache.cassandra.service.CassandraDaemon"

    def __init__(self, cfg: LabConfig, node: CassandraNode | None = None):
        super().__init__(cfg)
        self.node = node or cassandra_nodes(cfg)[0]
        self.name = self.node.name

    @property
    def heap(self) -> str:
        return self.cfg.cassandra_ring_heap if is_ring(self.cfg) else self.cfg.cassandra_heap

    def ports(self) -> dict[str, int]:
        c, n = self.cfg, self.node
        return {"cassandra_port": c.cassandra_port, "cassandra_storage_port": c.cassandra_storage_port,
                "cassandra_jmx_port": n.jmx_port, "cassandra_exporter_port": n.exporter_port}

    def bind_address(self, label: str) -> str:
        """CQL and storage listen on the node's own address; JMX and its exporter on the host."""
        return self.node.address if label in ("cassandra_port", "cassandra_storage_port") else self.cfg.host

    def check_ports_free(self) -> None:
        CASSANDRA.refuse_other_layout(self.name, self.cfg)
        super().check_ports_free()

    def version(self) -> str:
        return f"cassandra {self.jar_version('cassandra-all')}"

    @property
    def yaml_file(self):
        return self.run_dir / "cassandra.yaml"

    def render_yaml(self) -> dict:
        c = self.cfg
        conf = yaml.safe_load((self.paths.stack_dir / "cassandra" / "cassandra.yaml").read_text())
        d = self.data_dir
        conf.update({
            "listen_address": self.node.address,
            "rpc_address": self.node.address,
            "native_transport_port": c.cassandra_port,
            "storage_port": c.cassandra_storage_port,
            "seed_provider": [{"class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                               "parameters": [{"seeds": seeds(c)}]}],
            "data_file_directories": [str(d / "data")],
            "commitlog_directory": str(d / "commitlog"),
            "saved_caches_directory": str(d / "saved_caches"),
            "hints_directory": str(d / "hints"),
            "cdc_raw_directory": str(d / "cdc_raw"),
        })
        if is_ring(c):
            conf.update(ring_settings(c, self.node))
        return conf

    def prepare(self) -> None:
        CASSANDRA.record_layout(self.cfg)
        self.yaml_file.write_text(yaml.safe_dump(self.render_yaml(), sort_keys=False))

    def jvm_options(self) -> list[str]:
        text = (self.paths.stack_dir / "cassandra" / "jvm17.options").read_text()
        return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]

    def argv(self) -> list[str]:
        jars = self.paths.jars(self.jar_component)
        jamm = sorted(jars.glob("jamm-*.jar"))
        stack = self.paths.stack_dir / "cassandra"
        agent = self.exporter_agent(self.node.exporter_port, self.jmx_rules("cassandra_jmx_rules"))
        return [
            self.java(), f"-Xms{self.heap}", f"-Xmx{self.heap}", *self.jvm_options(),
            *(f"-javaagent:{j}" for j in jamm[:1]), agent,
            f"-Dcassandra.config=file://{self.yaml_file}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.logdir={self.paths.home / 'logs'}",
            f"-Dlogback.configurationFile={stack / 'logback.xml'}",
            f"-Dcassandra.jmx.local.port={self.node.jmx_port}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-cp", self.classpath(), self.main_class,
        ]

    def probe(self) -> str | None:
        """Ready when CQL answers a query on this node's own address (not whichever node
        of a ring answers first)."""
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
        from cassandra.policies import WhiteListRoundRobinPolicy

        logging.getLogger("cassandra").setLevel(logging.CRITICAL)
        only_me = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([self.node.address]))
        cluster = Cluster([self.node.address], port=self.cfg.cassandra_port, connect_timeout=3,
                          control_connection_timeout=3, execution_profiles={EXEC_PROFILE_DEFAULT: only_me})
        try:
            session = cluster.connect()
            session.execute("SELECT release_version FROM system.local", timeout=5)
            return None
        except NoHostAvailable:
            return "CQL not answering yet"
        except Exception as exc:  # OperationTimedOut etc. while bootstrapping
            return f"CQL: {type(exc).__name__}"
        finally:
            cluster.shutdown()


class CassandraRing(NodeGroup):
    """``cassandra`` when the lab runs a ring: every node at once."""

    def __init__(self, cfg: LabConfig, members: list | None = None):
        """``members``: the nodes as another backend runs them; by default the local processes."""
        self.cfg = cfg
        super().__init__("cassandra", members if members is not None else
                         [CassandraService(cfg, node) for node in cassandra_nodes(cfg)])


CASSANDRA = NodeFamily("cassandra", "cassandra_nodes", cassandra_nodes, CassandraService, CassandraRing,
                       label="Cassandra", one="one node", many="a ring")
