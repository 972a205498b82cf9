"""The one percentile the lab reports (the audit's latencies, the benchmarks' p50/p99)."""

from __future__ import annotations

import math
from typing import Iterable


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0–100): the smallest value with at least
    ``pct`` % of the values at or below it, so a p99 is always an observed value and
    never an interpolation between two. NaN for no values."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    if not 0 <= pct <= 100:
        raise ValueError(f"pct must be within 0..100, not {pct}")
    return xs[max(0, min(len(xs) - 1, math.ceil(pct / 100 * len(xs)) - 1))]
