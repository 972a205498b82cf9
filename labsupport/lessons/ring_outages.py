"""Cassandra ring nodes down and back, for lesson 10: kill a node, wait until the
coordinator *knows* a quorum is gone (it refuses with ``Unavailable`` instead of timing
out), bring the nodes back, count the hints delivered, and put the lab back on the
Cassandra layout it is configured for.

The writes and the refusals themselves are the learner's (the lesson's cells, with the
driver); this module only does what a lesson should not spell out: service control,
Prometheus queries, and waits with deadlines.
"""

from __future__ import annotations

import time
from typing import Callable

from labsupport.config import LabConfig, get_config
from labsupport.observe import prom
from labsupport.waits import TimedOut, wait_for

#: hints a node delivered to a replica that came back (HintsService HintsSucceeded), summed over the ring
HINTS_DELIVERED = 'sum(cassandra_hints_succeeded_total{job="cassandra"})'
#: the reason lesson 10 pauses the production pipeline (and its marker's name)
LESSON = "lesson10"


def kill_node(name: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> float:
    """``kill -9`` one node (``lab kill NAME``) and wait until Prometheus scrapes it as
    down, so the live plot shows it; returns the seconds that took."""
    from labsupport import stack

    cfg = cfg or get_config()
    started = time.monotonic()
    stack.kill(name, cfg=cfg, progress=progress)
    wait_for(lambda: prom.target_down("cassandra", name, cfg), 60, f"Prometheus to scrape {name} as down", interval=1)
    return time.monotonic() - started


def wait_refused(probe: Callable[[], object], timeout: float = 90) -> tuple[float, Exception]:
    """Call ``probe`` (a request at a level the live replicas cannot meet) until it raises
    ``Unavailable``; returns (seconds waited, that error). Until the coordinator's failure
    detector convicts the killed node it still counts it alive, sends it the request and
    times out (ReadTimeout/WriteTimeout): those answers are retried, anything else is raised."""
    from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout

    started = time.monotonic()
    refusal: list[Exception] = []

    def refused() -> bool:
        try:
            probe()
        except Unavailable as exc:
            refusal.append(exc)
            return True
        except (ReadTimeout, WriteTimeout, OperationTimedOut):
            return False
        return False

    try:
        wait_for(refused, timeout, "the coordinator to refuse with Unavailable", interval=1)
    except TimedOut as exc:
        raise TimedOut(f"{exc.cause}: the probe kept succeeding or timing out", exc.remedy) from None
    return time.monotonic() - started, refusal[0]


def nodes_back(cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> float:
    """Start every stopped node of the ring (``lab up cassandra``) and wait until each
    answers CQL; returns the seconds."""
    from labsupport import stack

    started = time.monotonic()
    stack.up(["cassandra"], cfg=cfg or get_config(), progress=progress)
    return time.monotonic() - started


def hints_delivered(cfg: LabConfig | None = None) -> int:
    """Hints the ring's nodes have delivered since they started, as Prometheus last scraped."""
    return int(prom.scalar(HINTS_DELIVERED, cfg or get_config()))


def ring_for_lesson(cfg: LabConfig, progress: Callable[[str], None] = print) -> LabConfig:
    """The production pipeline paused (two cores, three Cassandra JVMs) and Cassandra as a
    three-node ring, scraped node by node; returns the config the lesson's kernel uses
    from now on (`back_to_configured_layout` undoes both)."""
    from labsupport.lessons.pipeline import pause_for
    from labsupport.lessons.ring import use_cassandra_nodes

    pause_for(LESSON, cfg, progress)
    use_cassandra_nodes(3, cfg, progress=progress)
    return get_config()


def back_to_configured_layout(stream_was_running: bool, progress: Callable[[str], None] = print) -> float:
    """Cassandra back on the layout the lab is configured for (``LAB_CASSANDRA_NODES``:
    the one node, with its data, unless the learner chose a ring), then the default stream
    if it ran before the lesson (the lesson ran its own in its place: stop that one first,
    or the switch would restart it, as the default stream, on the one node), and the
    production pipeline on again if the lesson paused it. Returns the seconds."""
    from labsupport.lessons.pipeline import resume_after
    from labsupport.lessons.ring import use_cassandra_nodes
    from labsupport.lessons.sandboxes import restore_stream

    started = time.monotonic()
    use_cassandra_nodes(LabConfig.from_env().cassandra_nodes, progress=progress)
    restore_stream(get_config(), progress, start=stream_was_running)
    resume_after(LESSON, get_config(), progress)
    return time.monotonic() - started
