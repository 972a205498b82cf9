"""The services the local backend manages, in start order."""

from __future__ import annotations

from labsupport.config import LabConfig, get_config
from labsupport.errors import UnknownService
from labsupport.stack.services.airflow import AirflowService
from labsupport.stack.services.base import Service
from labsupport.stack.services.cassandra import CassandraService
from labsupport.stack.services.events_api import EventsApiService
from labsupport.stack.services.kafka import KafkaService
from labsupport.stack.services.pipeline_view import PipelineViewService
from labsupport.stack.services.prometheus import PrometheusService
from labsupport.stack.services.stream import StreamService

#: start order; `down` goes in reverse
REGISTRY: dict[str, type[Service]] = {
    "kafka": KafkaService,
    "cassandra": CassandraService,
    "prometheus": PrometheusService,
    "events-api": EventsApiService,
    "airflow": AirflowService,
    "stream": StreamService,
    "pipeline-view": PipelineViewService,
}


def names() -> list[str]:
    return list(REGISTRY)


def service(name: str, cfg: LabConfig | None = None) -> Service:
    cfg = cfg or get_config()
    if cfg.backend == "compose":  # the compose file's services are containers, not processes
        from labsupport.stack import compose

        if name in compose.SERVICES:
            return compose.ComposeService(name, cfg)
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise UnknownService(f"no service named {name!r}", f"choose one of: {', '.join(REGISTRY)}") from None
    return cls(cfg)


def running(cfg: LabConfig | None = None) -> list[str]:
    """Names of the services running now, in start order."""
    return [n for n in names() if service(n, cfg).running()]
