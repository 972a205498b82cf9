"""Kafka's processes, ports and rendered server.properties for one broker and for a
cluster (LAB_KAFKA_BROKERS=3); the Prometheus targets and service names that follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsupport.config import LabConfig
from labsupport.errors import UnknownService
from labsupport.ingest.topics import replication
from labsupport.stack import services
from labsupport.stack.services.kafka import KafkaCluster, kafka_nodes, quorum_voters, render_properties
from labsupport.stack.services.prometheus import render_config

SINGLE = LabConfig(home=Path("/srv/lab"))
CLUSTER = SINGLE.replace(kafka_brokers=3)


def _props(cfg: LabConfig, name: str) -> dict[str, str]:
    """The rendered file of node ``name`` as a dict, failing on a key set twice."""
    node = next(n for n in kafka_nodes(cfg) if n.name == name)
    base = (cfg.paths.stack_dir / "kafka" / "server.properties").read_text()
    text = render_properties(base, cfg, node, cfg.paths.data(name))
    pairs = [ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.lstrip().startswith("#")]
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"{name}: keys set twice: {sorted(k for k in keys if keys.count(k) > 1)}"
    return dict(pairs)


def test_the_default_is_one_combined_node_on_the_configured_ports():
    (node,) = kafka_nodes(SINGLE)
    assert (node.name, node.node_id, node.roles) == ("kafka", 1, "broker,controller")
    assert (node.port, node.controller_port, node.exporter_port) == (9092, 9093, 7071)
    p = _props(SINGLE, "kafka")
    assert p["process.roles"] == "broker,controller" and p["node.id"] == "1"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert p["offsets.topic.replication.factor"] == "1"
    assert p["log.dirs"] == "/srv/lab/data/kafka/logs"
    assert SINGLE.bootstrap_servers == "127.0.0.1:9092"
    assert services.names(SINGLE)[0] == "kafka" and services.expand(["kafka"], SINGLE) == ["kafka"]
    assert replication(SINGLE) == (1, 1)


def test_a_cluster_is_one_controller_and_a_broker_per_node_id_on_distinct_ports():
    nodes = kafka_nodes(CLUSTER)
    assert [(n.name, n.node_id, n.roles) for n in nodes] == [
        ("kafka-controller", 0, "controller"), ("kafka-1", 1, "broker"), ("kafka-2", 2, "broker"),
        ("kafka-3", 3, "broker")]
    assert [n.port for n in nodes[1:]] == [9092, 9094, 9096]
    assert [n.exporter_port for n in nodes] == [7070, 7071, 7081, 7091]
    ports = [p for n in nodes for p in (n.port, n.controller_port, n.exporter_port) if p]
    assert len(ports) == len(set(ports))
    other = {getattr(CLUSTER, f) for f in ("cassandra_port", "cassandra_storage_port", "cassandra_jmx_port",
                                           "cassandra_exporter_port", "prometheus_port", "events_api_port")}
    assert not other & set(ports)
    assert CLUSTER.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert quorum_voters(CLUSTER) == "0@127.0.0.1:9093"


def test_cluster_nodes_render_their_role_listeners_and_replication():
    ctl = _props(CLUSTER, "kafka-controller")
    assert ctl["process.roles"] == "controller" and ctl["node.id"] == "0"
    assert ctl["listeners"] == "CONTROLLER://127.0.0.1:9093"
    assert "advertised.listeners" not in ctl and "inter.broker.listener.name" not in ctl
    for n, port in ((1, 9092), (2, 9094), (3, 9096)):
        b = _props(CLUSTER, f"kafka-{n}")
        assert b["process.roles"] == "broker" and b["node.id"] == str(n)
        assert b["listeners"] == b["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert b["controller.quorum.voters"] == "0@127.0.0.1:9093"
        assert b["log.dirs"] == f"/srv/lab/data/kafka-{n}/logs"
        assert b["offsets.topic.replication.factor"] == b["default.replication.factor"] == "3"
        assert b["transaction.state.log.min.isr"] == "2"
    assert replication(CLUSTER) == (3, 2)
    assert replication(SINGLE.replace(kafka_brokers=2)) == (2, 1)
    assert replication(SINGLE.replace(kafka_brokers=5)) == (3, 2)


def test_moved_ports_move_every_node():
    moved = CLUSTER.replace(kafka_port=29092, kafka_controller_port=29093, kafka_exporter_port=27071,
                            kafka_controller_exporter_port=27070)
    assert [(n.port, n.controller_port, n.exporter_port) for n in kafka_nodes(moved)] == [
        (None, 29093, 27070), (29092, None, 27071), (29094, None, 27081), (29096, None, 27091)]


def test_kafka_names_every_kafka_process_and_each_broker_is_a_service():
    assert services.names(CLUSTER)[:4] == ["kafka-controller", "kafka-1", "kafka-2", "kafka-3"]
    assert "kafka" not in services.names(CLUSTER)
    assert services.expand(["cassandra", "kafka"], CLUSTER) == [
        "kafka-controller", "kafka-1", "kafka-2", "kafka-3", "cassandra"]
    assert services.expand(["kafka-2"], CLUSTER) == ["kafka-2"]
    assert services.service("kafka-2", CLUSTER).node.node_id == 2
    assert services.service("kafka-2", CLUSTER).ports() == {"kafka_port": 9094, "kafka_exporter_port": 7081}
    assert isinstance(services.service("kafka", CLUSTER), KafkaCluster)
    with pytest.raises(UnknownService, match="kafka-controller, kafka-1"):
        services.service("kafka-4", CLUSTER)
    with pytest.raises(UnknownService):
        services.service("kafka-2", SINGLE)


def test_prometheus_scrapes_every_kafka_process_in_one_job():
    def kafka_job(cfg):
        return next(j for j in render_config(cfg)["scrape_configs"] if j["job_name"] == "kafka")

    assert kafka_job(SINGLE)["static_configs"] == [{"targets": ["127.0.0.1:7071"], "labels": {"service": "kafka"}}]
    assert kafka_job(CLUSTER)["static_configs"] == [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}}
        for name, port in (("kafka-controller", 7070), ("kafka-1", 7071), ("kafka-2", 7081), ("kafka-3", 7091))]


@pytest.mark.parametrize("running,asked", [("kafka", CLUSTER), ("kafka-2", SINGLE)])
def test_starting_the_other_layout_names_the_running_kafka_and_how_to_stop_it(tmp_path, running, asked):
    import json
    import os
    from dataclasses import asdict

    import psutil

    from labsupport.errors import ServiceFailed
    from labsupport.stack import procs

    cfg = asked.replace(home=tmp_path)
    me = psutil.Process()  # a live process the record really describes
    pidfile = cfg.paths.pidfile(running)
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text(json.dumps(asdict(procs.ProcRecord(me.pid, os.getpgid(me.pid), me.create_time(), me.cmdline()))))
    first = services.names(cfg)[0]
    with pytest.raises(ServiceFailed, match=f"running as .*\\({running}\\)") as err:
        services.service(first, cfg).check_ports_free()
    assert "lab down kafka" in err.value.remedy


def test_status_shows_and_down_stops_the_kafka_layout_that_runs_when_it_is_not_the_shells(tmp_path):
    """Lesson 09's cluster seen from a shell that says one broker, after the lesson killed
    kafka-3: `lab status` shows the cluster's rows in place of a `kafka stopped` one, and
    names the layout the nodes recorded (3), not one guessed from the highest live broker
    (2); `lab down` stops it, saying which layout it was."""
    from labsupport.stack import control, procs
    from labsupport.stack.services.kafka import record_layout

    cfg = SINGLE.replace(home=tmp_path)
    record_layout(cfg.replace(kafka_brokers=3))
    pidfile = cfg.paths.pidfile("kafka-2")
    rec = procs.spawn(["sleep", "600"], pidfile, cfg.paths.log("kafka-2"))
    try:
        st = control.status(cfg=cfg)
        assert "kafka" not in st
        assert list(st)[:4] == ["kafka-controller", "kafka-1", "kafka-2", "kafka-3"]  # where `kafka` was
        assert st["kafka-2"]["state"] == "running" and st["kafka-2"]["pid"] == rec.pid
        assert st["kafka-3"]["state"] == "stopped"
        assert st["kafka-2"]["extra"] == {"layout": "LAB_KAFKA_BROKERS=3 (this shell says 1)"}
        assert "kafka-2" not in control.status(["kafka"], cfg=cfg)  # only what was asked for

        said: list[str] = []
        control.down(cfg=cfg, progress=said.append)
        assert not rec.alive()
        assert any(line.startswith("kafka-2: stopped (the Kafka layout of LAB_KAFKA_BROKERS=3") for line in said)
        assert "kafka-2" not in control.status(cfg=cfg)
    finally:
        procs.kill(pidfile)


def test_prometheus_waiting_for_targets_names_their_services_not_a_purge(tmp_path):
    """Targets that never come up are services' exporters: purging Prometheus's data
    would lose its history and change nothing."""
    from labsupport.stack.services.prometheus import PrometheusService

    failure = PrometheusService(SINGLE.replace(home=tmp_path))._failure(
        "not ready after 180s (targets not up: kafka (kafka-1))")
    assert "purge" not in failure.remedy.replace("no purge needed", "")
    assert "lab logs <service>" in failure.remedy and "kafka-1" in failure.cause
    other = PrometheusService(SINGLE.replace(home=tmp_path))._failure("exited")
    assert "--purge prometheus" in other.remedy  # a crash at start may be its data
