"""Crash and shutdown semantics, binds and secrets: kill -9 keeps data; down leaves no
process behind; every listener is on 127.0.0.1; Airflow's secrets are owner-only;
a stale pid file is cleaned, never obeyed; one `lab up` at a time starts a service.

Every test here runs on a lab of its own (``scratch_lab``): a scratch home sharing the
installed jars and venvs, every port moved by PORT_OFFSET, and the ``LAB_*`` variables
set for this module so the services' own processes (the stream, the pipeline view)
see the same lab. The learner's lab and any stack already running are never touched.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import stat
import subprocess
import sys
from dataclasses import asdict

import psutil
import pytest

from labsupport import stack
from labsupport.config import REPO_ROOT, LabConfig
from labsupport.errors import ServiceFailed
from labsupport.ingest.airflow_client import passwords_file
from labsupport.stack import procs, scratch, services
from tests.integration.test_core_services import _consume_all, _new_topic, _produce

#: the scratch lab's ports: the defaults + 21000 (kafka 30092, airflow 29080...), clear of
#: a running lab's and below the kernel's ephemeral range (32768+)
PORT_OFFSET = 21000
ALL = services.names()


@pytest.fixture(scope="module", autouse=True)
def scratch_lab(tmp_path_factory):
    cfg = scratch.scratch_config(LabConfig.from_env(), tmp_path_factory.mktemp("lab"), PORT_OFFSET)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in cfg.to_env().items():
            mp.setenv(key, value)
        yield cfg
        stack.down(cfg=cfg)  # whatever a failed test left running; a passing run has stopped all


@pytest.fixture(scope="module")
def whole_stack(scratch_lab, tmp_path_factory):
    """Every service of the scratch lab, really running, optional ones included: the
    hub in a room of one learner (it starts only with a room, as `lab hub` keeps one),
    so its listeners and its processes are checked like the others'."""
    from labsupport.stack.services.hub import Room

    material = tmp_path_factory.mktemp("material")
    services.service("hub", scratch_lab).save_room(Room(learners=["lifecycle"], material=str(material)))
    stack.up(ALL, cfg=scratch_lab)
    return scratch_lab


def _port_open(cfg: LabConfig, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((cfg.host, port)) == 0


def _family(cfg: LabConfig, name: str) -> list[psutil.Process]:
    """Every live process of a running service: its group, and tagged processes that
    moved to a group of their own (Airflow's task runners)."""
    rec = services.service(name, cfg).record()
    assert rec is not None, f"{name} is not running"
    target = procs.Target.of(rec)
    return procs.group_members(rec.pgid) + target.strays


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_kill_kafka_then_up_keeps_topic_and_data(scratch_lab):
    cfg = scratch_lab
    stack.up(["kafka"], cfg=cfg)
    topic = _new_topic()
    values = [f"durable-{i}".encode() for i in range(300)]
    _produce(topic, values)

    pid = stack.status("kafka", cfg)["kafka"]["pid"]
    assert stack.kill("kafka", cfg)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not _port_open(cfg, cfg.kafka_port)
    assert stack.status("kafka", cfg)["kafka"]["state"] != "running"

    stack.up(["kafka"], cfg=cfg)
    assert stack.status("kafka", cfg)["kafka"]["healthy"]
    assert sorted(_consume_all(topic, len(values))) == sorted(values)


def test_a_start_that_fails_readiness_leaves_nothing_behind(scratch_lab, tmp_path):
    """Cassandra cannot answer CQL within 3 s of its JVM starting: the start fails, and
    its process group, pid file and port go with it; the error carries the log tail.
    (A home of its own: the whole stack's Cassandra later starts on clean data.)"""
    cfg = scratch.scratch_config(scratch_lab, tmp_path / "lab", 0).replace(ready_timeout=3)
    svc = services.service("cassandra", cfg)
    said: list[str] = []
    with pytest.raises(ServiceFailed) as err:
        svc.start(said.append)
    assert "cassandra failed to start, not ready after 3s" in str(err.value)
    # the home is new, so whatever the tail shows is this run's own output (how many
    # lines Cassandra prints in 3 s varies: the tail need not reach back to its header)
    assert "cassandra" in err.value.log_tail.lower() and "INFO" in err.value.log_tail
    abandoned = [line for line in said if "start abandoned" in line]
    assert len(abandoned) == 1, said
    pgid = int(abandoned[0].split("process group ")[1].split()[0])
    assert procs.group_members(pgid) == []
    assert not svc.pidfile.exists() and svc.state() == "stopped"
    assert not _port_open(cfg, cfg.cassandra_port)


def test_every_listener_binds_loopback(whole_stack):
    """Each service's process family listens on 127.0.0.x only (a Cassandra ring node on
    its own 127.0.0.n: all of 127/8 is loopback) — every socket, not just
    the declared ports (JMX/RMI, Spark's driver and block manager...), with no exception:
    Airflow's task-log servers, which bind every interface, are not started."""
    cfg = whole_stack
    found: dict[str, list[tuple[str, int, str]]] = {}
    for name in ALL:
        for p in _family(cfg, name):
            try:
                conns = p.net_connections(kind="inet")
                exe = p.name()
            except psutil.NoSuchProcess:
                continue
            found.setdefault(name, []).extend(
                (c.laddr.ip, c.laddr.port, exe) for c in conns if c.status == psutil.CONN_LISTEN)
    report = "\n".join(f"{n:14} {ip}:{port} ({exe})" for n, socks in found.items() for ip, port, exe in sorted(set(socks)))
    print("\nlistening sockets of the scratch lab:\n" + report)

    for name in ALL:
        declared = set(services.service(name, cfg).ports().values())
        on_loopback = {port for ip, port, _ in found.get(name, []) if _is_ipv4_loopback(ip)}
        assert declared <= on_loopback, f"{name}: declared ports {declared} not all listening on 127.0.0.x"
    wide = [(n, ip, port) for n, socks in found.items() for ip, port, _ in socks
            if not _is_ipv4_loopback(ip)]
    assert wide == [], f"listening beyond 127.0.0.x:\n{report}"


def _is_ipv4_loopback(ip: str) -> bool:
    """An address of 127/8, also as Java reports it: an IPv6 socket bound to the
    IPv4-mapped ::ffff:127.0.0.n (it accepts exactly what 127.0.0.n accepts). Not ::1,
    nor 0.0.0.0."""
    addr = ipaddress.ip_address(ip)
    addr = getattr(addr, "ipv4_mapped", None) or addr
    return addr.version == 4 and addr.is_loopback


def test_airflow_secrets_are_owner_only_from_the_start(whole_stack):
    """Written by a real first start in an empty home: the lab's secrets file, the
    password file SimpleAuthManager generates and the SQLite metadata DB."""
    home = whole_stack.paths.data("airflow")
    files = [home / "lab-secrets.json", passwords_file(whole_stack), home / "airflow.db", home / "airflow.cfg"]
    modes = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files}
    assert modes == {f.name: "0o600" for f in files}


