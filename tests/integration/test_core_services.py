"""Issue 2 acceptance on the real local stack: Kafka, Cassandra, Prometheus."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from labsupport.config import get_config
from labsupport.waits import wait_for


def _new_topic(partitions: int = 3) -> str:
    cfg = get_config()
    name = f"test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def _produce(topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=get_config().bootstrap_servers, acks="all", linger_ms=5)
    futures = [producer.send(topic, key=str(i % 7).encode(), value=v) for i, v in enumerate(values)]
    producer.flush()
    for f in futures:
        f.get(timeout=10)  # every send's outcome is checked after the one flush
    producer.close()


def _consume_all(topic: str, expected: int, timeout: float = 60) -> list[bytes]:
    consumer = KafkaConsumer(topic, bootstrap_servers=get_config().bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=2000)
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                got.extend(r.value for r in batch)
    finally:
        consumer.close()
    return got


def test_kafka_produce_consume_round_trip(lab_stack):
    topic = _new_topic()
    values = [f"event-{i}".encode() for i in range(500)]
    _produce(topic, values)
    assert sorted(_consume_all(topic, len(values))) == sorted(values)


@pytest.fixture
def lab_test_keyspace(lab_stack):
    """A session on the real Cassandra with the scratch keyspace ``lab_test``."""
    from cassandra.cluster import Cluster

    cfg = get_config()
    cluster = Cluster(cfg.cassandra_contact_points, port=cfg.cassandra_port)
    try:
        s = cluster.connect()
        s.execute("CREATE KEYSPACE IF NOT EXISTS lab_test WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        yield s
    finally:
        cluster.shutdown()


def test_cassandra_create_insert_select(lab_test_keyspace):
    s = lab_test_keyspace
    table = f"lab_test.t_{uuid.uuid4().hex[:8]}"
    s.execute(f"CREATE TABLE {table} (k text, ts int, v double, PRIMARY KEY ((k), ts))")
    insert = s.prepare(f"INSERT INTO {table} (k, ts, v) VALUES (?, ?, ?)")
    for i in range(100):
        s.execute(insert, ("a", i, i * 1.5))
    rows = list(s.execute(f"SELECT ts, v FROM {table} WHERE k = 'a'"))
    assert len(rows) == 100 and rows[10].v == 15.0


def _prom_query(expr: str) -> list[dict]:
    r = httpx.get(f"{get_config().prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]


def test_prometheus_has_kafka_broker_topic_metrics(lab_stack):
    topic = _new_topic()
    _produce(topic, [b"x"] * 200)
    expr = f'kafka_server_brokertopicmetrics_messagesin_total{{job="kafka",topic="{topic}"}}'
    series = wait_for(lambda: [s for s in _prom_query(expr) if float(s["value"][1]) >= 200], 60,
                       f"{expr} >= 200 in Prometheus")
    assert series[0]["metric"]["service"] == "kafka"


def test_prometheus_has_cassandra_write_latency(lab_test_keyspace):
    s = lab_test_keyspace
    s.execute("CREATE TABLE IF NOT EXISTS lab_test.latency (k int PRIMARY KEY, v text)")
    insert = s.prepare("INSERT INTO lab_test.latency (k, v) VALUES (?, ?)")
    for i in range(300):
        s.execute(insert, (i, "v"))
    expr = 'cassandra_clientrequest_latency_microseconds{job="cassandra",operation="Write",quantile="0.99"}'
    wait_for(lambda: [x for x in _prom_query(expr) if float(x["value"][1]) > 0], 60, f"{expr} > 0")
    # the counter must account for at least the writes just made (next scrape)
    writes = 'cassandra_clientrequest_requests_total{job="cassandra",operation="Write"}'
    wait_for(lambda: [x for x in _prom_query(writes) if float(x["value"][1]) >= 300], 60, f"{writes} >= 300")
    # the replica side: this table's own local writes, and no system table's (kept out of the scrape)
    table = 'cassandra_table_writes_total{job="cassandra",keyspace="lab_test",table="latency"}'
    wait_for(lambda: [x for x in _prom_query(table) if float(x["value"][1]) >= 300], 60, f"{table} >= 300")
    assert _prom_query('cassandra_table_writes_total{job="cassandra",keyspace=~"system.*"}') == []
