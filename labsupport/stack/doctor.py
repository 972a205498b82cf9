"""Preflight checks: each finding names the problem and its remedy."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass

import psutil

from labsupport.stack import services
from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError

MIN_FREE_MEMORY_GIB = 6.0  # JVM heaps (~2 GiB) + Spark + Airflow (~1.2 GiB) + JupyterLab
MIN_FREE_DISK_GIB = 5.0


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    remedy: str = ""

    def line(self) -> str:
        mark = "ok " if self.ok else "FAIL"
        return f"[{mark}] {self.check}: {self.detail}" + (f" — {self.remedy}" if self.remedy else "")


def _check(name: str, fn) -> Finding:
    try:
        return Finding(name, True, fn())
    except LabError as exc:
        return Finding(name, False, exc.cause, exc.remedy)


def check_java(cfg: LabConfig) -> Finding:
    from labsupport.java import find_java_home

    return _check("java 17", lambda: f"JAVA_HOME={find_java_home(cfg.java_home)}")


def check_maven(cfg: LabConfig) -> Finding:
    path = shutil.which("mvn")
    return Finding("maven", bool(path), path or "mvn not on PATH",
                   "" if path else "apt-get install maven (or ./lab setup as root)")


def check_prometheus(cfg: LabConfig) -> Finding:
    return _check("prometheus", lambda: services.service("prometheus", cfg).binary())


def check_jars(cfg: LabConfig) -> Finding:
    from labsupport.stack.install import JAR_COMPONENTS

    missing = [c for c in JAR_COMPONENTS if not any(cfg.paths.jars(c).glob("*.jar"))]
    return Finding("jars", not missing, f"missing: {', '.join(missing)}" if missing else "all resolved",
                   "./lab setup" if missing else "")


def check_ports(cfg: LabConfig) -> list[Finding]:
    out = []
    for name in services.names():
        svc = services.service(name, cfg)
        if svc.running():
            out.append(Finding(f"ports of {name}", True, "in use by the lab's own running service"))
            continue
        busy = []
        for label, port in svc.ports().items():
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((cfg.host, port))
                except OSError:
                    busy.append(f"{port} ({label}, LAB_{label.upper()})")
        out.append(Finding(f"ports of {name}", not busy,
                           ("busy: " + ", ".join(busy)) if busy else "free",
                           "stop what holds them or pick other ports via the LAB_* variables" if busy else ""))
    return out


def check_memory(cfg: LabConfig) -> Finding:
    avail = psutil.virtual_memory().available / 2**30
    ok = avail >= MIN_FREE_MEMORY_GIB
    return Finding("memory", ok, f"{avail:.1f} GiB available",
                   "" if ok else f"free memory: the full stack needs ~{MIN_FREE_MEMORY_GIB:.0f} GiB")


def check_disk(cfg: LabConfig) -> Finding:
    home = cfg.paths.home
    probe = home if home.exists() else home.parent
    free = shutil.disk_usage(probe).free / 2**30
    ok = free >= MIN_FREE_DISK_GIB
    return Finding("disk", ok, f"{free:.1f} GiB free at {probe}",
                   "" if ok else f"free disk space or set LAB_HOME elsewhere (needs {MIN_FREE_DISK_GIB:.0f} GiB)")


def check_cpu(cfg: LabConfig) -> Finding:
    n = psutil.cpu_count() or 1
    return Finding("cpu", True, f"{n} cores" + (" (the lab keeps heaps and parallelism small)" if n <= 2 else ""))


def diagnose(cfg: LabConfig | None = None) -> list[Finding]:
    cfg = cfg or get_config()
    return [check_java(cfg), check_maven(cfg), check_prometheus(cfg), check_jars(cfg),
            *check_ports(cfg), check_memory(cfg), check_disk(cfg), check_cpu(cfg)]
