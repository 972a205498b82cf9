"""Crash and shutdown semantics: kill -9 keeps data; down leaves no process behind."""

from __future__ import annotations

import socket

import psutil
import pytest

from labsupport.stack import services
from labsupport.config import get_config
from tests.integration.test_core_services import _consume_all, _new_topic, _produce


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((get_config().host, port)) == 0


def _lab_processes() -> list[psutil.Process]:
    """Every process started with a config file the lab rendered (services only:
    the test runner itself also lives in the lab home's venv)."""
    run_dir = str(get_config().paths.home / "run")
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(run_dir in arg for arg in p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


def test_kill_kafka_then_up_keeps_topic_and_data(lab_stack):
    cfg = get_config()
    topic = _new_topic()
    values = [f"durable-{i}".encode() for i in range(300)]
    _produce(topic, values)

    pid = lab_stack.status("kafka")["kafka"]["pid"]
    assert lab_stack.kill("kafka")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not _port_open(cfg.kafka_port)
    assert lab_stack.status("kafka")["kafka"]["state"] != "running"

    lab_stack.up(["kafka"])
    assert lab_stack.status("kafka")["kafka"]["healthy"]
    assert sorted(_consume_all(topic, len(values))) == sorted(values)


@pytest.mark.stack_teardown
def test_down_leaves_no_process_behind(lab_stack):
    cfg = get_config()
    running = {n: s["pid"] for n, s in lab_stack.status().items() if s["state"] == "running"}
    assert {"kafka", "cassandra", "prometheus"} <= set(running)
    lab_stack.down()
    assert _lab_processes() == []
    for name in running:
        svc = services.service(name, cfg)
        assert svc.state() == "stopped"
        for port in svc.ports().values():
            assert not _port_open(port), f"{name} still listens on {port}"
