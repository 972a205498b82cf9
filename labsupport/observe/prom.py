"""A small Prometheus HTTP API client (instant and range queries, metric names)."""

from __future__ import annotations

import time

import httpx

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError


class PromError(LabError):
    """Prometheus refused a query or could not be reached."""


def _get(path: str, params: dict, cfg: LabConfig | None) -> dict:
    cfg = cfg or get_config()
    try:
        r = httpx.get(f"{cfg.prometheus}{path}", params=params, timeout=10)
    except httpx.HTTPError as exc:
        raise PromError(f"Prometheus at {cfg.prometheus} unreachable ({type(exc).__name__})",
                        "start it with `./lab up prometheus`") from None
    body = r.json()
    if body.get("status") != "success":
        raise PromError(f"Prometheus rejected the query: {body.get('error', r.text)[:200]}", "fix the PromQL")
    return body["data"]


def query(expr: str, cfg: LabConfig | None = None) -> list[dict]:
    """Instant vector: [{'metric': {...}, 'value': [ts, '1.5']}, ...]."""
    return _get("/api/v1/query", {"query": expr}, cfg)["result"]


def scalar(expr: str, cfg: LabConfig | None = None, default: float = 0.0) -> float:
    """Sum of an instant query's values (``default`` when it has none)."""
    result = query(expr, cfg)
    return sum(float(s["value"][1]) for s in result) if result else default


def target_down(job: str, service: str, cfg: LabConfig | None = None) -> bool:
    """Prometheus's last scrape of ``service``'s target in ``job`` failed (a Kafka broker,
    a Cassandra node: each node is a target with its ``service`` label). A target never
    scraped is not down."""
    return scalar(f'up{{job="{job}",service="{service}"}}', cfg, default=-1) == 0


def wait_at_least(expr: str, minimum: float, timeout: float = 60, poll: float = 1.0,
                  cfg: LabConfig | None = None) -> float:
    """Poll ``scalar(expr)`` until it reaches ``minimum`` (a counter catching up with what
    was just done: Prometheus only sees it at its next scrape); returns the value."""
    deadline = time.monotonic() + timeout
    while (value := scalar(expr, cfg)) < minimum:
        if time.monotonic() > deadline:
            raise PromError(f"{expr} is {value:g} after {timeout:.0f} s, expected at least {minimum:g}",
                            "check the target in Prometheus (`lab status`) and `lab lint-metrics`")
        time.sleep(poll)
    return value


def query_range(expr: str, minutes: float = 15, step: float = 5, cfg: LabConfig | None = None) -> list[dict]:
    end = time.time()
    return _get("/api/v1/query_range", {"query": expr, "start": end - minutes * 60, "end": end, "step": step},
                cfg)["result"]


def metric_names(cfg: LabConfig | None = None) -> list[str]:
    return _get("/api/v1/label/__name__/values", {}, cfg)
