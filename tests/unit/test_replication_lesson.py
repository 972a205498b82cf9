"""Lesson 09's pure logic: which layout running Kafka processes belong to, and the
capacity arithmetic on a `lab bench stream` result."""

from __future__ import annotations

import pytest

from labsupport.lessons.replication import brokers_of, measured_capacity, predicted_capacity, us_per_event


def test_the_layout_is_read_from_the_running_process_names():
    assert brokers_of([]) is None
    assert brokers_of(["kafka"]) == 1
    assert brokers_of(["kafka-1", "kafka-2", "kafka-3", "kafka-controller"]) == 3
    # a cluster with a dead broker (a lesson stopped midway) is still a cluster
    assert brokers_of(["kafka-1", "kafka-controller"]) == 2
    assert brokers_of(["kafka-controller"]) == 2


def _rung(rate, throughput, sustained, per_1k):
    return {"target_rate": rate, "throughput": throughput, "sustained": sustained,
            "cpu": {"ms_per_1k_events": per_1k}}


def test_us_per_event_sums_every_process_but_the_excluded():
    rung = _rung(1000, 1000, True, {"spark jvm": 120, "stream driver (python)": 80, "kafka-1": 30,
                                    "load generator": 50, "cassandra": None})
    assert us_per_event(rung) == 280
    assert us_per_event(rung, exclude=("load generator",)) == 230


def test_predicted_capacity_is_cores_times_a_million_over_us_per_event():
    assert predicted_capacity(2, 250) == 8000
    assert predicted_capacity(4, 250) == 2 * predicted_capacity(2, 250)
    with pytest.raises(ValueError):
        predicted_capacity(2, 0)


def test_measured_capacity_is_the_top_rung_and_says_whether_it_was_reached():
    ladder = {"rungs": [_rung(1000, 990, True, {}), _rung(6000, 3200, False, {})]}
    assert measured_capacity(ladder) == (3200.0, True)
    easy = {"rungs": [_rung(6000, 5900, True, {}), _rung(1000, 990, True, {})]}
    assert measured_capacity(easy) == (5900.0, False)  # a lower bound only


def test_a_cluster_missing_its_last_brokers_is_named_by_its_recorded_layout(tmp_path):
    """After lesson 09 kills kafka-2 and kafka-3, the running nodes are the controller and
    kafka-1: the highest live id would say "2 brokers"; the layout the nodes recorded as
    they started says 3, and `lab down`/`lab status` name that."""
    from labsupport.config import LabConfig
    from labsupport.stack.services.kafka import record_layout

    cfg = LabConfig.from_env({}, home=tmp_path, kafka_brokers=3)
    assert brokers_of(["kafka-1", "kafka-controller"], cfg) == 2  # nothing recorded yet: the guess
    record_layout(cfg)
    assert brokers_of(["kafka-1", "kafka-controller"], cfg) == 3
    assert brokers_of(["kafka"], cfg) == 1
