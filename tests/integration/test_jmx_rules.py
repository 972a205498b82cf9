"""The JMX exporter's naming rule, read from the exporter itself: its agent in a small
JVM whose MBeans are named and shaped like a Kafka broker's (a meter's cumulative
``Count``, a gauge's ``Value``), scraped once per rules file. No YAML is read here:
the names are the ones Prometheus would get.

The shipped rules export the ``_total`` names the dashboard queries; the seed's lumped
rules (lesson 07) export the very same meters without it; and a rule's own ``_total``
is dropped before the type decides (what exercise 07.1 computes)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from labsupport import java
from labsupport.config import get_config
from labsupport.stack.compose import agent_jar
from labsupport.waits import wait_for

BEANS = Path(__file__).parent / "jmx" / "KafkaShapedBeans.java"
JMX = get_config().paths.stack_dir / "jmx"
METERS = ["kafka_server_brokertopicmetrics_messagesin", "kafka_server_brokertopicmetrics_bytesin",
          "kafka_server_brokertopicmetrics_bytesout"]
GAUGES = ["kafka_server_replicamanager_underreplicatedpartitions", "kafka_server_replicamanager_partitioncount",
          "kafka_controller_kafkacontroller_activecontrollercount"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exported(rules: Path, prefix: str = "kafka_") -> dict[str, set[tuple]]:
    """Every sample named ``prefix…`` the agent exports with ``rules`` for the
    Kafka-shaped beans: metric name → the label sets it has."""
    port = _free_port()
    cmd = [java.java_bin(), f"-javaagent:{agent_jar(get_config())}=127.0.0.1:{port}:{rules}", "-Xmx64m", str(BEANS)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stdout.read()

        def scrape():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                return None

        text = wait_for(scrape, 30, "the JMX exporter agent's /metrics")
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    from prometheus_client.parser import text_string_to_metric_families

    names: dict[str, set[tuple]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(prefix):
                names.setdefault(sample.name, set()).add(tuple(sorted(sample.labels.items())))
    return names


@pytest.fixture(scope="module")
def shipped():
    return exported(JMX / "kafka.yml")


def test_shipped_kafka_rules_export_counters_with_total_and_gauges_without(shipped):
    names = shipped
    for meter in METERS:
        assert names[f"{meter}_total"] == {(), (("topic", "events"),)}, names
        assert meter not in names
    for gauge in GAUGES:
        assert gauge in names and f"{gauge}_total" not in names, names


def test_lumped_kafka_rules_export_the_meters_without_total(shipped):
    """The seed's bug: the same beans, the meters under the gauges' one GAUGE rule."""
    lumped = exported(JMX / "kafka.lumped.yml")
    for meter in METERS:
        assert f"{meter}_total" not in lumped, lumped
        assert lumped[meter] == shipped[f"{meter}_total"], (meter, lumped)  # same series, other name
    for gauge in GAUGES:  # the gauges read the same under either rules file
        assert lumped[gauge] == shipped[gauge]


@pytest.mark.parametrize("rule_name, kind, name", [
    ("lab_messagesin", "COUNTER", "lab_messagesin_total"),
    ("lab_messagesin_total", "COUNTER", "lab_messagesin_total"),
    ("lab_messagesin", "GAUGE", "lab_messagesin"),
    ("lab_messagesin_total", "GAUGE", "lab_messagesin"),
])
def test_a_rules_own_total_is_dropped_before_the_type_decides(tmp_path, rule_name, kind, name):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        'includeObjectNames: ["kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec"]\n'
        "rules:\n"
        "  - pattern: 'kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec><>Count'\n"
        f"    name: {rule_name}\n    type: {kind}\n")
    assert set(exported(rules, prefix="lab_")) == {name}
