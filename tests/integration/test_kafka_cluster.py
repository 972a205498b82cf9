"""The three-broker KRaft cluster (LAB_KAFKA_BROKERS=3): it starts with every broker
registered, the lab's topics are replicated three times with min.insync.replicas=2, a
broker's kill -9 under acks=all load loses nothing while Prometheus reports
under-replicated partitions (and 0 once it is back), and a second dead broker makes
acks=all writes fail visibly (NotEnoughReplicas) instead of being acknowledged.

Everything runs on a lab of its own: a scratch home sharing the installed jars, every
port moved by PORT_OFFSET, its own Prometheus. The learner's lab (one broker, default
ports) is never touched, and the cluster is stopped and its data deleted at the end.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, NotEnoughReplicasAfterAppendError, NotEnoughReplicasError

from labsupport import stack
from labsupport.config import LabConfig
from labsupport.ingest import topics
from labsupport.lessons.replication import seen_down
from labsupport.observe import prom
from labsupport.stack.services.kafka import running_kafka
from labsupport.stack import procs, scratch, services
from labsupport.waits import wait_for

#: defaults + 23000 (brokers 32092/32094/32096, Prometheus 32090): clear of a running lab,
#: of test_lifecycle's +21000 and below the kernel's ephemeral range (32768+)
PORT_OFFSET = 23000
BROKERS = 3
URP = 'sum(kafka_server_replicamanager_underreplicatedpartitions{job="kafka"})'
URP_SERIES = 'count(kafka_server_replicamanager_underreplicatedpartitions{job="kafka"})'
REFUSED = (NotEnoughReplicasError, NotEnoughReplicasAfterAppendError)

logging.getLogger("kafka").setLevel(logging.CRITICAL)  # a dead broker's reconnect noise


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = LabConfig.from_env()
    cfg = scratch.scratch_config(base, tmp_path_factory.mktemp("kafka-cluster"), PORT_OFFSET)
    cfg = cfg.replace(kafka_brokers=BROKERS)
    try:
        started = time.monotonic()
        stack.up(["kafka"], cfg=cfg)
        took = time.monotonic() - started
        stack.up(["prometheus"], cfg=cfg)
        rss = {name: _rss_mib(cfg, name) for name in services.kafka_names(cfg)}
        print(f"\ncluster up in {took:.1f} s; RSS MiB: {rss}")
        yield cfg
    finally:
        stack.down(["kafka", "prometheus"], purge=True, cfg=cfg)


def _rss_mib(cfg: LabConfig, name: str) -> int:
    rec = services.service(name, cfg).record()
    return sum(p.memory_info().rss for p in procs.group_members(rec.pgid)) >> 20


def _replicated_topic(cfg: LabConfig) -> str:
    name = f"cluster-test-{uuid.uuid4().hex[:8]}"
    assert topics.ensure_topic(name, partitions=6, cfg=cfg)
    return name


def _urp(cfg: LabConfig) -> float:
    return prom.scalar(URP, cfg, default=-1)


def _urp_back_to_zero(cfg: LabConfig) -> bool:
    """0 under-replicated partitions, reported by every broker (a dead broker's series
    is simply missing, so the count matters as much as the sum)."""
    return prom.scalar(URP_SERIES, cfg) == BROKERS and _urp(cfg) == 0


class SteadyProducer(threading.Thread):
    """Numbered records with acks=all at a steady pace until stopped; each id's outcome
    (acknowledged or the error) is recorded by the producer's callbacks."""

    def __init__(self, cfg: LabConfig, topic: str, per_second: int = 200):
        super().__init__(daemon=True)
        self.topic, self.interval = topic, 1 / per_second
        self.producer = KafkaProducer(bootstrap_servers=cfg.bootstrap_servers, acks="all", linger_ms=5,
                                      request_timeout_ms=10_000, delivery_timeout_ms=120_000)
        self.sent, self.acked, self.failed = 0, set(), {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            i = self.sent
            f = self.producer.send(self.topic, key=str(i % 50).encode(), value=str(i).encode())
            f.add_callback(lambda _md, i=i: self.acked.add(i))
            f.add_errback(lambda exc, i=i: self.failed.__setitem__(i, repr(exc)))
            self.sent += 1
            self.halt.wait(self.interval)  # pacing the load, not waiting for an outcome

    def finish(self) -> None:
        self.halt.set()
        self.join(timeout=10)
        self.producer.flush(timeout=150)  # every outstanding send ends acked or failed
        self.producer.close()


def _read_all(cfg: LabConfig, topic: str) -> list[int]:
    """Every record of ``topic``, from offset 0 to each partition's end offset now."""
    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        got: list[int] = []

        def drained() -> bool:
            for batch in consumer.poll(timeout_ms=1000).values():
                got.extend(int(r.value) for r in batch)
            return all(consumer.position(tp) >= ends[tp] for tp in parts)

        wait_for(drained, 60, f"reading {sum(ends.values())} records of {topic} back")
        return got
    finally:
        consumer.close()


def test_the_cluster_registers_every_broker_and_replicates_the_labs_topics(cluster):
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    try:
        assert {b["broker_id"] for b in admin.describe_cluster()["brokers"]} == {1, 2, 3}
        topic = _replicated_topic(cluster)
        # a new topic's metadata reaches every broker a moment after it is created
        meta = wait_for(lambda: next((t for t in admin.describe_topics([topic]) if len(t["partitions"]) == 6), None),
                        30, f"metadata of {topic}'s 6 partitions")
        assert all(sorted(p["replica_nodes"]) == sorted(p["isr_nodes"]) == [1, 2, 3] for p in meta["partitions"])
        assert {p["leader_id"] for p in meta["partitions"]} == {1, 2, 3}  # leadership spread
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, ["min.insync.replicas"])])
        assert res["topic"][topic]["min.insync.replicas"]["value"] == "2"
    finally:
        admin.close()
    assert topics.topic_configs(topic, cluster) == topics.REPLAY_CONFIGS
    config = services.service("kafka-2", cluster).properties_file.read_text()
    assert "min.insync.replicas=2" not in config  # a topic setting, not a broker default
    st = stack.status(cfg=cluster)
    assert [n for n in st if n.startswith("kafka")] == ["kafka-controller", "kafka-1", "kafka-2", "kafka-3"]
    assert all(st[n]["healthy"] for n in st if n.startswith("kafka"))
    targets = prom.query('up{job="kafka"}', cluster)
    assert {t["metric"]["service"]: t["value"][1] for t in targets} == {
        "kafka-controller": "1", "kafka-1": "1", "kafka-2": "1", "kafka-3": "1"}


