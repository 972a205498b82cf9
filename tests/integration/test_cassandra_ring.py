"""The three-node Cassandra ring (LAB_CASSANDRA_NODES=3) on the lab itself: started from
whatever layout ran, a key written at RF 1 lives on the node the token ring names, a
node killed with `lab kill cassandra-2` is stopped in `lab status` and down in
Prometheus (its per-node panel series go) while the others keep answering, it comes
back with its data and gets the hints kept for it (both counted by the JMX rules' new
metrics), and the one-node layout's data is untouched by the excursion.

Everything it writes is in keyspaces of its own (``t_ring_<tag>``, dropped at the end);
the lab is put back in the layout, and with the services, it was found in.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement

from labsupport import config, stack
from labsupport.config import REPO_ROOT, LabConfig
from labsupport.lessons.ring import running_nodes, use_cassandra_nodes
from labsupport.observe import dashboards, prom
from labsupport.stack import services
from labsupport.stack.services.cassandra import cassandra_nodes
from labsupport.waits import wait_for

NODES = 3
KEYS = [f"k{i}" for i in range(40)]
PANELS = ("Writes/s per node", "Write latency p99 per node (ms)", "Pending compactions per node")


class Phases:
    """Seconds per phase, printed as they end (the test must stay under ~4 minutes)."""

    def __init__(self):
        self.t = time.monotonic()
        self.took: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.took[name] = round(now - self.t, 1)
        self.t = now
        print(f"phase {name}: {self.took[name]} s", flush=True)


def lab(*args: str, nodes: int) -> str:
    """The real `lab` command, from a shell whose environment says ``nodes``."""
    env = {**os.environ, "LAB_CASSANDRA_NODES": str(nodes)}
    out = subprocess.run([str(REPO_ROOT / "lab"), *args], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def session_on(addresses: list[str], cfg: LabConfig):
    """A (cluster, session) whose requests go to ``addresses`` only, at ONE."""
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(addresses),
                               consistency_level=ConsistencyLevel.ONE, request_timeout=10)
    cluster = Cluster(addresses, port=cfg.cassandra_port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return cluster, cluster.connect()


def own_keyspace(session, name: str, rf: int = 1) -> None:
    session.execute(f"CREATE KEYSPACE {name} WITH replication = "
                    f"{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}", timeout=60)
    session.execute(f"CREATE TABLE {name}.kv (k text PRIMARY KEY, v text)", timeout=60)


def owner(token: int, cfg: LabConfig) -> str:
    """The node whose token is the smallest >= ``token``, wrapping around (one token per
    node: the arithmetic lesson 10 teaches)."""
    from labsupport.stack.services.cassandra import initial_token

    ring = sorted((initial_token(n.index, cfg.cassandra_nodes), n.name) for n in cassandra_nodes(cfg))
    return next((name for t, name in ring if t >= token), ring[0][1])


def readable(session, keyspace: str, key: str) -> bool:
    try:
        return session.execute(SimpleStatement(f"SELECT v FROM {keyspace}.kv WHERE k = %s"), (key,)).one() is not None
    except Exception:  # Unavailable, ReadTimeout, NoHostAvailable: not answered
        return False


def panel_services(title: str, cfg: LabConfig) -> set[str]:
    """The ``service`` of every series a per-node panel's query returns now."""
    [target] = dashboards.find(title).targets
    return {s["metric"].get("service") for s in prom.query(target.expr, cfg)}


@pytest.fixture
def lab_as_found(monkeypatch):
    """The lab's Cassandra layout and services before the test, restored after it; this
    process's config (`use_cassandra_nodes` sets it) restored too."""
    monkeypatch.setattr(config, "_config", config._config)
    base = LabConfig.from_env()
    before = running_nodes(base)
    running = set(services.running(base.replace(cassandra_nodes=before or base.cassandra_nodes)))
    yield base
    use_cassandra_nodes(before or 1, base)
    if before is None:
        stack.down(["cassandra"], cfg=base.replace(cassandra_nodes=1))
    if "prometheus" not in running:
        stack.down(["prometheus"], cfg=base)


