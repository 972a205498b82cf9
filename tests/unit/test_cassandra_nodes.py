"""Cassandra's processes, addresses and ports for one node and for a ring
(LAB_CASSANDRA_NODES=3): the data contract the compose profile and lesson 10 build on."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsupport.config import LabConfig
from labsupport.errors import LabError
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
