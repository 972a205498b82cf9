"""Process control never hits a stranger, and never leaves its own behind.

Real processes (``sleep``, ``bash``, Python's ``http.server``) in a scratch lab home:
no lab service runs here, and nothing outside the processes a test starts is touched.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict

import psutil
import pytest

from labsupport import stack
from labsupport.config import LabConfig
from labsupport.errors import ServiceFailed
from labsupport.stack import procs
from labsupport.stack.services import service
from labsupport.stack.services.base import Service, http_probe
from labsupport.waits import wait_for


@pytest.fixture
def cfg(tmp_path) -> LabConfig:
    return LabConfig(home=tmp_path, ready_timeout=20)


@pytest.fixture
def stranger():
    """An unrelated live process leading its own group, as any process after a reboot."""
    p = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield p
    p.kill()
    p.wait()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _write_pidfile(cfg: LabConfig, name: str, pid: int, create_time: float, argv: list[str]):
    pidfile = cfg.paths.pidfile(name)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(json.dumps(asdict(procs.ProcRecord(pid, pid, create_time, argv, "0123456789abcdef"))))
    return pidfile


def _kafka_argv(cfg: LabConfig) -> list[str]:
    return ["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-Xmx512m", "kafka.Kafka",
            str(cfg.paths.rendered("kafka") / "server.properties")]


# how the stranger differs from what the pid file recorded
RECYCLED = {
    "start time": lambda p, argv: (p.create_time() - 3600, argv),       # the reboot case
    "start time, a second later": lambda p, argv: (p.create_time() - 1.5, argv),  # a fast pid wrap
}


@pytest.mark.parametrize("differs", list(RECYCLED))
@pytest.mark.parametrize("verb", ["down", "kill"])
def test_a_recycled_pid_is_never_signalled_and_its_pid_file_is_removed(cfg, stranger, verb, differs):
    p = psutil.Process(stranger.pid)
    create_time, argv = RECYCLED[differs](p, _kafka_argv(cfg))
    pidfile = _write_pidfile(cfg, "kafka", stranger.pid, create_time, argv)
    said: list[str] = []

    if verb == "down":
        stack.down(["kafka"], cfg=cfg, progress=said.append)
    else:
        assert stack.kill("kafka", cfg=cfg, progress=said.append) is False

    assert _alive(stranger.pid), f"`lab {verb}` signalled an unrelated process"
    assert not pidfile.exists()
    assert len(said) == 1, said
    assert said[0].startswith("kafka: stale pid file") and f"pid {stranger.pid} is now `sleep 600`" in said[0]
    assert service("kafka", cfg).state() == "stopped"


def test_a_dead_pid_is_cleaned_with_one_line(cfg):
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile = _write_pidfile(cfg, "cassandra", gone.pid, psutil.boot_time(), ["java", "CassandraDaemon"])
    said: list[str] = []
    stack.down(["cassandra"], cfg=cfg, progress=said.append)
    assert not pidfile.exists()
    assert said == [f"cassandra: stale pid file {pidfile}: pid {gone.pid} is gone; removed it, signalled nothing"]


def test_an_unreadable_pid_file_is_removed_not_obeyed(cfg):
    pidfile = cfg.paths.pidfile("prometheus")
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text("{not json")
    said: list[str] = []
    assert procs.kill(pidfile, say=said.append) is False
    assert not pidfile.exists() and len(said) == 1 and "unreadable" in said[0]


def test_the_orphans_of_a_dead_leader_are_ended_and_nobody_else(cfg, stranger):
    """A leader that died alone (OOM, a stray kill) leaves its children in its group;
    they carry the start's tag, so `down` ends them even though the pid file's pid is gone."""
    pidfile, log = cfg.paths.pidfile("airflow"), cfg.paths.log("airflow")
    rec = procs.spawn(["bash", "-c", "sleep 600 & sleep 600 & wait"], pidfile, log)
    children = wait_for(lambda: psutil.Process(rec.pid).children() if len(psutil.Process(rec.pid).children()) == 2
                        else None, 10, "the two sleeps")
    os.kill(rec.pid, signal.SIGKILL)
    wait_for(lambda: not procs.ProcRecord(**json.loads(pidfile.read_text())).alive(), 10, "the leader to die")
    said: list[str] = []
    assert procs.stop(pidfile, grace=5, say=said.append) is True
    assert [c.pid for c in children if _alive(c.pid)] == []
    assert _alive(stranger.pid)
    assert said == [f"its leader (pid {rec.pid}) is gone; ending the 2 process(es) it left behind"]


def test_a_process_that_left_the_group_is_stopped_too(cfg):
    """Airflow's task runners setpgid into groups of their own: killpg alone misses them."""
    pidfile, log = cfg.paths.pidfile("airflow"), cfg.paths.log("airflow")
    rec = procs.spawn(["bash", "-c", "setsid sleep 600 & wait"], pidfile, log)
    runaway = wait_for(lambda: [p for p in procs._tagged(rec.tag) if os.getpgid(p.pid) != rec.pgid],
                       10, "the setsid sleep")[0]
    assert procs.stop(pidfile, grace=5) is True
    assert not _alive(runaway.pid) and not procs.group_members(rec.pgid)


