"""The shape every local service shares: render config, start in its own process
group, poll readiness with a deadline, stop the group. One subclass per service sets
its ports, command line and readiness probe."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path
from typing import Callable

from labsupport.stack import procs
from labsupport.config import LabConfig
from labsupport.errors import DataDirProblem, LabError, PortBusy, ServiceFailed
from labsupport.stack.readiness import NotReady, poll_until_ready

VERSION_MARKER = ".lab-version"
_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|Exception|Error:|error:)")


def _say(msg: str) -> None:
    print(msg, flush=True)


def http_probe(url: str, timeout: float = 3) -> str | None:
    """Readiness of an HTTP service: None on a 200 from ``url``, else why not."""
    import httpx

    try:
        r = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"HTTP {type(exc).__name__}"
    return None if r.status_code == 200 else f"{url} answered {r.status_code}"


class Service:
    name: str = ""
    #: True when the service keeps state in data/<name> that --purge deletes
    has_data: bool = True

    def __init__(self, cfg: LabConfig):
        self.cfg = cfg
        self.paths = cfg.paths

    # ---- what a subclass provides -------------------------------------------------------
    def ports(self) -> dict[str, int]:
        raise NotImplementedError

    def version(self) -> str:
        """Identifies the on-disk format: data from another version is refused."""
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def prepare(self) -> None:
        """Render config files, check installation, initialise storage."""

    def probe(self) -> str | None:
        """None when ready, else what it is waiting for."""
        raise NotImplementedError

    # ---- shared mechanics -----------------------------------------------------------------
    @property
    def pidfile(self) -> Path:
        return self.paths.pidfile(self.name)

    @property
    def log(self) -> Path:
        return self.paths.log(self.name)

    @property
    def data_dir(self) -> Path:
        return self.paths.data(self.name)

    @property
    def run_dir(self) -> Path:
        d = self.paths.rendered(self.name)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def record(self) -> procs.ProcRecord | None:
        rec = procs.read_record(self.pidfile)
        return rec if rec and rec.alive() else None

    def running(self) -> bool:
        return self.record() is not None

    def state(self) -> str:
        if self.running():
            return "running"
        return "crashed" if self.pidfile.exists() else "stopped"

    def healthy(self) -> bool:
        try:
            return self.running() and self.probe() is None
        except Exception:
            return False

    def bind_address(self, label: str) -> str:
        """The address the port of ``label`` is bound on (a node of a ring has its own)."""
        return self.cfg.host

    def check_ports_free(self) -> None:
        for label, port in self.ports().items():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.bind_address(label), port))
                except OSError:
                    owner = procs.port_owner(port, self.bind_address(label)) or "another process"
                    env = f"LAB_{label.upper()}"
                    raise PortBusy(f"{self.name}: port {port} ({label}) is already in use by {owner}",
                                   f"stop that process, or choose another port with {env}=<port>") from None

    def check_data_dir(self) -> None:
        """Refuse data from another version or not made by the lab; never delete it."""
        if not self.has_data:
            return
        marker = self.data_dir / VERSION_MARKER
        purge = f"move it away, or `lab down --purge {self.name}` to start empty (deletes its data)"
        if marker.exists():
            found = marker.read_text().strip()
            if found != self.version():
                raise DataDirProblem(f"{self.name}: data dir {self.data_dir} was written by {found}, "
                                     f"this lab runs {self.version()}", purge)
        elif self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise DataDirProblem(f"{self.name}: data dir {self.data_dir} was not created by this lab "
                                 f"(no {VERSION_MARKER})", purge)
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(self.version() + "\n")

    @property
    def lockfile(self) -> Path:
        return self.pidfile.with_suffix(".lock")

    def _prefixed(self, progress: Callable[[str], None]) -> Callable[[str], None]:
        return lambda msg: progress(f"{self.name}: {msg}")

    def start(self, progress: Callable[[str], None] = _say) -> "Service":
        """Idempotent: a running service is only waited for.

        One start at a time per service: two `lab up` at once (two terminals, a notebook
        and a terminal) would otherwise both see "not running" and both spawn. And a
        start that does not become ready leaves nothing behind: its whole group is
        killed and its pid file removed before the error (with the log tail) is raised."""
        try:
            with procs.exclusive(self.lockfile, timeout=self.cfg.ready_timeout + 60):
                if self.running():
                    self._log_offset = 0
                    self.refresh(progress)
                    self.wait_ready(progress)
                    return self
                procs.clear_stale(self.pidfile, self._prefixed(progress))
                self.check_data_dir()
                self.check_ports_free()
                self.prepare()
                self._log_offset = self.log.stat().st_size if self.log.exists() else 0
                rec = procs.spawn(self.argv(), self.pidfile, self.log, env=self.env(), cwd=self.paths.home)
                progress(f"{self.name}: started (log: {self.log})")
                try:
                    self.wait_ready(progress)
                except BaseException:  # not ready, a probe bug, or Ctrl-C: nothing may linger
                    procs.kill(self.pidfile)
                    progress(f"{self.name}: start abandoned; process group {rec.pgid} killed, pid file removed")
                    raise
        except procs.StartLocked as held:
            raise ServiceFailed(f"{self.name}: another `lab up` (pid {held}) has been starting it for "
                                f"{self.cfg.ready_timeout + 60:.0f}s", "wait for it to finish, or stop that process") from None
        return self

    def refresh(self, progress: Callable[[str], None] = _say) -> bool:
        """Bring a running service in line with the config it is asked for now, if it can
        be without a restart; True if something changed. Most services read their config
        once at start: nothing to do."""
        return False

    def wait_ready(self, progress: Callable[[str], None] = _say) -> float:
        try:
            took = poll_until_ready(self.probe, timeout=self.cfg.ready_timeout, alive=self.running,
                                    progress=progress, label=self.name)
        except NotReady as exc:
            raise self._failure(str(exc)) from None
        progress(f"{self.name}: ready in {took:.1f}s")
        return took

    def _failure(self, why: str) -> ServiceFailed:
        tail = self.log_tail(40, since=getattr(self, "_log_offset", 0))
        errors = [ln for ln in tail.splitlines() if _ERROR_LINE.search(ln)]
        detail = f": {errors[-1].strip()[:300]}" if errors else ""
        return ServiceFailed(f"{self.name} failed to start, {why}{detail}",
                             f"read `lab logs {self.name}`; if its data is damaged, "
                             f"`lab down --purge {self.name}` starts it empty (deletes its data)",
                             log_tail=tail)

    def log_tail(self, lines: int = 40, since: int = 0) -> str:
        if not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 30.0, progress: Callable[[str], None] = _say) -> bool:
        """True if something was running; a stale pid file is removed with one line."""
        return procs.stop(self.pidfile, grace, say=self._prefixed(progress))

    def kill(self, progress: Callable[[str], None] = _say) -> bool:
        return procs.kill(self.pidfile, say=self._prefixed(progress))

    def purge(self) -> None:
        """Delete the service's data. Only reachable through an explicit --purge."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.paths.rendered(self.name), ignore_errors=True)

    def status(self) -> dict:
        rec = self.record()
        return {"state": self.state(), "pid": rec.pid if rec else None,
                "ports": list(self.ports().values()), "healthy": self.healthy(),
                "log": str(self.log)}

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class JvmService(Service):
    """A service that is a JVM started from Maven Central jars with JDK 17."""

    jar_component: str = ""
    main_class: str = ""

    def java(self) -> str:
        from labsupport.java import java_bin

        return java_bin(self.cfg.java_home)

    def classpath(self) -> str:
        jars = self.paths.jars(self.jar_component)
        if not jars.is_dir() or not any(jars.glob("*.jar")):
            from labsupport.errors import MissingTool

            raise MissingTool(f"{self.name}: no jars in {jars}", "run `lab setup` (resolves them with Maven)")
        return f"{jars}/*"

    def jar_version(self, prefix: str) -> str:
        """Version of ``prefix-<version>.jar`` in this component's jar dir."""
        for jar in self.paths.jars(self.jar_component).glob(f"{prefix}-*.jar"):
            m = re.fullmatch(re.escape(prefix) + r"-(\d[\w.\-]*)\.jar", jar.name)
            if m:
                return m.group(1)
        return "unknown"

    def jmx_rules(self, field: str) -> Path:
        """The rules file config field ``field`` names (see `jmx_rules_file`)."""
        return jmx_rules_file(self.cfg, field)

    def exporter_agent(self, port: int, rules: Path) -> str:
        jars = list(self.paths.jars("jmx-exporter").glob("jmx_prometheus_javaagent-*.jar"))
        if not jars:
            from labsupport.errors import MissingTool

            raise MissingTool("the JMX exporter agent jar is missing", "run `lab setup`")
        return f"-javaagent:{jars[0]}={self.cfg.host}:{port}:{rules}"


def jmx_rules_file(cfg: LabConfig, field: str) -> Path:
    """The JMX exporter rules file named by config field ``field`` (``kafka_jmx_rules``):
    a file of stack/jmx, which both backends read (the compose containers mount that
    directory). A name that is no file there is refused before any JVM starts (the
    agent would only fail inside the JVM)."""
    name = getattr(cfg, field)
    folder = cfg.paths.stack_dir / "jmx"
    path = folder / name
    if "/" in name or not path.is_file():
        found = ", ".join(sorted(p.name for p in folder.glob("*.yml")))
        raise LabError(f"LAB_{field.upper()}={name!r} is not a rules file of {folder}",
                       f"unset it for the shipped rules, or name one of: {found}")
    return path