def test_the_ring_serves_loses_a_node_visibly_and_leaves_the_one_node_data_alone(lab_as_found):
    base = lab_as_found
    tag = uuid.uuid4().hex[:8]
    marker_ks, ring_ks, hinted_ks = f"t_ring_{tag}_one", f"t_ring_{tag}", f"t_ring_{tag}_rf3"
    phases = Phases()

    # the one-node layout, with a marker of our own in it
    single = base.replace(cassandra_nodes=1)
    use_cassandra_nodes(1, base, progress=print)
    cluster, session = session_on([single.host], single)
    try:
        own_keyspace(session, marker_ks)
        session.execute(f"INSERT INTO {marker_ks}.kv (k, v) VALUES ('marker', %s)", (tag,))
    finally:
        cluster.shutdown()
    phases.done("one node up, marker written")

    took = use_cassandra_nodes(NODES, base, progress=print)
    ring = base.replace(cassandra_nodes=NODES)
    phases.done(f"switch to the ring ({took:.0f}s)")

    rows = json.loads(lab("status", "--json", nodes=NODES))
    names = [n.name for n in cassandra_nodes(ring)]
    assert [n for n in rows if n.startswith("cassandra")] == names
    assert all(rows[n]["state"] == "running" and rows[n]["healthy"] for n in names), rows
    seen_from_one = json.loads(lab("status", "--json", nodes=1))  # a shell that says one node
    assert "cassandra" not in seen_from_one
    assert seen_from_one["cassandra-2"]["extra"] == {"layout": "LAB_CASSANDRA_NODES=3 (this shell says 1)"}

    addresses = [n.address for n in cassandra_nodes(ring)]
    cluster, session = session_on(addresses, ring)
    try:
        peers = {r.peer for r in session.execute("SELECT peer FROM system.peers")}
        assert len(peers) == NODES - 1 and peers < set(addresses)
        own_keyspace(session, ring_ks)
        own_keyspace(session, hinted_ks, rf=NODES)
        owners = {}
        for key in KEYS:
            session.execute(f"INSERT INTO {ring_ks}.kv (k, v) VALUES (%s, %s)", (key, tag))
            token = session.execute(f"SELECT token(k) FROM {ring_ks}.kv WHERE k = %s", (key,)).one()[0]
            owners[key] = owner(token, ring)
        assert set(owners.values()) == set(names), owners  # 40 keys land on every node
        # the kill below proves the arithmetic: exactly the keys it names for cassandra-2 go
        phases.done("ring answers, keys on their token's node")

        assert "cassandra-2: killed" in lab("kill", "cassandra-2", nodes=NODES)
        rows = json.loads(lab("status", "--json", nodes=NODES))
        assert rows["cassandra-2"]["state"] == "stopped" and not rows["cassandra-2"]["healthy"]
        assert rows["cassandra-1"]["state"] == rows["cassandra-3"]["state"] == "running"
        wait_for(lambda: prom.scalar('up{job="cassandra",service="cassandra-2"}', ring, default=-1) == 0, 30,
                 "Prometheus seeing cassandra-2 down")
        assert prom.scalar('sum(up{job="cassandra",service=~"cassandra-1|cassandra-3"})', ring) == 2
        for title in PANELS:
            wait_for(lambda: (found := panel_services(title, ring)) >= {"cassandra-1", "cassandra-3"}
                     and "cassandra-2" not in found, 90, f"panel {title!r} without a fresh cassandra-2 series")
        live = [k for k, n in owners.items() if n != "cassandra-2"]
        dead = [k for k, n in owners.items() if n == "cassandra-2"]
        assert all(readable(session, ring_ks, k) for k in live)  # the others keep answering
        assert not any(readable(session, ring_ks, k) for k in dead[:3])  # RF 1: its keys have no other copy
        for key in dead:  # RF 3 at ONE: accepted, and a hint kept for cassandra-2
            session.execute(f"INSERT INTO {hinted_ks}.kv (k, v) VALUES (%s, %s)", (key, tag))
        one_log, ring_logs = lab("logs", "cassandra-2", nodes=NODES), lab("logs", "cassandra", nodes=NODES)
        assert "INFO" in one_log and "==>" not in one_log  # its own log; `cassandra` is every node's
        assert all(f"==> {n} <==" in ring_logs for n in names)
        phases.done("cassandra-2 killed, seen stopped and down")

        lab("up", "cassandra-2", nodes=NODES)
        wait_for(lambda: prom.scalar('up{job="cassandra",service="cassandra-2"}', ring, default=-1) == 1, 30,
                 "Prometheus seeing cassandra-2 up")
        wait_for(lambda: all(readable(session, ring_ks, k) for k in dead), 60, "cassandra-2's keys answered again")
        wait_for(lambda: prom.scalar('sum(cassandra_hints_succeeded_total{job="cassandra"})', ring) >= 1, 90,
                 "the hints kept for cassandra-2 delivered, in Prometheus")
        assert prom.scalar(f'sum(cassandra_table_writes_total{{job="cassandra",keyspace="{hinted_ks}"}})', ring) \
            >= 2 * len(dead)  # the two live replicas' local writes (the hinted ones come on top)
        phases.done("cassandra-2 back with its data")
        for keyspace in (ring_ks, hinted_ks):
            session.execute(f"DROP KEYSPACE {keyspace}", timeout=60)
    finally:
        cluster.shutdown()

    use_cassandra_nodes(1, base, progress=print)
    cluster, session = session_on([single.host], single)
    try:
        assert session.execute(f"SELECT v FROM {marker_ks}.kv WHERE k = 'marker'").one().v == tag
        session.execute(f"DROP KEYSPACE {marker_ks}", timeout=60)
    finally:
        cluster.shutdown()
    phases.done("back on one node, marker intact")
    print(f"phases (s): {phases.took}; total {sum(phases.took.values()):.0f}")