def test_restart_cleans_a_stale_pid_file_and_spares_the_stranger(whole_stack):
    """After a reboot the pid file may name an unrelated process: `restart` must not
    signal it, must say so in one line, and must start the real service."""
    cfg = whole_stack
    svc = services.service("events-api", cfg)
    assert svc.stop()
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        fake = procs.ProcRecord(stranger.pid, stranger.pid, psutil.Process(stranger.pid).create_time() - 3600,
                                svc.argv(), "feedfacefeedface")
        svc.pidfile.write_text(json.dumps(asdict(fake)))
        said: list[str] = []
        st = stack.restart("events-api", cfg, progress=said.append)
        assert stranger.poll() is None, "restart signalled an unrelated process"
        stale = [line for line in said if "stale pid file" in line]
        assert len(stale) == 1 and f"pid {stranger.pid} is now `sleep 600`" in stale[0], said
        assert st["healthy"] and st["pid"] != stranger.pid
    finally:
        stranger.kill()
        stranger.wait()


def test_concurrent_lab_up_starts_a_service_once(whole_stack):
    cfg = whole_stack
    svc = services.service("events-api", cfg)
    assert svc.stop()
    ups = [subprocess.Popen([sys.executable, "-m", "labsupport", "up", "events-api"], cwd=REPO_ROOT, env=os.environ,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=240)[0] for p in ups]
    assert [p.returncode for p in ups] == [0, 0], outputs
    assert sum(out.count("events-api: started") for out in outputs) == 1, outputs
    mine = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == svc.argv()]
    assert len(mine) == 1 and svc.record().pid == mine[0].pid


def test_down_leaves_no_process_behind(whole_stack):
    """Last: every one of the seven services, its whole family, and its ports."""
    cfg = whole_stack
    families = {name: _family(cfg, name) for name in ALL}
    assert all(families.values()), {n: len(f) for n, f in families.items()}
    stack.down(cfg=cfg)
    left = {name: [p.pid for p in fam if _alive(p)] for name, fam in families.items()}
    assert left == {name: [] for name in ALL}
    tagged = [p.pid for p in psutil.process_iter() if _tag_of(p) and _home_of(p) == str(cfg.paths.home)]
    assert tagged == [], "processes started by the scratch lab are still running"
    for name in ALL:
        svc = services.service(name, cfg)
        assert svc.state() == "stopped"
        for port in svc.ports().values():
            assert not _port_open(cfg, port), f"{name} still listens on {port}"


def _tag_of(p: psutil.Process) -> str | None:
    try:
        return p.environ().get(procs.TAG_VAR)
    except psutil.Error:
        return None


def _home_of(p: psutil.Process) -> str | None:
    try:
        return p.environ().get("LAB_HOME")
    except psutil.Error:
        return None
