"""The lab's Cassandra as one node or as a ring, for lesson 10.

`use_cassandra_nodes(n)` switches the running layout — the single node ``cassandra``,
or the ring ``cassandra-1..n`` on 127.0.0.1..n — and points this process
(`set_config`), Prometheus's scrape targets and the services that talk to Cassandra at
it. The layouts share ports but not data directories (``data/cassandra`` against
``data/cassandra-1..n``), so the learner's one-node keyspaces are left exactly as they
were and come back with it; the ring's ``streamlab`` keyspace is its own, at three
replicas (`schema.replication_factor`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from labsupport.config import LabConfig, get_config, set_config
from labsupport.stack import services
from labsupport.stack.services.cassandra import CASSANDRA

#: the services that connect to Cassandra with the contact points they were started
#: with (their config reaches them as environment): restarted on the new layout
DEPENDANTS = ("stream", "pipeline-view")


def running_nodes(cfg: LabConfig | None = None) -> int | None:
    """The Cassandra layout running now (1, or the ring's size), None when none runs."""
    cfg = cfg or get_config()
    return CASSANDRA.size_of(CASSANDRA.running(cfg), cfg)


def use_cassandra_nodes(n: int, cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> float:
    """The lab's Cassandra as ``n`` nodes (1: the single node), running and scraped.

    Stops the other layout if it runs, and first the services that depend on Cassandra;
    starts this layout; re-renders Prometheus's targets and reloads it (starting it if it
    was not running); restarts the dependants that were running, now on this layout; and
    makes this layout the config of this process (`get_config`). Returns the seconds."""
    from labsupport import stack

    started = time.monotonic()
    base = cfg or get_config()
    want = base.replace(cassandra_nodes=n)
    found = running_nodes(base)
    dependants = [name for name in DEPENDANTS if services.service(name, base).running()]
    if found is not None and found != n:
        progress(f"cassandra: switching from {_layout(found)} to {_layout(n)} (each layout keeps its own data)")
        if dependants:  # (none named would mean every service)
            stack.down(dependants, cfg=base, progress=progress)
        stack.down(["cassandra"], cfg=CASSANDRA.with_size(base, found), progress=progress)
    else:
        dependants = []  # same layout: they already talk to it
    # a running Prometheus is re-rendered and reloaded by its start (`refresh`)
    stack.up(["cassandra", "prometheus"], cfg=want, progress=progress)
    if dependants:
        stack.up(dependants, cfg=want, progress=progress)
    set_config(want)
    took = time.monotonic() - started
    progress(f"cassandra: {_layout(n)} running and scraped ({took:.0f}s)")
    return took


@contextmanager
def cassandra_ring(n: int = 3, cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> Iterator[LabConfig]:
    """The ring of ``n`` nodes for the ``with`` block (its config is yielded), then the
    layout that ran before it back (or the configured one, if none ran)."""
    base = cfg or get_config()
    before = running_nodes(base) or base.cassandra_nodes
    use_cassandra_nodes(n, base, progress)
    try:
        yield get_config()
    finally:
        use_cassandra_nodes(before, base, progress)


def _layout(n: int) -> str:
    return "one node" if n == 1 else f"a ring of {n}"