def test_a_killed_broker_loses_no_acknowledged_write_and_shows_as_under_replicated(cluster):
    topic = _replicated_topic(cluster)
    wait_for(lambda: _urp_back_to_zero(cluster), 60, "a healthy cluster before the kill")
    load = SteadyProducer(cluster, topic)
    load.start()
    try:
        wait_for(lambda: len(load.acked) >= 500, 60, "500 acknowledged writes before the kill")
        assert stack.kill("kafka-2", cfg=cluster)
        killed_at = len(load.acked)
        # both at once: on a busy machine a follower can fall out of the ISR under load
        # before the kill, so URP > 0 alone can be seen before Prometheus's next scrape
        # of kafka-2 has failed
        urp = wait_for(lambda: seen_down("kafka-2", cluster) and _urp(cluster) > 0 and _urp(cluster),
                       90, "under-replicated partitions in Prometheus while it scrapes kafka-2 as down")
        wait_for(lambda: len(load.acked) >= killed_at + 1000, 60, "1000 more writes acknowledged while down")
        stack.up(["kafka-2"], cfg=cluster)
        wait_for(lambda: _urp_back_to_zero(cluster), 120, "0 under-replicated partitions once kafka-2 is back")
    finally:
        load.finish()
        stack.up(["kafka"], cfg=cluster)  # whatever a failure left down
    read = _read_all(cluster, topic)
    lost = load.acked - set(read)
    assert load.failed == {}, f"{len(load.failed)} writes failed with one broker down: {list(load.failed.values())[:3]}"
    assert len(load.acked) == load.sent
    assert not lost, f"{len(lost)} acknowledged writes missing after the kill, e.g. {sorted(lost)[:10]}"
    assert set(read) == set(range(load.sent))
    print(f"\nURP while kafka-2 was down: {urp:g}; {load.sent} sent, all acknowledged, "
          f"{len(read) - len(set(read))} duplicates, 0 lost")


