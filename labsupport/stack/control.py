"""Stack control for notebooks and the `lab` command: the same operations in both.

    from labsupport import stack
    stack.up()                 # every service, waits until each is ready
    stack.kill("cassandra")    # SIGKILL its process group (fault injection)
    stack.status()
"""

from __future__ import annotations

from typing import Callable, Iterable

from labsupport.stack import services
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
    for name in _selected(names, cfg, default=services.default_names):
        services.service(name, cfg).start(progress)
    return status(names, cfg)


def down(names: Iterable[str] | str | None = None, purge: bool = False, cfg: LabConfig | None = None,
         progress: Callable[[str], None] = _say) -> None:
    """Stop services (reverse start order); ``purge`` also deletes their data.

    Only processes that are provably the service's are signalled: a pid file naming
    a dead or recycled pid is removed with one line saying so (see stack.procs)."""
    cfg = cfg or get_config()
    for name in reversed(_selected(names, cfg)):
        svc = services.service(name, cfg)
        if svc.stop(progress=progress):
            progress(f"{name}: stopped")
        if purge:
            svc.purge()
            progress(f"{name}: data purged")


def kill(name: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = _say) -> bool:
    """SIGKILL a service's whole process group, as a crash would."""
    return services.service(name, cfg or get_config()).kill(progress)


def restart(name: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = _say) -> dict:
    svc = services.service(name, cfg or get_config())
    svc.stop(progress=progress)
    svc.start(progress)
    return svc.status()


def status(names: Iterable[str] | str | None = None, cfg: LabConfig | None = None) -> dict:
    cfg = cfg or get_config()
    return {name: services.service(name, cfg).status() for name in _selected(names, cfg)}


def logs(name: str, lines: int = 60, cfg: LabConfig | None = None) -> str:
    return services.service(name, cfg or get_config()).log_tail(lines)
