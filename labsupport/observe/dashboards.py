"""The Grafana dashboard JSON is the single source of every panel query: Grafana
renders it in the compose stack, and the local stack (no Grafana) renders the same
queries with plotly. This module reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from labsupport.config import REPO_ROOT
from labsupport.errors import LabError

DASHBOARD_DIR = REPO_ROOT / "dashboards" / "grafana" / "dashboards"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    dashboard_uid: str
    id: int
    title: str
    unit: str
    description: str
    targets: tuple[Target, ...]


@lru_cache(maxsize=None)
def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def dashboards() -> list[dict]:
    return [load(p) for p in sorted(DASHBOARD_DIR.glob("*.json"))]


def panels() -> list[Panel]:
    out = []
    for dash in dashboards():
        for p in dash["panels"]:
            targets = tuple(Target(t["expr"], t.get("legendFormat", "")) for t in p.get("targets", []))
            out.append(Panel(dash["uid"], p["id"], p["title"], p.get("fieldConfig", {}).get("defaults", {}).get("unit", ""),
                             p.get("description", ""), targets))
    return out


def find(title: str) -> Panel:
    for p in panels():
        if p.title.lower() == title.lower():
            return p
    raise LabError(f"no dashboard panel titled {title!r}",
                   "choose one of: " + ", ".join(repr(p.title) for p in panels()))
