"""`lab setup`: everything a fresh machine needs, installed idempotently.

Each step keeps a stamp (a hash of its inputs) under the lab home and is skipped
when nothing changed, so a second `lab setup` takes a second. The lab's own venv is
made by the ./lab wrapper before this code can run; this module does the rest:
Debian packages (JDK 17, Maven, Prometheus), the JVM artifacts from Maven Central,
and Airflow's separate virtualenv.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError, MissingTool

Progress = Callable[[str], None]


def _say(msg: str) -> None:
    print(msg, flush=True)


def _digest(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _stamp_ok(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text().strip() == digest


def _run_streaming(cmd: list[str], progress: Progress, label: str, keep: Callable[[str], bool],
                   env: dict | None = None) -> None:
    """Run a long command, echoing the lines that show progress; fail with its tail."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    tail: list[str] = []
    assert proc.stdout
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-15:]
        if keep(line):
            progress(f"  {label}: {line.strip()[:150]}")
    if proc.wait() != 0:
        print("\n".join(tail), file=sys.stderr)
        raise LabError(f"{label} failed (exit {proc.returncode}): {tail[-1] if tail else ''}",
                       "read the lines above; rerun `lab setup` once the cause is fixed")
    progress(f"{label}: done in {time.monotonic() - started:.0f}s")


# ---- Debian packages -------------------------------------------------------------------
def missing_packages(cfg: LabConfig) -> list[str]:
    from labsupport.java import find_java_home

    missing = []
    try:
        find_java_home(cfg.java_home)
    except MissingTool:
        missing.append("openjdk-17-jdk-headless")
    if not shutil.which("mvn"):
        missing.append("maven")
    if not (shutil.which("prometheus") or Path("/usr/bin/prometheus").exists()):
        missing.append("prometheus")
    return missing


def install_packages(cfg: LabConfig, progress: Progress) -> None:
    missing = missing_packages(cfg)
    if not missing:
        progress("packages: JDK 17, Maven and Prometheus present")
        return
    apt_install(missing, progress)


#: tools only the test suite needs: compose file validation without an engine, and a
#: browser for the browser tests (playwright drives Debian's chromium: its own
#: browser download is not reachable)
TEST_TOOLS = {"docker-compose": "docker-compose", "chromium": "chromium"}


def install_test_tools(cfg: LabConfig | None = None, progress: Progress = _say) -> None:
    missing = [pkg for tool, pkg in TEST_TOOLS.items() if not shutil.which(tool)]
    if missing:
        apt_install(missing, progress)


