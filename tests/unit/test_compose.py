"""The compose backend cannot run here (no Docker engine), so it is validated statically:
the compose tool parses it, and it keeps the lab's rules (pinned images, loopback
ports, the shared config files mounted rather than copied)."""

import shutil
import subprocess

import yaml

from labsupport.stack import compose
from labsupport.config import LabConfig, REPO_ROOT, get_config

COMPOSE = REPO_ROOT / "stack" / "compose.yaml"


def _spec() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_tool_accepts_the_file(tmp_path):
    cfg = LabConfig.from_env({}, home=tmp_path)
    (tmp_path / "jars").symlink_to(get_config().home / "jars")  # the lab's own, wherever LAB_HOME is
    compose.render(cfg)  # writes the Prometheus config the file mounts
    assert shutil.which("docker-compose"), "`./lab test` installs docker-compose to validate the file"
    out = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_images_are_pinned():
    for name, svc in _spec()["services"].items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_published_ports_bind_loopback_only():
    for name, svc in _spec()["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is reachable from the network"


def test_shared_config_files_are_mounted_and_exist():
    mounts = [m.split(":")[0] for svc in _spec()["services"].values() for m in svc.get("volumes", [])]
    for shared in ("./kafka/server.properties", "./jmx", "../.lab/run/prometheus/prometheus.yml"):
        assert shared in mounts
    for m in mounts:
        if m.startswith(("./", "../")) and ".lab" not in m:
            assert (COMPOSE.parent / m).exists(), f"compose mounts missing {m}"
