from pathlib import Path

import pytest

from labsupport.config import LabConfig
from labsupport.errors import LabError


def test_defaults_are_local_loopback():
    cfg = LabConfig.from_env({})
    assert cfg.bootstrap_servers == "127.0.0.1:9092"
    assert cfg.cassandra_contact_points == ["127.0.0.1"]
    assert cfg.prometheus == "http://127.0.0.1:9090"
    assert cfg.grafana is None  # no Grafana binary for the local backend


def test_ports_and_endpoints_follow_env():
    cfg = LabConfig.from_env({"LAB_KAFKA_PORT": "19092", "LAB_PROMETHEUS_PORT": "19090",
                              "LAB_HOME": "/srv/lab"})
    assert cfg.bootstrap_servers == "127.0.0.1:19092"
    assert cfg.prometheus == "http://127.0.0.1:19090"
    assert cfg.paths.log("kafka") == Path("/srv/lab/logs/kafka.log")


def test_endpoint_overrides_point_at_a_real_cluster():
    cfg = LabConfig.from_env({"LAB_KAFKA_BOOTSTRAP": "b1:9092,b2:9092", "LAB_CASSANDRA_HOSTS": "c1, c2",
                              "LAB_GRAFANA_URL": "http://grafana:3000"})
    assert cfg.bootstrap_servers == "b1:9092,b2:9092"
    assert cfg.cassandra_contact_points == ["c1", "c2"]
    assert cfg.endpoints()["grafana"] == "http://grafana:3000"


def test_compose_backend_has_grafana():
    assert LabConfig.from_env({"LAB_BACKEND": "compose"}).grafana == "http://127.0.0.1:3000"


def test_bad_number_is_one_clear_line():
    with pytest.raises(LabError, match=r"LAB_KAFKA_PORT='ninety' is not a valid int"):
        LabConfig.from_env({"LAB_KAFKA_PORT": "ninety"})


def test_to_env_round_trips_through_a_child_environment(tmp_path):
    """What a child process rebuilds from the environment is the parent's config, even
    for overrides that were never in the parent's environment."""
    from labsupport.config import LabConfig

    cfg = LabConfig.from_env({}, home=tmp_path, kafka_port=19092, prometheus_port=19090, ready_timeout=12.5)
    child = LabConfig.from_env(cfg.to_env())
    assert child.bootstrap_servers == "127.0.0.1:19092" and child.prometheus == "http://127.0.0.1:19090"
    assert child.paths.home == cfg.paths.home and child.ready_timeout == 12.5
    assert child.endpoints() == cfg.endpoints()


def test_child_env_drops_stale_lab_variables(monkeypatch, tmp_path):
    from labsupport.config import LabConfig

    monkeypatch.setenv("LAB_STREAM_TOPIC", "someone-elses")
    monkeypatch.setenv("LAB_KAFKA_PORT", "1")
    env = LabConfig.from_env({}, home=tmp_path).child_env(LAB_STREAM_TOPIC="mine")
    assert env["LAB_STREAM_TOPIC"] == "mine" and env["LAB_KAFKA_PORT"] == "9092"
    from labsupport.config import REPO_ROOT

    assert env["PYTHONPATH"].split(":")[0] == str(REPO_ROOT)