def apt_install(missing: list[str], progress: Progress) -> None:
    if os.geteuid() == 0:
        prefix = []
    elif shutil.which("sudo"):
        prefix = ["sudo", "-n"]
    else:
        raise MissingTool(f"missing Debian packages: {' '.join(missing)}",
                          f"run `sudo apt-get install -y {' '.join(missing)}` and `lab setup` again")
    progress(f"packages: installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run_streaming([*prefix, "apt-get", "update", "-q"], progress, "apt-get update", lambda l: False, env)
    with daemons_held(prefix):
        _run_streaming([*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                       progress, "apt-get install", lambda l: l.startswith("Setting up"), env)
    if "prometheus" in missing and shutil.which("systemctl"):  # nor at the next boot
        subprocess.run([*prefix, "systemctl", "disable", "--quiet", "prometheus.service"], capture_output=True)


#: invoke-rc.d and deb-systemd-invoke ask this script before a package's maintainer
#: scripts start its daemon; exit 101 means "forbidden" (Debian's policy-rc.d interface)
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
#: daemons of packages whose binary the lab runs itself: Debian's prometheus.service
#: would take port 9090 from the lab's Prometheus (local, or compose on the host network)
HELD_DAEMONS = ("prometheus",)


def policy_rc_d_script(held: tuple[str, ...] = HELD_DAEMONS) -> str:
    names = "|".join(f"{d}|{d}.service" for d in held)
    return f"#!/bin/sh\n# written by `lab setup` for one apt-get install, removed after it\n" \
           f"case \"$1\" in\n  {names}) exit 101 ;;\nesac\nexit 0\n"


@contextlib.contextmanager
def daemons_held(prefix: list[str]) -> Iterator[None]:
    """No HELD_DAEMONS started by the install inside. A policy-rc.d the machine already
    has (Docker images ship one) is its owner's policy and is left as it is."""
    if POLICY_RC_D.exists():
        yield
        return
    with tempfile.NamedTemporaryFile("w", suffix=".policy-rc.d", delete=False) as f:
        f.write(policy_rc_d_script())
    try:
        subprocess.run([*prefix, "install", "-m", "0755", f.name, str(POLICY_RC_D)], check=True)
        yield
    finally:
        subprocess.run([*prefix, "rm", "-f", str(POLICY_RC_D)], check=False)
        os.unlink(f.name)


# ---- JVM artifacts -----------------------------------------------------------------------
JAR_COMPONENTS = ("kafka", "kafka-tools", "cassandra", "spark-kafka", "jmx-exporter")


def resolve_jars(cfg: LabConfig, progress: Progress) -> None:
    maven = cfg.paths.stack_dir / "maven"
    poms = sorted(maven.rglob("pom.xml"))
    stamp = cfg.paths.home / "jars" / ".stamp"
    digest = _digest(*poms)
    complete = all(any(cfg.paths.jars(c).glob("*.jar")) for c in JAR_COMPONENTS)
    if complete and _stamp_ok(stamp, digest):
        progress("jars: up to date")
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise MissingTool("Maven (mvn) is not installed", "run `apt-get install maven` or `lab setup` as root")
    progress("jars: resolving Kafka (and its tools), Cassandra, Spark's Kafka source and the JMX exporter with Maven "
             "(first run downloads ~150 MB into ~/.m2)")
    for c in JAR_COMPONENTS:  # a version bump must not leave two versions on a classpath
        shutil.rmtree(cfg.paths.jars(c), ignore_errors=True)
    from labsupport.java import find_java_home

    env = {**os.environ, "JAVA_HOME": str(find_java_home(cfg.java_home))}
    _run_streaming([mvn, "-B", "-ntp", "-f", str(maven / "pom.xml"), f"-DlabJars={cfg.paths.home / 'jars'}",
                    "package"], progress, "mvn", lambda l: "Building " in l or "BUILD" in l, env)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


# ---- Airflow's virtualenv ----------------------------------------------------------------
def uv_binary() -> str:
    """uv is installed next to the lab's Python by the ./lab wrapper (or on PATH)."""
    here = Path(sys.executable).parent / "uv"
    found = str(here) if here.exists() else shutil.which("uv")
    if not found:
        raise MissingTool("uv is not installed", "run ./lab setup (the wrapper installs it) or `pip install uv`")
    return found


def install_airflow_venv(cfg: LabConfig, progress: Progress) -> None:
    lock = cfg.paths.repo / "requirements" / "airflow.lock"
    venv = cfg.paths.airflow_venv
    stamp = venv / ".lab-stamp"
    digest = _digest(lock)
    if (venv / "bin" / "airflow").exists() and _stamp_ok(stamp, digest):
        progress("airflow venv: up to date")
        return
    uv = uv_binary()
    progress(f"airflow venv: installing Apache Airflow into {venv} (its own venv: its pins fight the lab's)")
    if not (venv / "bin" / "python").exists():
        _run_streaming([uv, "venv", "-q", "--python", sys.executable, str(venv)], progress, "uv venv", lambda l: False)
    _run_streaming([uv, "pip", "sync", "--python", str(venv / "bin" / "python"), str(lock)], progress,
                   "airflow install", lambda l: l.startswith(("Prepared", "Installed", "Resolved")))
    stamp.write_text(digest)


def setup(cfg: LabConfig | None = None, progress: Progress = _say) -> None:
    cfg = cfg or get_config()
    started = time.monotonic()
    steps = [("Debian packages", install_packages), ("JVM artifacts", resolve_jars),
             ("Airflow venv", install_airflow_venv)]
    for i, (title, step) in enumerate(steps, 1):
        progress(f"[{i}/{len(steps)}] {title}")
        step(cfg, progress)
    progress(f"setup complete in {time.monotonic() - started:.0f}s")


# ---- JupyterHub's proxy (`lab hub` only) ----------------------------------------------------
#: the oldest Node configurable-http-proxy 5.2 runs on (its package.json's engines)
NODE_MIN = 20


def hub_proxy_command(cfg: LabConfig) -> Path:
    return cfg.paths.home / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"


def install_hub_proxy(cfg: LabConfig, progress: Progress = _say) -> Path:
    """configurable-http-proxy, pinned by stack/hub/package-lock.json, installed with
    `npm ci` into <lab home>/hub-proxy (never globally); only `lab hub` needs it, so
    only `lab hub` installs it, and a machine without Node never has to have it."""
    src = cfg.paths.stack_dir / "hub"
    files = [src / "package.json", src / "package-lock.json"]
    dest = cfg.paths.home / "hub-proxy"
    stamp = dest / ".lab-stamp"
    digest = _digest(*files)
    command = hub_proxy_command(cfg)
    if command.exists() and _stamp_ok(stamp, digest):
        return command
    npm, node = shutil.which("npm"), shutil.which("node") or shutil.which("nodejs")
    if not (npm and node):
        raise MissingTool("npm is not installed: `lab hub` installs JupyterHub's proxy (configurable-http-proxy) "
                          "with it", f"apt-get install nodejs npm (Node {NODE_MIN} or newer), then `lab hub` again")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < NODE_MIN:
        raise MissingTool(f"Node {version} is too old for configurable-http-proxy",
                          f"install Node {NODE_MIN} or newer (e.g. from nodesource), then `lab hub` again")
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    progress(f"hub proxy: installing configurable-http-proxy into {dest} with npm ci")
    _run_streaming([npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--prefix", str(dest)], progress,
                   "npm ci", lambda l: l.startswith("added"))
    stamp.write_text(digest)
    return command
