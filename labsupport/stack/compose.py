"""The compose backend: the same stack in Docker containers, for learners with Docker.

It shares the local backend's config files; the only generated one is Prometheus'
config, rendered by the same code into the same place.
"""

from __future__ import annotations

import shutil
import subprocess

import yaml

from labsupport.config import LabConfig, get_config
from labsupport.errors import MissingTool


def compose_file(cfg: LabConfig):
    return cfg.paths.stack_dir / "compose.yaml"


def compose_command(cfg: LabConfig) -> list[str]:
    """`docker compose` (v2 plugin) or the older `docker-compose`, whichever exists."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose", "-p", "streamlab", "-f", str(compose_file(cfg))]
    if shutil.which("docker-compose"):
        return ["docker-compose", "-p", "streamlab", "-f", str(compose_file(cfg))]
    raise MissingTool("Docker Compose is not installed",
                      "install Docker with the compose plugin, or use the local backend (the default)")


def render(cfg: LabConfig) -> None:
    """Write the files the compose file mounts from the lab home."""
    from labsupport.stack.services.prometheus import render_config

    if not any(cfg.paths.jars("jmx-exporter").glob("*.jar")):
        raise MissingTool("the JMX exporter agent jar is missing", "run `./lab setup` first")
    out = cfg.paths.rendered("prometheus") / "prometheus.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(render_config(cfg), sort_keys=False))


def up(cfg: LabConfig | None = None) -> None:
    cfg = cfg or get_config()
    render(cfg)
    cmd = compose_command(cfg)
    wait = ["--wait"] if cmd[0] == "docker" else []  # v1 has no --wait; healthchecks still gate depends_on
    subprocess.check_call([*cmd, "up", "-d", *wait])


def down(cfg: LabConfig | None = None, purge: bool = False) -> None:
    cfg = cfg or get_config()
    subprocess.check_call([*compose_command(cfg), "down", *(["--volumes"] if purge else [])])
