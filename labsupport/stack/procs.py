"""Process groups with pid files: how every local service is started and stopped.

Each service runs in its own session (so its own process group). Stopping signals the
whole group, which is what keeps Airflow's workers or a Spark driver's Python workers
from outliving the service. A pid file records pid, group and start time, so a recycled
pid is never mistaken for a live service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

# Children started by this Python process; polled so a killed service never lingers as
# a zombie (a zombie still answers kill(pid, 0)).
_children: dict[int, subprocess.Popen] = {}


@dataclass
class ProcRecord:
    pid: int
    pgid: int
    create_time: float
    argv: list[str]

    def alive(self) -> bool:
        child = _children.get(self.pid)
        if child is not None and child.poll() is not None:
            return False
        try:
            p = psutil.Process(self.pid)
            return abs(p.create_time() - self.create_time) < 1.0 and _still_running(p)
        except psutil.Error:
            return False


def read_record(pidfile: Path) -> ProcRecord | None:
    try:
        return ProcRecord(**json.loads(pidfile.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def spawn(argv: list[str], pidfile: Path, log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> ProcRecord:
    """Start ``argv`` detached in a new session, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
    _children[proc.pid] = proc
    rec = ProcRecord(proc.pid, proc.pid, psutil.Process(proc.pid).create_time(), argv)
    pidfile.write_text(json.dumps(asdict(rec)))
    return rec


def _still_running(p: psutil.Process) -> bool:
    """True until every thread of the process has exited.

    A SIGKILLed JVM's main thread turns zombie at once while its hundreds of other
    threads are still tearing down, holding the sockets open: a zombie leader with
    threads left in /proc/<pid>/task is not gone yet."""
    if p.status() != psutil.STATUS_ZOMBIE:
        return True
    try:
        return len(os.listdir(f"/proc/{p.pid}/task")) > 1
    except OSError:
        return False


def group_members(pgid: int) -> list[psutil.Process]:
    """Processes of a process group that have not completely exited."""
    members = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid and _still_running(p):
                members.append(p)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def _reap(rec: ProcRecord) -> None:
    child = _children.get(rec.pid)
    if child is not None and child.poll() is not None:
        _children.pop(rec.pid, None)


def signal_group(rec: ProcRecord, sig: int) -> None:
    try:
        os.killpg(rec.pgid, sig)
    except ProcessLookupError:
        pass


def wait_group_gone(rec: ProcRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(rec)
        if not group_members(rec.pgid):
            return True
        time.sleep(0.2)
    return False


def stop(pidfile: Path, grace: float = 30.0) -> bool:
    """SIGTERM the group, SIGKILL whatever is left after ``grace`` seconds.

    Returns True if something was running."""
    rec = read_record(pidfile)
    if rec is None:
        return False
    was_running = bool(group_members(rec.pgid))
    signal_group(rec, signal.SIGTERM)
    if not wait_group_gone(rec, grace):
        signal_group(rec, signal.SIGKILL)
        wait_group_gone(rec, 10)
    pidfile.unlink(missing_ok=True)
    return was_running


def kill(pidfile: Path) -> bool:
    """SIGKILL the whole group at once: the crash a fault-injection lesson wants."""
    rec = read_record(pidfile)
    if rec is None:
        return False
    signal_group(rec, signal.SIGKILL)
    wait_group_gone(rec, 10)
    pidfile.unlink(missing_ok=True)
    return True


def port_owner(port: int) -> str | None:
    """'pid 123 (java)' for whatever listens on ``port``, if it can be seen."""
    try:
        for c in psutil.net_connections(kind="inet"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                try:
                    return f"pid {c.pid} ({psutil.Process(c.pid).name()})"
                except psutil.Error:
                    return f"pid {c.pid}"
    except psutil.Error:
        pass
    return None
