"""Stack control for notebooks and the `lab` command: the same operations in both.

    from labsupport import stack
    stack.up()                 # every service, waits until each is ready
    stack.kill("cassandra")    # SIGKILL its process group (fault injection)
    stack.status()
"""

from __future__ import annotations

from typing import Callable, Iterable

from labsupport.stack import services
from labsupport.stack.services.kafka import other_running_layout
from labsupport.config import LabConfig, get_config


def _say(msg: str) -> None:
    print(msg, flush=True)


def _selected(names: Iterable[str] | str | None, cfg: LabConfig, default=services.names) -> list[str]:
    """The chosen services in start order (``kafka`` = every Kafka process; none chosen
    = ``default(cfg)``); unknown names raise UnknownService with the valid ones."""
    if isinstance(names, str):
        names = [names]
    return services.expand(list(names or default(cfg)), cfg)


def up(names: Iterable[str] | str | None = None, cfg: LabConfig | None = None,
       progress: Callable[[str], None] = _say) -> dict:
    """Start (idempotently) and wait until every chosen service is ready."""
    cfg = cfg or get_config()
    chosen = _selected(names, cfg, default=services.default_names)
    for name in chosen:
        services.service(name, cfg).start(progress)
    prometheus = services.service("prometheus", cfg)
    if "prometheus" not in chosen and prometheus.running() and prometheus.refresh(progress):
        prometheus.wait_ready(progress)  # e.g. `LAB_KAFKA_BROKERS=3 lab up kafka`: scraped from now on
    return status(names, cfg)


def down(names: Iterable[str] | str | None = None, purge: bool = False, cfg: LabConfig | None = None,
         progress: Callable[[str], None] = _say) -> None:
    """Stop services (reverse start order); ``purge`` also deletes their data.

    Only processes that are provably the service's are signalled: a pid file naming
    a dead or recycled pid is removed with one line saying so (see stack.procs)."""
    cfg = cfg or get_config()
    chosen = _selected(names, cfg)
    other = other_running_layout(cfg) if set(chosen) & set(services.kafka_names(cfg)) else None
    for name in reversed(chosen):
        svc = services.service(name, cfg)
        if svc.stop(progress=progress):
            progress(f"{name}: stopped")
        if purge:
            svc.purge()
            progress(f"{name}: data purged")
    for name in reversed(services.kafka_names(other) if other else []):
        if services.service(name, other).stop(progress=progress):
            progress(f"{name}: stopped (the Kafka layout of LAB_KAFKA_BROKERS={other.kafka_brokers}, "
                     f"which was running)")


def kill(name: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = _say) -> bool:
    """SIGKILL a service's whole process group, as a crash would."""
    return services.service(name, cfg or get_config()).kill(progress)


def restart(name: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = _say) -> dict:
    svc = services.service(name, cfg or get_config())
    svc.stop(progress=progress)
    svc.start(progress)
    return svc.status()


def status(names: Iterable[str] | str | None = None, cfg: LabConfig | None = None) -> dict:
    """Each chosen service's state; with none chosen, also the Kafka of another layout
    when that one is what runs (its rows say which ``LAB_KAFKA_BROKERS`` it is)."""
    cfg = cfg or get_config()
    found = {name: services.service(name, cfg).status() for name in _selected(names, cfg)}
    other = other_running_layout(cfg) if names is None else None
    if other is None:
        return found
    # the layout that runs takes the place of this shell's Kafka rows, in their place: a
    # `kafka stopped` row beside a running cluster would only mislead
    mine = set(services.kafka_names(cfg))
    note = {"layout": f"LAB_KAFKA_BROKERS={other.kafka_brokers} (this shell says {cfg.kafka_brokers})"}
    rows = {name: {**services.service(name, other).status(), "extra": note} for name in services.kafka_names(other)}
    shown: dict = {}
    for name, row in found.items():
        if name in mine:
            shown.update(rows)
        else:
            shown[name] = row
    return shown


def logs(name: str, lines: int = 60, cfg: LabConfig | None = None) -> str:
    return services.service(name, cfg or get_config()).log_tail(lines)
