"""Process groups with pid files: how every local service is started and stopped.

Each service runs in its own session (so its own process group). Stopping signals the
whole group, which is what keeps Airflow's workers or a Spark driver's Python workers
from outliving the service.

A pid file is a claim, not a fact: after a reboot (or a long time) its pid may name an
unrelated process, and signalling that process's group would hit a stranger. So the
file records the leader's start time (a pid and its start time name one process: a
recycled pid starts later), and a random tag that spawn puts in the service's
environment (inherited by every process it starts). Before any signal the claim is
checked against the live process table (``Target``):

* the leader is alive with the same start time: the group is ours, and ``killpg``
  reaches all of it at once;
* the leader is gone (or its pid now names someone else) but processes carrying the tag
  remain (a crashed parent's orphans): those processes, one by one, and nobody else;
* nothing of ours is left: the pid file is stale. It is removed, never obeyed, and one
  line says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import psutil

#: the environment variable that marks every process of one service start
TAG_VAR = "LAB_PROCESS_TAG"
#: one process's start time as two Python processes read it: psutil adds /proc/stat's boot
#: time, whole seconds that may be recomputed, so readings agree to within a second; a
#: recycled pid would need the whole pid space to wrap inside that second
_SAME_START = 1.0

Say = Callable[[str], None]

# Children started by this Python process; polled so a killed service never lingers as
# a zombie (a zombie still answers kill(pid, 0)).
_children: dict[int, subprocess.Popen] = {}


def _quiet(msg: str) -> None:
    pass


@dataclass
class ProcRecord:
    pid: int
    pgid: int
    create_time: float
    argv: list[str]
    tag: str = ""  # empty in pid files written before tags existed

    def leader(self) -> psutil.Process | None:
        """The live process this record names, or None when its pid is gone or names a
        later process. Its command line is no test: a launcher that exec()s its program
        (Spark's spark-class → java) is the same process under another one, and while
        the kernel swaps the program even its environment reads truncated (the start's
        tag missing, about one exec in a hundred), so neither may disown it."""
        child = _children.get(self.pid)
        if child is not None and child.poll() is not None:
            return None
        try:
            p = psutil.Process(self.pid)
            if abs(p.create_time() - self.create_time) >= _SAME_START or not _still_running(p):
                return None
        except psutil.Error:
            return None
        return p

    def alive(self) -> bool:
        return self.leader() is not None


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
    tag = secrets.token_hex(8)
    env = {**(os.environ if env is None else env), TAG_VAR: tag}
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
    _children[proc.pid] = proc
    rec = ProcRecord(proc.pid, proc.pid, psutil.Process(proc.pid).create_time(), argv, tag)
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


def _tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``tag`` (a service start's leftovers)."""
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.pid != os.getpid() and p.environ().get(TAG_VAR) == tag and _still_running(p):
                found.append(p)
        except psutil.Error:
            continue
    return found


@dataclass
class Target:
    """What a pid file's claim amounts to right now (see the module docstring)."""

    rec: ProcRecord
    #: the leader is the recorded process: its whole group is the service's
    group_is_ours: bool
    #: tagged processes outside that group: a dead leader's orphans, or processes that
    #: moved to a group of their own (Airflow's task runners call setpgid)
    strays: list[psutil.Process] = field(default_factory=list)

    @classmethod
    def of(cls, rec: ProcRecord) -> "Target":
        ours = rec.leader() is not None
        tagged = _tagged(rec.tag) if rec.tag else []
        return cls(rec, ours, [p for p in tagged if not (ours and _pgid(p) == rec.pgid)])

    @property
    def empty(self) -> bool:
        return not self.group_is_ours and not self.strays

    def signal(self, sig: int) -> None:
        if self.group_is_ours:
            try:
                os.killpg(self.rec.pgid, sig)
            except ProcessLookupError:
                pass
        for p in self.strays:
            try:
                p.send_signal(sig)  # psutil refuses if the pid has been reused meanwhile
            except psutil.Error:
                continue

    def remaining(self) -> list[psutil.Process]:
        _reap(self.rec)
        group = group_members(self.rec.pgid) if self.group_is_ours else []
        return group + [p for p in self.strays if not _gone(p)]

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.remaining():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def end(self, sig: int, grace: float) -> None:
        """``sig`` to everything, SIGKILL to what is left after ``grace`` seconds, then
        SIGKILL to any tagged process that appeared meanwhile (a task starting)."""
        self.signal(sig)
        if not self.wait_gone(grace):
            self.signal(signal.SIGKILL)
            self.wait_gone(10)
        late = Target(self.rec, False, _tagged(self.rec.tag) if self.rec.tag else [])
        if late.strays:
            late.signal(signal.SIGKILL)
            late.wait_gone(10)

    def stale_reason(self) -> str:
        """Why nothing may be signalled: the pid is gone, or it is someone else now."""
        pid = self.rec.pid
        try:
            p = psutil.Process(pid)
            now = " ".join(p.cmdline())[:60] or p.name()
            started = _clock(p.create_time())
        except psutil.Error:
            return f"pid {pid} is gone"
        return f"pid {pid} is now `{now}` (started {started}), not the process started {_clock(self.rec.create_time)}"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _pgid(p: psutil.Process) -> int | None:
    try:
        return os.getpgid(p.pid)
    except OSError:
        return None


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or not _still_running(p)
    except psutil.Error:
        return True


def _reap(rec: ProcRecord) -> None:
    child = _children.get(rec.pid)
    if child is not None and child.poll() is not None:
        _children.pop(rec.pid, None)


def _claim(pidfile: Path, say: Say) -> Target | None:
    """The live part of a pid file's claim; a stale or unreadable file is removed
    (with one line saying so) and gives None."""
    if not pidfile.exists():
        return None
    rec = read_record(pidfile)
    if rec is None:
        pidfile.unlink(missing_ok=True)
        say(f"unreadable pid file {pidfile} removed, nothing signalled")
        return None
    target = Target.of(rec)
    if target.empty:
        pidfile.unlink(missing_ok=True)
        say(f"stale pid file {pidfile}: {target.stale_reason()}; removed it, signalled nothing")
        return None
    if not target.group_is_ours:
        say(f"its leader (pid {rec.pid}) is gone; ending the {len(target.strays)} process(es) it left behind")
    return target


def clear_stale(pidfile: Path, say: Say = _quiet) -> None:
    """Before a start: remove a pid file that names no process of ours, and end what a
    dead leader left behind (it would hold the ports)."""
    target = _claim(pidfile, say)
    if target is not None and not target.group_is_ours:
        target.end(signal.SIGKILL, 10)
        pidfile.unlink(missing_ok=True)


def stop(pidfile: Path, grace: float = 30.0, say: Say = _quiet) -> bool:
    """SIGTERM the service's processes, SIGKILL whatever is left after ``grace`` seconds.

    Returns True if something of the service was running."""
    target = _claim(pidfile, say)
    if target is None:
        return False
    target.end(signal.SIGTERM, grace)
    pidfile.unlink(missing_ok=True)
    return True


def kill(pidfile: Path, say: Say = _quiet) -> bool:
    """SIGKILL the whole group at once: the crash a fault-injection lesson wants."""
    target = _claim(pidfile, say)
    if target is None:
        return False
    target.end(signal.SIGKILL, 10)
    pidfile.unlink(missing_ok=True)
    return True


class StartLocked(Exception):
    """Another process has been starting the service for longer than the timeout."""


@contextmanager
def exclusive(lockfile: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``lockfile`` (created if missing) for the block.

    Two `lab up` at once then cannot both see "not running" and both spawn; the second
    waits, then finds the service running. The kernel drops the lock when its holder
    dies, so a crashed `lab up` never leaves it taken."""
    lockfile.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lockfile, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StartLocked(_holder(fd)) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode().strip() or "unknown"
    except OSError:
        return "unknown"


#: a socket bound to one of these listens on every address, so it holds the port on any of them
WILDCARD_ADDRESSES = ("0.0.0.0", "::")


def port_owner(port: int, address: str | None = None) -> str | None:
    """'pid 123 (java)' for whatever listens on ``port`` (on ``address``, or on every
    address, when given: ring nodes share ports on 127.0.0.1..n, so the port alone could
    name another node's process), if it can be seen."""
    try:
        for c in psutil.net_connections(kind="inet"):
            if not (c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid):
                continue
            if address is None or c.laddr.ip in (address, *WILDCARD_ADDRESSES):
                try:
                    return f"pid {c.pid} ({psutil.Process(c.pid).name()})"
                except psutil.Error:
                    return f"pid {c.pid}"
    except psutil.Error:
        pass
    return None
