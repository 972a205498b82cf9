"""`lab bench`: the lab's speed goals, measured instead of asserted in timed tests.

Benchmarks run on a scratch lab home (sharing the resolved jars), so measuring a
cold start never touches a learner's data. Results are printed and appended, with
the machine described, to <lab home>/bench/results.jsonl.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path
from typing import Callable

import psutil

from labsupport import stack
from labsupport.config import LabConfig, get_config
from labsupport.stack import scratch

CORE = ["kafka", "cassandra", "prometheus"]


def machine() -> dict:
    return {"host": platform.node(), "cpus": psutil.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(), "kernel": platform.release()}


def cores_busy(seconds: float = 5.0) -> float:
    """Cores busy over ``seconds``, whatever is busy: sampled before a bench, since a stack
    that is still settling (a DAG catching up on missed minutes, a stream draining a
    backlog) takes from every figure the bench then measures."""
    return round(psutil.cpu_percent(interval=seconds) / 100 * (psutil.cpu_count() or 1), 2)


def _scratch(cfg: LabConfig, name: str) -> LabConfig:
    home = cfg.paths.home / "bench" / name
    shutil.rmtree(home, ignore_errors=True)  # bench's own scratch dir, never learner data
    return scratch.scratch_config(cfg, home)


def _timed(fn: Callable[[], object]) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def bench_up(runs: int = 3, services: list[str] | None = None, progress=print) -> dict:
    """Cold `up` (empty data dirs) and warm `up` (data present, after a clean down)."""
    base = get_config()
    services = services or CORE
    quiet = lambda msg: None  # noqa: E731
    cold, warm = [], []
    for i in range(runs):
        cfg = _scratch(base, f"up-{i}")
        try:
            cold.append(_timed(lambda: stack.up(services, cfg=cfg, progress=quiet)))
            stack.down(services, cfg=cfg, progress=quiet)
            warm.append(_timed(lambda: stack.up(services, cfg=cfg, progress=quiet)))
        finally:
            stack.down(services, cfg=cfg, progress=quiet)
            shutil.rmtree(cfg.paths.home, ignore_errors=True)
        progress(f"run {i + 1}/{runs}: cold up {cold[-1]:.1f}s, warm up {warm[-1]:.1f}s")
    result = {"bench": "up", "services": services, "runs": runs,
              "cold_up_s": _summary(cold), "warm_up_s": _summary(warm), "machine": machine(),
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    record(base, result)
    return result


def _summary(xs: list[float]) -> dict:
    return {"min": round(min(xs), 1), "median": round(statistics.median(xs), 1), "max": round(max(xs), 1)}


def record(cfg: LabConfig, result: dict) -> Path:
    out = cfg.paths.home / "bench" / "results.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        f.write(json.dumps(result) + "\n")
    return out
