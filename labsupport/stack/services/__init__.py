"""The services the local backend manages, in start order.

Kafka is one service (``kafka``) or, with ``LAB_KAFKA_BROKERS=N``, one per process
(``kafka-controller``, ``kafka-1..N``); Cassandra is one (``cassandra``) or, with
``LAB_CASSANDRA_NODES=N``, one per ring node (``cassandra-1..N``). The family's name
then names all of them (`expand`; `families.FAMILIES`)."""

from __future__ import annotations

from typing import Callable

from labsupport.config import LabConfig, get_config
from labsupport.errors import UnknownService
from labsupport.stack.services.airflow import AirflowService
from labsupport.stack.services.base import Service
from labsupport.stack.services.cassandra import CassandraService
from labsupport.stack.services.events_api import EventsApiService
from labsupport.stack.services.families import FAMILIES
from labsupport.stack.services.hub import HubService
from labsupport.stack.services.kafka import KafkaService
from labsupport.stack.services.layout import NodeGroup
from labsupport.stack.services.pipeline_view import PipelineViewService
from labsupport.stack.services.prometheus import PrometheusService
from labsupport.stack.services.spark import SparkMasterService, SparkWorkerService
from labsupport.stack.services.stream import StreamService

#: start order; `down` goes in reverse
REGISTRY: dict[str, type[Service]] = {
    "kafka": KafkaService,
    "cassandra": CassandraService,
    "prometheus": PrometheusService,
    "spark-master": SparkMasterService,
    "spark-worker": SparkWorkerService,
    "events-api": EventsApiService,
    "airflow": AirflowService,
    "stream": StreamService,
    "pipeline-view": PipelineViewService,
    "hub": HubService,  # optional: `lab hub` serves a room from this stack
}


def members(name: str, cfg: LabConfig | None = None) -> list[str]:
    """The services ``name`` stands for under ``cfg``: a family's nodes, else itself."""
    family = FAMILIES.get(name)
    return family.names(cfg or get_config()) if family else [name]


def kafka_names(cfg: LabConfig | None = None) -> list[str]:
    """The Kafka services ``cfg`` runs: ``kafka``, or the controller and each broker."""
    return members("kafka", cfg)


def names(cfg: LabConfig | None = None) -> list[str]:
    """Every service, one per process group, in start order."""
    cfg = cfg or get_config()
    return [member for name in REGISTRY for member in members(name, cfg)]


def default_names(cfg: LabConfig | None = None) -> list[str]:
    """What `lab up` with no names starts: every service but the optional ones (the
    Spark standalone cluster), which join only when the stream is configured to run on
    them (``LAB_SPARK_MASTER`` = the lab's own master)."""
    cfg = cfg or get_config()
    on_own_cluster = cfg.spark_master == cfg.spark_cluster_url
    return [n for n in names(cfg) if not getattr(REGISTRY.get(n), "optional", False) or on_own_cluster]


def expand(chosen: list[str], cfg: LabConfig | None = None) -> list[str]:
    """``chosen`` with a family's name (``kafka``) replaced by its every node, in start order."""
    cfg = cfg or get_config()
    wanted = {member for name in chosen for member in members(name, cfg)}
    for name in wanted:
        service(name, cfg)  # raises UnknownService with the valid names
    return [n for n in names(cfg) if n in wanted]


#: Another backend's services, by ``cfg.backend``: a function giving the service of that
#: name, or None where the local process stands in (the compose stack runs Kafka,
#: Cassandra, Prometheus, Spark and Grafana in containers, the rest as processes). The
#: compose backend registers itself (labsupport.stack imports it), so this module, the
#: local backend it builds on, never imports it back.
BACKENDS: dict[str, Callable[[str, LabConfig], "Service | NodeGroup | None"]] = {}


def service(name: str, cfg: LabConfig | None = None) -> Service | NodeGroup:
    cfg = cfg or get_config()
    other = BACKENDS.get(cfg.backend)
    if other is not None and (found := other(name, cfg)) is not None:
        return found
    for family in FAMILIES.values():
        node = next((n for n in family.nodes(cfg) if n.name == name), None)
        if node is not None:
            return family.member(cfg, node)
        if name == family.name and family.is_multi(cfg):
            return family.group(cfg)
    if name not in REGISTRY:
        valid = names(cfg) + [f for f, family in FAMILIES.items() if family.is_multi(cfg)]
        raise UnknownService(f"no service named {name!r}", f"choose one of: {', '.join(valid)}")
    return REGISTRY[name](cfg)


def running(cfg: LabConfig | None = None) -> list[str]:
    """Names of the services running now, in start order."""
    return [n for n in names(cfg) if service(n, cfg).running()]
