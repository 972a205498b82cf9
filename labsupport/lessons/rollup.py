"""The capstone's per-source, per-minute rollup as arithmetic, with no I/O: what one
minute of one source sums to, how the rows a replay-safe writer leaves are combined on
read, and how the rows of a table spread over its partitions.

The writer keys each rollup row by (source, minute, checkpoint id, batch id): a batch
Spark replays after a crash carries the same id and the same records, so it overwrites
its own rows, while two batches that both held events of one minute write two rows the
reader adds up (``combine``). That is why a replay cannot count a minute twice, and why
a minute split across batches is still whole.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Mapping

from labsupport.lessons.reads import PartitionStats

MINUTE_MS = 60_000
#: float sums of the same values in another order differ in their last bits
_REL_TOL, _ABS_TOL = 1e-9, 1e-6


def minute_of(ms: int) -> int:
    """The start of the minute ``ms`` (epoch milliseconds) falls in."""
    return ms - ms % MINUTE_MS


@dataclass(frozen=True)
class Rollup:
    """Count, min, max and sum of ``value`` over some events (min/max None when none had a value)."""
    events: int = 0
    value_min: float | None = None
    value_max: float | None = None
    value_sum: float = 0.0

    @property
    def value_avg(self) -> float | None:
        return self.value_sum / self.events if self.events else None

    def plus(self, other: "Rollup") -> "Rollup":
        """Two parts of one minute as one: counts and sums add, the extremes of both."""
        lows = [v for v in (self.value_min, other.value_min) if v is not None]
        highs = [v for v in (self.value_max, other.value_max) if v is not None]
        return Rollup(self.events + other.events, min(lows) if lows else None, max(highs) if highs else None,
                      self.value_sum + other.value_sum)

    def add(self, value: float | None) -> "Rollup":
        """This rollup with one more event (its value may be missing: counted, not summed)."""
        return self.plus(Rollup(1, value, value, value or 0.0))

    def same_values(self, other: "Rollup") -> bool:
        """Min, max and sum agree (the sum up to float rounding)."""
        return (self.value_min == other.value_min and self.value_max == other.value_max
                and math.isclose(self.value_sum, other.value_sum, rel_tol=_REL_TOL, abs_tol=_ABS_TOL))


def of_events(events: Iterable[tuple[str, int, float | None]]) -> dict[tuple[str, int], Rollup]:
    """{(source, minute ms): rollup} of (source, event ms, value) triples: the truth a
    rollup table is audited against."""
    out: dict[tuple[str, int], Rollup] = {}
    for source, ms, value in events:
        key = (source, minute_of(ms))
        out[key] = out.get(key, Rollup()).add(value)
    return out


def combine(rows: Iterable[tuple[str, int, Rollup]]) -> dict[tuple[str, int], Rollup]:
    """{(source, minute ms): rollup} from the stored rows, one per (source, minute, batch):
    the sum-on-read that makes per-batch rows one answer per minute."""
    out: dict[tuple[str, int], Rollup] = {}
    for source, minute_ms, part in rows:
        key = (source, minute_ms)
        out[key] = out[key].plus(part) if key in out else part
    return out


def partition_sizes(rows: Iterable[Mapping], key: Callable[[Mapping], Hashable]) -> PartitionStats:
    """How ``rows`` (dicts of column values) spread over the partitions ``key`` gives each."""
    sizes = Counter(key(r) for r in rows)
    return PartitionStats(len(sizes), sum(sizes.values()), max(sizes.values(), default=0))

