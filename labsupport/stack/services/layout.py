"""Service families that run as one process or as several nodes: Kafka (one broker, or
a controller and N brokers) and Cassandra (one node, or a ring of N).

A family has two layouts, chosen by one config field (``kafka_brokers``,
``cassandra_nodes``). Each node is its own service (process group, log, pid file, data
dir named after it); the family's name (``kafka``, ``cassandra``) is the single node's
and, in a multi-node layout, names every node at once (`NodeGroup`). Only one layout of
a family runs at a time: the layouts share ports, not data. The layout that started
last is recorded, so `lab status` and `lab down` find the running one from a shell
whose environment says the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labsupport.config import LabConfig
from labsupport.errors import ServiceFailed
from labsupport.stack import procs


@dataclass(frozen=True)
class NodeFamily:
    """What the shared layout machinery needs to know of one family."""

    name: str                                   # the single node's service, and the whole family's
    size_field: str                             # the LabConfig field choosing the layout
    nodes: Callable[[LabConfig], list]          # its nodes (each with .name, .exporter_port), start order
    member: Callable[[LabConfig, object], object]   # the local service of one node
    group: Callable[[LabConfig], object]        # the local `NodeGroup` of a multi-node layout
    label: str                                  # "Kafka", in messages
    one: str                                    # "one broker"
    many: str                                   # "a cluster"

    @property
    def env(self) -> str:
        return f"LAB_{self.size_field.upper()}"

    def size(self, cfg: LabConfig) -> int:
        return getattr(cfg, self.size_field)

    def with_size(self, cfg: LabConfig, size: int) -> LabConfig:
        return cfg.replace(**{self.size_field: size})

    def is_multi(self, cfg: LabConfig) -> bool:
        return self.size(cfg) > 1

    def names(self, cfg: LabConfig) -> list[str]:
        return [node.name for node in self.nodes(cfg)]

    def describe(self, cfg: LabConfig) -> str:
        return self.many if self.is_multi(cfg) else self.one

    def running(self, cfg: LabConfig) -> list[str]:
        """The family's processes alive now, by their pid files, whatever the layout."""
        run = cfg.paths.pidfile(self.name).parent
        return sorted(f.stem for f in run.glob(f"{self.name}*.json")
                      if (rec := procs.read_record(f)) is not None and rec.alive())

    def layout_file(self, cfg: LabConfig) -> Path:
        """Where the layout that was started last is recorded (its size)."""
        return cfg.paths.pidfile(self.name).parent / f"{self.name}-layout"

    def record_layout(self, cfg: LabConfig) -> None:
        """Written by every node as it starts: only one layout runs at a time (a node of
        another layout refuses to start while one runs), so the last written is the
        running one's."""
        path = self.layout_file(cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{self.size(cfg)}\n")

    def size_of(self, names: list[str], cfg: LabConfig | None = None) -> int | None:
        """The layout (size) a set of running process names belongs to, None when nothing
        runs: 1 for the single node; for numbered nodes, what the nodes recorded as they
        started (a layout of 3 whose third node died is still 3, and one of 2 whose second
        died is not 1). Without a record, the highest node number, at least 2."""
        if not names:
            return None
        if self.name in names:
            return 1
        try:
            recorded = int(self.layout_file(cfg).read_text()) if cfg is not None else None
        except (OSError, ValueError):
            recorded = None
        if recorded is not None and recorded > 1:
            return recorded
        ids = [int(n.rsplit("-", 1)[1]) for n in names if n.rsplit("-", 1)[-1].isdigit()]
        return max(ids + [2])

    def other_running_layout(self, cfg: LabConfig) -> LabConfig | None:
        """The config of the layout running now when it is not ``cfg``'s, else None (a
        lesson's multi-node layout seen from a shell whose environment says one node, or
        the reverse). `lab status` shows it and `lab down` stops it, so neither leaves a
        learner believing the service is down while its ports are taken."""
        found = self.size_of(self.running(cfg), cfg)
        if found is None:
            return None
        other = self.with_size(cfg, found)
        return None if self.names(other) == self.names(cfg) else other

    def refuse_other_layout(self, service: str, cfg: LabConfig) -> None:
        """Starting one layout while the other runs would only show as a busy port: name
        the running layout and how to stop it."""
        mine = set(self.names(cfg))
        other = [name for name in self.running(cfg) if name not in mine]
        if other:
            was = self.one if self.name in other else self.many
            raise ServiceFailed(f"{service}: the lab's {self.label} is running as {was} ({', '.join(other)}), "
                                f"{self.env}={self.size(cfg)} asks for {self.describe(cfg)}",
                                f"stop it first: `lab down {self.name}` (it stops whichever layout runs), "
                                f"then `lab up` again")


class NodeGroup:
    """A family's name when it runs several nodes, for the verbs that take one service
    (kill, restart, logs) and for code asking whether it runs: every node at once."""

    def __init__(self, name: str, members: list):
        self.name = name
        self.members = members

    def running(self) -> bool:
        return all(m.running() for m in self.members)

    def healthy(self) -> bool:
        return all(m.healthy() for m in self.members)

    def start(self, progress=print) -> "NodeGroup":
        for m in self.members:
            m.start(progress)
        return self

    def stop(self, grace: float = 30.0, progress=print) -> bool:
        return any([m.stop(grace, progress=progress) for m in reversed(self.members)])

    def kill(self, progress=print) -> bool:
        return any([m.kill(progress) for m in reversed(self.members)])

    def purge(self) -> None:
        for m in self.members:
            m.purge()

    def status(self) -> dict:
        return {m.name: m.status() for m in self.members}

    def log_tail(self, lines: int = 40, since: int = 0) -> str:
        return "\n".join(f"==> {m.name} <==\n{m.log_tail(lines)}" for m in self.members)