def test_with_two_brokers_down_acks_all_writes_are_refused_not_lost(cluster):
    topic = _replicated_topic(cluster)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all", retries=0,
                             enable_idempotence=False, request_timeout_ms=5000, max_block_ms=10_000)
    accepted: list[int] = []

    def outcome(partition: int) -> KafkaError | None:
        """The send's error, or None; an acknowledgement is recorded (it must not happen)."""
        try:
            producer.send(topic, value=b"below-min-isr", partition=partition).get(timeout=15)
        except KafkaError as exc:
            return exc
        accepted.append(partition)
        return None

    def refused() -> KafkaError | None:
        # until the controller fences the dead brokers (4 s) a write waits for their
        # replicas and times out; then the ISR is {1} and the leader refuses outright
        error = outcome(0)
        return error if isinstance(error, REFUSED) else None

    try:
        for name in ("kafka-2", "kafka-3"):
            assert stack.kill(name, cfg=cluster)
        first = wait_for(refused, 90, "an acks=all write refused below min.insync.replicas")
        errors = {p: outcome(p) for p in range(6)}
        assert all(isinstance(e, REFUSED) for e in errors.values()), errors
        assert accepted == [], f"acks=all writes acknowledged with one in-sync replica: partitions {accepted}"
        print(f"\nrefused: {type(first).__name__} on every partition")
    finally:
        producer.close()
        stack.up(["kafka"], cfg=cluster)
    wait_for(lambda: _urp_back_to_zero(cluster), 120, "0 under-replicated partitions with both brokers back")
    ok = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all")
    try:
        ok.send(topic, value=b"after").get(timeout=30)  # writable again
    finally:
        ok.close()


def test_kafka_names_the_whole_cluster_for_every_verb(cluster):
    members = services.kafka_names(cluster)
    assert services.service("kafka", cluster).running()
    groups = [services.service(n, cluster).record().pgid for n in members]
    assert stack.kill("kafka", cfg=cluster)
    assert not any(services.service(n, cluster).running() for n in members)
    assert all(procs.group_members(g) == [] for g in groups)
    stack.up(["kafka"], cfg=cluster)
    assert all(services.service(n, cluster).healthy() for n in members)


def _lab(cfg: LabConfig, brokers: int, *args: str) -> subprocess.CompletedProcess:
    """The `lab` command in a terminal whose ``LAB_KAFKA_BROKERS`` is ``brokers``, on this
    module's scratch lab (its home and ports)."""
    env = {k: v for k, v in cfg.to_env().items() if k != "LAB_KAFKA_BOOTSTRAP"}  # derived from the layout
    env.update(LAB_KAFKA_BROKERS=str(brokers), PATH=os.environ["PATH"])
    out = subprocess.run([sys.executable, "-m", "labsupport", *args], env=env, capture_output=True, text=True,
                         timeout=600)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def _scraped_up(cfg: LabConfig) -> set[str]:
    """The Kafka services Prometheus scrapes now (its active targets), each one up; an old
    layout's `up` series lingers in queries until marked stale, the target list does not."""
    import httpx

    active = httpx.get(f"{cfg.prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    kafka = [t for t in active if t["labels"]["job"] == "kafka"]
    assert all(t["health"] == "up" for t in kafka), kafka
    return {t["labels"]["service"] for t in kafka}


def test_the_cli_switches_layouts_both_ways_with_prometheus_running(cluster):
    """What lesson 09's `use_kafka_brokers` does, from a terminal: `lab status` and `lab down`
    name the layout that runs (a cluster missing its last broker is still 3 brokers, not
    2), and `lab up` on the other layout, with Prometheus running, puts Prometheus on the
    new targets (it used to wait 180 s for targets it was never told about)."""
    one = cluster.replace(kafka_brokers=1)
    assert services.service("prometheus", cluster).running()
    assert stack.kill("kafka-3", cfg=cluster)

    shown = _lab(cluster, 1, "status")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line for line in shown.stdout.splitlines() if line.startswith("kafka")}
    assert "kafka" not in rows, f"the one-broker row is shown beside the cluster that runs:\n{shown.stdout}"
    assert {"kafka-controller", "kafka-1", "kafka-2", "kafka-3"} <= rows.keys(), shown.stdout
    assert "LAB_KAFKA_BROKERS=3" in shown.stdout

    stopped = _lab(cluster, 1, "down", "kafka")
    assert stopped.returncode == 0, stopped.stderr
    assert "LAB_KAFKA_BROKERS=3" in stopped.stdout and "LAB_KAFKA_BROKERS=2" not in stopped.stdout, stopped.stdout
    assert running_kafka(cluster) == []

    # there and back: Prometheus named among the services (its start finds it running and
    # reloads it), then `lab up kafka` alone (the up reloads the running Prometheus after)
    for cfg, args, wanted in ((one, ("up", "kafka", "prometheus"), {"kafka"}),
                              (cluster, ("up", "kafka"), {"kafka-controller", "kafka-1", "kafka-2", "kafka-3"})):
        started = _lab(cfg, cfg.kafka_brokers, *args)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        assert "prometheus: reloaded" in started.stdout, started.stdout
        assert _scraped_up(cfg) == wanted
        if cfg is one:
            assert _lab(one, 1, "down", "kafka").returncode == 0
