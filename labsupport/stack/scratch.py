"""A lab of its own: a scratch home (sharing the installed jars and venvs) and, when a
lab is already running, every port moved. Benchmarks and lifecycle tests start and stop
real services there without touching a learner's data or running services.

Code that calls ``get_config()`` (test helpers, a notebook) reads the ``LAB_*``
variables: set ``cfg.to_env()`` in the environment for as long as the scratch lab is
the one meant.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from labsupport.config import LabConfig

#: installed once, only read by services: linked into a scratch home, never copied
SHARED = ("jars", "venv", "airflow-venv")


def port_fields(cfg: LabConfig) -> list[str]:
    return [f.name for f in fields(cfg) if f.name.endswith("_port")]


def scratch_config(base: LabConfig, home: Path, port_offset: int = 0) -> LabConfig:
    """``base`` with its home at ``home`` (created, the installed parts linked) and every
    port moved by ``port_offset`` (Airflow's task-log servers, at +1 and +2 of its port,
    move with it)."""
    home.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        link, real = home / name, base.paths.home / name
        if real.exists() and not link.exists():
            link.symlink_to(real)
    moved = {name: getattr(base, name) + port_offset for name in port_fields(base)}
    return base.replace(home=home, **moved)
