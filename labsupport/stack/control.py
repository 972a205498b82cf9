"""Stack control for notebooks and the `lab` command: the same operations in both.

    from labsupport import stack
    stack.up()                 # every service, waits until each is ready
    stack.kill("cassandra")    # SIGKILL its process group (fault injection)
    stack.status()
"""

from __future__ import annotations

from typing import Callable, Iterable

from labsupport.stack import services
from labsupport.stack.services.families import FAMILIES
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
    others = [(family, other) for family in FAMILIES.values() if set(chosen) & set(family.names(cfg))
              and (other := family.other_running_layout(cfg)) is not None]
    for name in reversed(chosen):
        svc = services.service(name, cfg)
        if svc.stop(progress=progress):
            progress(f"{name}: stopped")
        if purge:
            svc.purge()
            progress(f"{name}: data purged")
    for family, other in others:
        for name in reversed(family.names(other)):
            if services.service(name, other).stop(progress=progress):
                progress(f"{name}: stopped (the {family.label} layout of {family.env}={family.size(other)}, "
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
    """Each chosen service's state; with none chosen, also the Kafka or Cassandra of
    another layout when that one is what runs (its rows say which layout it is)."""
    cfg = cfg or get_config()
    shown = {name: services.service(name, cfg).status() for name in _selected(names, cfg)}
    for family in FAMILIES.values():
        other = family.other_running_layout(cfg) if names is None else None
        if other is not None:
            shown = _with_running_layout(shown, family, cfg, other)
    return shown


def _with_running_layout(found: dict, family, cfg: LabConfig, other: LabConfig) -> dict:
    """``found`` with the family's rows of ``cfg`` replaced, in their place, by the rows
    of the layout that runs: a `kafka stopped` row beside a running cluster would only
    mislead."""
    mine = set(family.names(cfg))
    note = {"layout": f"{family.env}={family.size(other)} (this shell says {family.size(cfg)})"}
    rows = {name: {**services.service(name, other).status(), "extra": note} for name in family.names(other)}
    shown: dict = {}
    for name, row in found.items():
        if name in mine:
            shown.update(rows)
        else:
            shown[name] = row
    return shown


def logs(name: str, lines: int = 60, cfg: LabConfig | None = None) -> str:
    return services.service(name, cfg or get_config()).log_tail(lines)
