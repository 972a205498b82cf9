"""The compose stack, really running: `.github/workflows/compose.yml` runs this on a
Docker runner after `./lab up --backend compose` (machines without a Docker engine
cannot: this directory is not in pytest's testpaths).

Run with ``LAB_BACKEND=compose``. Every check polls with a deadline (`wait_for`): a
container still warming up is waited for, one that never answers fails the run."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from labsupport import events, schema
from labsupport.config import get_config
from labsupport.ingest import producers, topics
from labsupport.observe import dashboards
from labsupport.stack import compose, services
from labsupport.stack.services.cassandra import cassandra_nodes
from labsupport.waits import wait_for


@pytest.fixture(scope="module", autouse=True)
def compose_backend():
    cfg = get_config()
    assert cfg.backend == "compose", "run with LAB_BACKEND=compose against `./lab up --backend compose`"
    for name in compose.active_services(cfg):  # the Kafka layout's profile (LAB_KAFKA_BROKERS) and the rest
        assert compose.ComposeService(name, cfg).running(), f"{name}: its container is not running"
    return cfg


def test_the_lab_drives_containers_not_processes(compose_backend):
    status = services.service(services.kafka_names(compose_backend)[-1], compose_backend).status()
    assert status["state"] == "running" and status["pid"] is None and status["healthy"]


def test_produce_and_consume(compose_backend):
    topic = f"compose-smoke-{uuid.uuid4().hex[:8]}"
    topics.ensure_topic(topic, partitions=3, cfg=compose_backend)
    try:
        start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=2)
        sent = list(events.events_between(start, start + timedelta(seconds=10)))
        producers.publish(sent, topic, cfg=compose_backend)
        got = list(topics.replay(topic, cfg=compose_backend))
        assert sorted(e["event_id"] for e in got) == sorted(e["event_id"] for e in sent) and sent
    finally:
        topics.delete_topic(topic, cfg=compose_backend)


def test_cql_round_trip(compose_backend):
    cluster, session = schema.connect(compose_backend)
    try:
        session.execute("CREATE KEYSPACE IF NOT EXISTS compose_smoke WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE IF NOT EXISTS compose_smoke.kv (k text PRIMARY KEY, v int)")
        key = uuid.uuid4().hex
        session.execute("INSERT INTO compose_smoke.kv (k, v) VALUES (%s, %s)", (key, 42))
        assert session.execute("SELECT v FROM compose_smoke.kv WHERE k = %s", (key,)).one().v == 42
        # the node runs the lab's cassandra.yaml, not the image's defaults
        assert session.execute("SELECT cluster_name FROM system.local").one().cluster_name == "streamlab"
    finally:
        session.execute("DROP KEYSPACE IF EXISTS compose_smoke")
        cluster.shutdown()


def test_every_cassandra_node_is_in_the_ring_where_the_host_reaches_it(compose_backend):
    """One node: the driver knows that one. The `ring` profile (LAB_CASSANDRA_NODES=3):
    the containers found each other by gossip, and each announces the host address its
    CQL port is published on (the driver connects to what a node announces), all up."""
    wanted = {node.address: True for node in cassandra_nodes(compose_backend)}
    cluster, _ = schema.connect(compose_backend)
    try:
        def hosts():
            seen = {h.endpoint.address: bool(h.is_up) for h in cluster.metadata.all_hosts()}
            return seen if seen == wanted else None

        wait_for(hosts, 120, f"Cassandra nodes {sorted(wanted)} up in the driver's view of the ring", interval=2)
    finally:
        cluster.shutdown()


def test_every_prometheus_target_is_up(pipeline_flowing, compose_backend):
    def down_targets():
        targets = httpx.get(f"{compose_backend.prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        assert targets, "Prometheus has no targets"
        return [t["labels"]["job"] for t in targets if t["health"] != "up"] or "all up"

    assert wait_for(down_targets, 90, "every Prometheus target up", interval=2) == "all up"


def test_grafana_serves_the_dashboard_with_every_panel_query_non_empty(pipeline_flowing, compose_backend):
    grafana = httpx.Client(base_url=compose_backend.grafana, timeout=10)  # anonymous viewer
    for board in dashboards.dashboards():
        served = grafana.get(f"/api/dashboards/uid/{board['uid']}")
        assert served.status_code == 200, f"{board['uid']}: {served.status_code} {served.text[:200]}"
        panels = served.json()["dashboard"]["panels"]
        assert [p["title"] for p in panels] == [p["title"] for p in board["panels"]]
        for panel in panels:
            for target in panel["targets"]:
                def has_data(expr=target["expr"]):
                    r = grafana.post("/api/ds/query", json={
                        "from": "now-5m", "to": "now",
                        "queries": [{"refId": "A", "datasource": {"type": "prometheus", "uid": "prometheus"},
                                     "expr": expr, "range": True, "intervalMs": 5000, "maxDataPoints": 100}]})
                    assert r.status_code == 200, r.text[:300]
                    frames = r.json()["results"]["A"].get("frames", [])
                    return any(f["data"]["values"] and f["data"]["values"][-1] for f in frames)

                wait_for(has_data, 120, f"Grafana data for {panel['title']!r}: {target['expr']}", interval=3)
