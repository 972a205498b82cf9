"""Cassandra's processes, addresses and ports for one node and for a ring
(LAB_CASSANDRA_NODES=3): the data contract the compose profile and lesson 10 build on."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsupport.config import LabConfig
from labsupport.errors import LabError, UnknownService
from labsupport.stack.services.cassandra import CassandraNode, cassandra_nodes, initial_token, is_ring
from labsupport.stack.services.kafka import kafka_nodes

SINGLE = LabConfig(home=Path("/srv/lab"))
RING = SINGLE.replace(cassandra_nodes=3)


def test_the_default_is_the_one_node_of_today_on_the_configured_host_and_ports():
    assert not is_ring(SINGLE)
    assert cassandra_nodes(SINGLE) == [CassandraNode("cassandra", 1, "127.0.0.1", 7199, 7072)]
    assert SINGLE.cassandra_contact_points == ["127.0.0.1"]
    moved = SINGLE.replace(host="127.0.0.9", cassandra_jmx_port=17199, cassandra_exporter_port=17072)
    assert cassandra_nodes(moved) == [CassandraNode("cassandra", 1, "127.0.0.9", 17199, 17072)]


def test_a_ring_node_n_listens_on_127_0_0_n_with_its_own_jmx_and_exporter_ports():
    assert is_ring(RING)
    assert cassandra_nodes(RING) == [CassandraNode("cassandra-1", 1, "127.0.0.1", 7199, 7072),
                                     CassandraNode("cassandra-2", 2, "127.0.0.2", 7299, 7082),
                                     CassandraNode("cassandra-3", 3, "127.0.0.3", 7399, 7092)]
    assert RING.cassandra_contact_points == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert RING.endpoints()["cassandra"] == "127.0.0.1:9042,127.0.0.2:9042,127.0.0.3:9042"


def test_no_ring_port_collides_with_kafkas_in_either_layout():
    ring_ports = {p for n in cassandra_nodes(RING) for p in (n.jmx_port, n.exporter_port)}
    for brokers in (1, 3):
        kafka = {p for n in kafka_nodes(RING.replace(kafka_brokers=brokers))
                 for p in (n.port, n.controller_port, n.exporter_port) if p}
        assert not ring_ports & kafka


def test_the_env_chooses_the_layout_and_explicit_hosts_still_win():
    assert LabConfig.from_env({"LAB_CASSANDRA_NODES": "3"}).cassandra_nodes == 3
    assert LabConfig.from_env({"LAB_CASSANDRA_NODES": "3", "LAB_CASSANDRA_HOSTS": "c1,c2"}).cassandra_contact_points \
        == ["c1", "c2"]
    with pytest.raises(LabError, match="LAB_CASSANDRA_NODES='three'"):
        LabConfig.from_env({"LAB_CASSANDRA_NODES": "three"})


def test_a_ring_needs_an_ip_host_to_number_its_nodes_from():
    with pytest.raises(LabError, match="not an IP address"):
        cassandra_nodes(RING.replace(host="localhost"))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_tokens_split_murmur3s_ring_into_equal_arcs(n):
    tokens = [initial_token(i, n) for i in range(1, n + 1)]
    assert tokens[0] == -2 ** 63 and tokens == sorted(tokens)
    arcs = [b - a for a, b in zip(tokens, tokens[1:] + [tokens[0] + 2 ** 64])]
    assert max(arcs) - min(arcs) <= 1
    assert all(-2 ** 63 <= t < 2 ** 63 for t in tokens)


def test_cassandra_names_the_whole_ring_for_every_verb_and_each_node_is_a_service():
    from labsupport.stack import services
    from labsupport.stack.services.cassandra import CassandraRing

    assert services.expand(["cassandra"], SINGLE) == ["cassandra"]
    assert services.expand(["cassandra", "kafka"], RING) == ["kafka", "cassandra-1", "cassandra-2", "cassandra-3"]
    ring = services.service("cassandra", RING)
    assert isinstance(ring, CassandraRing) and [m.name for m in ring.members] == ["cassandra-1", "cassandra-2",
                                                                                    "cassandra-3"]
    node = services.service("cassandra-2", RING)
    assert (node.name, node.data_dir, node.log) == ("cassandra-2", Path("/srv/lab/data/cassandra-2"),
                                                    Path("/srv/lab/logs/cassandra-2.log"))
    assert node.ports() == {"cassandra_port": 9042, "cassandra_storage_port": 7000, "cassandra_jmx_port": 7299,
                            "cassandra_exporter_port": 7082}
    assert [node.bind_address(label) for label in node.ports()] == ["127.0.0.2", "127.0.0.2", "127.0.0.1", "127.0.0.1"]
    with pytest.raises(UnknownService, match="cassandra-1, cassandra-2, cassandra-3"):
        services.service("cassandra-4", RING)
    with pytest.raises(UnknownService):
        services.service("cassandra-2", SINGLE)


def test_a_ring_node_renders_its_addresses_its_one_token_every_seed_and_no_bootstrap():
    from labsupport.stack import services

    single = services.service("cassandra", SINGLE).render_yaml()
    assert (single["listen_address"], single["rpc_address"]) == ("127.0.0.1", "127.0.0.1")
    assert "initial_token" not in single and "auto_bootstrap" not in single
    assert single["data_file_directories"] == ["/srv/lab/data/cassandra/data"]
    conf = services.service("cassandra-3", RING).render_yaml()
    assert (conf["listen_address"], conf["rpc_address"]) == ("127.0.0.3", "127.0.0.3")
    assert conf["seed_provider"][0]["parameters"] == [{"seeds": "127.0.0.1,127.0.0.2,127.0.0.3"}]
    assert (conf["num_tokens"], conf["initial_token"], conf["auto_bootstrap"]) == (1, str(initial_token(3, 3)), False)
    assert conf["data_file_directories"] == ["/srv/lab/data/cassandra-3/data"]
    assert conf["memtable_heap_space"] == "160MiB"  # a quarter of the 640M ring heap


@pytest.mark.parametrize("cfg,targets", [
    (SINGLE, {"cassandra": "127.0.0.1:7072"}),
    (RING, {"cassandra-1": "127.0.0.1:7072", "cassandra-2": "127.0.0.1:7082", "cassandra-3": "127.0.0.1:7092"}),
])
def test_prometheus_scrapes_every_cassandra_node_in_one_job_labelled_by_service(cfg, targets):
    from labsupport.stack.services.prometheus import render_config

    [job] = [j for j in render_config(cfg)["scrape_configs"] if j["job_name"] == "cassandra"]
    assert {c["labels"]["service"]: t for c in job["static_configs"] for t in c["targets"]} == targets
    assert all(len(c["targets"]) == 1 for c in job["static_configs"])


def test_the_streamlab_keyspace_has_three_replicas_on_a_ring_and_one_alone():
    from labsupport import schema

    for cfg, rf in ((SINGLE, 1), (SINGLE.replace(cassandra_nodes=2), 2), (RING, 3), (SINGLE.replace(cassandra_nodes=5), 3)):
        assert schema.replication_factor(cfg) == rf
        keyspace = schema.statements(cfg, "t_mine")[0]
        assert keyspace.startswith("CREATE KEYSPACE IF NOT EXISTS t_mine ") and f"'replication_factor': {rf}}}" in keyspace


def _running(cfg: LabConfig, name: str):
    from labsupport.stack import procs

    return procs.spawn(["sleep", "600"], cfg.paths.pidfile(name), cfg.paths.log(name))


@pytest.mark.parametrize("running,asked", [("cassandra", RING), ("cassandra-2", SINGLE)])
def test_starting_the_other_layout_names_the_running_cassandra_and_how_to_stop_it(tmp_path, running, asked):
    from labsupport.errors import ServiceFailed
    from labsupport.stack import procs, services

    cfg = asked.replace(home=tmp_path)
    rec = _running(cfg, running)
    try:
        first = services.expand(["cassandra"], cfg)[0]
        with pytest.raises(ServiceFailed, match=f"Cassandra is running as .*\\({running}\\)") as err:
            services.service(first, cfg).check_ports_free()
        assert "lab down cassandra" in err.value.remedy
    finally:
        procs.kill(cfg.paths.pidfile(running))
    assert not rec.alive()


def test_status_shows_and_down_stops_the_ring_that_runs_when_the_shell_says_one_node(tmp_path):
    """The ring seen from a shell that says one node, after a lesson killed cassandra-3:
    its rows replace the `cassandra stopped` one, with the layout the nodes recorded."""
    from labsupport.stack import control
    from labsupport.stack.services.cassandra import CASSANDRA

    cfg = SINGLE.replace(home=tmp_path)
    CASSANDRA.record_layout(cfg.replace(cassandra_nodes=3))
    rec = _running(cfg, "cassandra-1")
    try:
        st = control.status(cfg=cfg)
        assert "cassandra" not in st
        names = list(st)
        assert names[names.index("cassandra-1"):names.index("cassandra-1") + 3] == ["cassandra-1", "cassandra-2",
                                                                                   "cassandra-3"]
        assert names.index("cassandra-1") == names.index("kafka") + 1  # where `cassandra` was
        assert st["cassandra-1"]["state"] == "running" and st["cassandra-3"]["state"] == "stopped"
        assert st["cassandra-1"]["extra"] == {"layout": "LAB_CASSANDRA_NODES=3 (this shell says 1)"}
        said: list[str] = []
        control.down(["cassandra"], cfg=cfg, progress=said.append)
        assert not rec.alive()
        assert any(line.startswith("cassandra-1: stopped (the Cassandra layout of LAB_CASSANDRA_NODES=3") for line in said)
    finally:
        rec.alive() and control.down(cfg=cfg.replace(cassandra_nodes=3), progress=lambda _m: None)
