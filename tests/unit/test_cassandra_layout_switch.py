"""`use_cassandra_nodes`: what it stops, starts and restarts when the layout changes, and
what it leaves alone when it does not (the stack's verbs recorded, no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsupport import config
from labsupport.config import LabConfig
from labsupport.lessons import ring

BASE = LabConfig(home=Path("/srv/lab"))


@pytest.fixture
def verbs(monkeypatch):
    """Every stack.up/down as (verb, names, cassandra_nodes); the running layout and the
    running dependants as the test sets them."""
    from labsupport import stack

    calls: list[tuple] = []
    world = {"nodes": None, "running": set()}
    monkeypatch.setattr(config, "_config", config._config)
    monkeypatch.setattr(stack, "up", lambda names, cfg, progress: calls.append(("up", list(names), cfg.cassandra_nodes)))
    monkeypatch.setattr(stack, "down", lambda names, cfg, progress: calls.append(("down", list(names), cfg.cassandra_nodes)))
    monkeypatch.setattr(ring, "running_nodes", lambda cfg: world["nodes"])

    class Fake:
        def __init__(self, name):
            self.name = name

        def running(self):
            return self.name in world["running"]

    monkeypatch.setattr(ring.services, "service", lambda name, cfg: Fake(name))
    return calls, world


def test_switching_to_the_ring_stops_the_dependants_and_one_node_then_restarts_them_on_the_ring(verbs):
    calls, world = verbs
    world.update(nodes=1, running={"stream"})
    took = ring.use_cassandra_nodes(3, BASE, progress=lambda _m: None)
    assert calls == [("down", ["stream"], 1), ("down", ["cassandra"], 1), ("up", ["cassandra", "prometheus"], 3),
                     ("up", ["stream"], 3)]
    assert took >= 0 and config.get_config().cassandra_nodes == 3


def test_nothing_running_starts_the_layout_and_stops_nothing(verbs):
    calls, world = verbs
    ring.use_cassandra_nodes(3, BASE, progress=lambda _m: None)
    assert calls == [("up", ["cassandra", "prometheus"], 3)]


def test_without_dependants_only_the_other_layout_is_stopped(verbs):
    """An empty `down` would stop every service: none is asked for."""
    calls, world = verbs
    world.update(nodes=1)
    ring.use_cassandra_nodes(3, BASE, progress=lambda _m: None)
    assert calls == [("down", ["cassandra"], 1), ("up", ["cassandra", "prometheus"], 3)]


def test_the_running_layout_asked_again_is_only_waited_for_its_dependants_untouched(verbs):
    calls, world = verbs
    world.update(nodes=3, running={"stream", "pipeline-view"})
    ring.use_cassandra_nodes(3, BASE, progress=lambda _m: None)
    assert calls == [("up", ["cassandra", "prometheus"], 3)]


def test_from_the_ring_back_to_one_node_the_ring_is_stopped_with_its_own_config(verbs):
    calls, world = verbs
    world.update(nodes=3, running={"pipeline-view"})
    ring.use_cassandra_nodes(1, BASE.replace(cassandra_nodes=1), progress=lambda _m: None)
    assert calls == [("down", ["pipeline-view"], 1), ("down", ["cassandra"], 3),
                     ("up", ["cassandra", "prometheus"], 1), ("up", ["pipeline-view"], 1)]