# ---- starting: a real little HTTP service ---------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyHttp(Service):
    """Python's http.server as a lab service; ``ready_path`` is what its probe asks for
    (a missing path answers 404 forever: a service that never becomes ready)."""

    name = "tiny-http"
    has_data = False

    def __init__(self, cfg, port: int, ready_path: str = "/"):
        super().__init__(cfg)
        self.port, self.ready_path = port, ready_path

    def ports(self):
        return {"tiny_http_port": self.port}

    def version(self):
        return "tiny 1"

    def argv(self):
        return [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", str(self.port),
                "--directory", str(self.paths.home)]

    def probe(self):
        return http_probe(f"http://127.0.0.1:{self.port}{self.ready_path}")


def test_concurrent_starts_spawn_the_service_once(cfg):
    port = _free_port()
    said: list[str] = []
    errors: list[BaseException] = []

    def up():
        try:
            TinyHttp(cfg, port).start(said.append)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=up) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    svc = TinyHttp(cfg, port)
    try:
        assert errors == []
        assert sum("started" in line for line in said) == 1, said
        assert sum("ready in" in line for line in said) == 3, said
        assert svc.running() and len(procs.group_members(svc.record().pgid)) == 1
    finally:
        svc.stop(grace=5)


def test_a_start_that_never_gets_ready_leaves_no_process_behind(cfg):
    svc = TinyHttp(cfg.replace(ready_timeout=2), _free_port(), ready_path="/never-there")
    said: list[str] = []
    with pytest.raises(ServiceFailed) as err:
        svc.start(said.append)
    assert "tiny-http failed to start, not ready after 2s" in str(err.value)
    assert "GET /never-there" in err.value.log_tail  # http.server logs each probe: the tail is the run's
    rec_line = [line for line in said if "start abandoned" in line]
    assert len(rec_line) == 1
    pgid = int(rec_line[0].split("process group ")[1].split()[0])
    assert procs.group_members(pgid) == []
    assert not svc.pidfile.exists() and svc.state() == "stopped"


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def test_a_launcher_that_execs_its_program_is_alive_throughout_the_exec(tmp_path):
    """Spark's `spark-class` is a bash script that exec()s java. While the kernel swaps the
    program, /proc/<pid>/environ reads empty, or truncated without the start's tag, for a
    moment; the record must still name its process (it saw its own spark-worker as exited,
    about one start in ten). The launcher exec()s itself 40 times before its program, so
    each start passes through that moment many times."""
    launcher = tmp_path / "launcher"
    launcher.write_text('#!/usr/bin/env bash\n'
                        'n=${1:-0}\n'
                        '(( n < 40 )) && exec "$0" $((n + 1))\n'
                        'exec sleep 30\n')
    launcher.chmod(0o755)
    for trial in range(40):
        pidfile = tmp_path / f"launcher{trial}.json"
        rec = procs.spawn([str(launcher)], pidfile, tmp_path / "launcher.log")
        try:
            checks = 0
            deadline = time.monotonic() + 20
            while _cmdline(rec.pid)[:2] != ["sleep", "30"] and time.monotonic() < deadline:
                assert rec.alive(), f"trial {trial}: seen as exited during an exec, after {checks} checks"
                checks += 1
            assert _cmdline(rec.pid)[:2] == ["sleep", "30"] and rec.alive()
        finally:
            procs.kill(pidfile)


def test_port_owner_names_the_process_on_that_address_not_another_nodes():
    from labsupport.stack.procs import port_owner

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as node2:
        node2.bind(("127.0.0.2", 0))
        node2.listen()
        port = node2.getsockname()[1]
        assert port_owner(port, "127.0.0.2").startswith(f"pid {os.getpid()} ")
        assert port_owner(port, "127.0.0.3") is None, "cassandra-3's port is free: node 2 holds it on its own address"
        assert port_owner(port) is not None
