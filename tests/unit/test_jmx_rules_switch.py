"""The JMX rules switch (LAB_KAFKA_JMX_RULES, LAB_CASSANDRA_JMX_RULES): the file named
reaches the exporter agent of every Kafka process, of Cassandra and of the compose
containers; a name that is no rules file of stack/jmx is refused in one line; and the
rules a running Kafka uses are read back from its command line (lesson 07's restore)."""

from __future__ import annotations

import pytest

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError
from labsupport.lessons.jmx_rules import _agent_rules
from labsupport.stack import services
from tests.unit.test_compose import jvm_of, lab_config, resolved


def _agents(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("-javaagent:") and "jmx_prometheus_javaagent" in a]


def test_defaults_are_the_shipped_rules():
    cfg = LabConfig()
    assert (cfg.kafka_jmx_rules, cfg.cassandra_jmx_rules) == ("kafka.yml", "cassandra.yml")
    assert LabConfig.from_env({"LAB_KAFKA_JMX_RULES": "kafka.lumped.yml"}).kafka_jmx_rules == "kafka.lumped.yml"


@pytest.mark.parametrize("brokers", [1, 3])
def test_every_kafka_process_runs_the_chosen_rules(brokers):
    cfg = get_config().replace(kafka_brokers=brokers, kafka_jmx_rules="kafka.lumped.yml")
    names = services.expand(["kafka"], cfg)
    assert len(names) == (1 if brokers == 1 else brokers + 1)
    for name in names:
        [agent] = _agents(services.service(name, cfg).argv())
        assert agent.endswith(f":{cfg.paths.stack_dir / 'jmx' / 'kafka.lumped.yml'}"), agent
        assert _agent_rules(services.service(name, cfg).argv()) == "kafka.lumped.yml"
    assert _agent_rules(services.service(names[0], cfg.replace(kafka_jmx_rules="kafka.yml")).argv()) == "kafka.yml"


def test_cassandra_runs_the_chosen_rules():
    cfg = get_config()
    [agent] = _agents(services.service("cassandra", cfg).argv())
    assert agent.endswith(f":{cfg.paths.stack_dir / 'jmx' / 'cassandra.yml'}")
    # any file of stack/jmx may be chosen, e.g. Kafka's (nothing would match: empty, not an error)
    [agent] = _agents(services.service("cassandra", cfg.replace(cassandra_jmx_rules="kafka.yml")).argv())
    assert agent.endswith(f":{cfg.paths.stack_dir / 'jmx' / 'kafka.yml'}")


@pytest.mark.parametrize("name", ["kafka.lumpy.yml", "../kafka/server.properties", "/etc/passwd", ""])
def test_a_name_that_is_no_rules_file_is_refused_with_the_choices(name):
    cfg = get_config().replace(kafka_jmx_rules=name)
    with pytest.raises(LabError) as err:
        services.service("kafka", cfg).argv()
    assert f"LAB_KAFKA_JMX_RULES={name!r}" in err.value.cause
    assert "kafka.yml" in err.value.remedy and "kafka.lumped.yml" in err.value.remedy


def test_compose_containers_run_the_chosen_rules(tmp_path):
    cfg = lab_config(tmp_path, LAB_KAFKA_JMX_RULES="kafka.lumped.yml", LAB_CASSANDRA_JMX_RULES="cassandra.yml")
    spec = resolved(cfg)
    assert ":/opt/lab/jmx/kafka.lumped.yml\"" in jvm_of(spec["services"]["kafka"])
    assert ":/opt/lab/jmx/cassandra.yml " in jvm_of(spec["services"]["cassandra"])


def test_compose_refuses_a_rules_file_the_containers_cannot_see(tmp_path):
    from labsupport.stack import compose

    cfg = lab_config(tmp_path, LAB_CASSANDRA_JMX_RULES="/tmp/mine.yml")
    with pytest.raises(LabError, match="LAB_CASSANDRA_JMX_RULES"):
        compose.render(cfg)
