"""The event model shared by the events API, the ingestion DAG, the stream and the audit.

Events are a pure function of time: every whole second ``s`` has ``count_at(s)``
events whose ids, times and contents derive from ``(seed, s, i)``. So any window
``[since, until)`` always yields the same events, a retried or backfilled fetch is
idempotent, and two adjacent windows never share or miss an event. The audit can
recompute exactly what the API produced for any range.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from labsupport.times import epoch, iso_ms

EVENT_TYPES = ("reading", "reading", "reading", "reading", "status", "alert")


# ---- the event contract: stated here once --------------------------------------------------
@dataclass(frozen=True)
class EventField:
    """One field of an event on the wire (a JSON object, one per Kafka record).

    ``kind`` is the JSON type it must have: "string", "timestamp" (a string, ISO-8601 with
    a zone, e.g. ``2026-11-25T07:00:00.123Z``), "number" (finite) or "object"."""

    name: str
    kind: str
    required: bool = True


#: The fields every part of the pipeline agrees on: the events API produces them, the
#: ingestion DAG checks them (``dags/ingest_events.py`` keeps a copy, Airflow's venv cannot
#: import this package; ``tests/unit/test_events.py`` ties the copy to this), and the stream
#: validates them (``labsupport.stream.validation``). Other fields are allowed and ignored.
#:
#: ``payload`` is optional. It carries details nothing downstream reads or keys on (the
#: tables keep it as text, no aggregate uses it), so refusing an event for lacking it would
#: throw away a good reading for nothing; the DAG used to require it while the stream did
#: not, and a source without details would have been stopped at the DAG only. When present
#: it must be a JSON object (or null), never a bare string: one shape for whoever reads it.
EVENT_FIELDS = (
    EventField("event_id", "string"),
    EventField("event_time", "timestamp"),
    EventField("source_id", "string"),
    EventField("event_type", "string"),
    EventField("value", "number"),
    EventField("payload", "object", required=False),
)
FIELDS = tuple(f.name for f in EVENT_FIELDS)
REQUIRED = tuple(f.name for f in EVENT_FIELDS if f.required)
OPTIONAL = tuple(f.name for f in EVENT_FIELDS if not f.required)
#: the identifiers (event_id, source_id, event_type) are keys in Cassandra: bounded, not blank
IDENTIFIERS = ("event_id", "source_id", "event_type")
MAX_IDENTIFIER_CHARS = 256


@dataclass(frozen=True)
class Profile:
    """How many events each second carries.

    ``rate`` events/s at baseline; every ``burst_every`` seconds a burst of
    ``burst_seconds`` seconds runs at ``burst_factor`` × rate (0 disables bursts)."""

    rate: float = 50.0
    burst_every: int = 600
    burst_seconds: int = 60
    burst_factor: float = 10.0
    sources: int = 200
    seed: str = "streamlab"

    def count_at(self, second: int) -> int:
        base = self.rate
        if self.burst_every and second % self.burst_every < self.burst_seconds:
            base *= self.burst_factor
        whole = int(base)
        frac = base - whole  # spread a fractional rate deterministically over seconds
        return whole + (1 if frac and _unit(self.seed, second, -1) < frac else 0)


def _unit(seed: str, second: int, i: int) -> float:
    h = hashlib.blake2b(f"{seed}|{second}|{i}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def event_id(seed: str, second: int, i: int) -> str:
    return hashlib.blake2b(f"{seed}|{second}|{i}".encode(), digest_size=12).hexdigest()


def make_event(profile: Profile, second: int, i: int, n: int) -> dict:
    rnd = random.Random(event_id(profile.seed, second, i))
    source = rnd.randrange(profile.sources)
    etype = rnd.choice(EVENT_TYPES)
    offset_ms = (i * 1000) // max(n, 1)
    value = round(20.0 + 5.0 * rnd.gauss(0, 1) + (source % 10), 3)
    return {
        "event_id": event_id(profile.seed, second, i),
        "event_time": iso_ms(second * 1000 + offset_ms),
        "source_id": f"sensor-{source:04d}",
        "event_type": etype,
        "value": value,
        "payload": {"unit": "C", "firmware": f"1.{source % 7}.{rnd.randrange(10)}"},
    }


def _seconds(since: datetime | float, until: datetime | float) -> range:
    s, u = epoch(since), epoch(until)
    # half-open [since, until): a second belongs to the window its start lies in
    import math

    return range(math.ceil(s), math.ceil(u))


def events_between(since: datetime | float, until: datetime | float,
                   profile: Profile = Profile()) -> Iterator[dict]:
    """Every event with ``since <= event second < until``, in time order."""
    for second in _seconds(since, until):
        n = profile.count_at(second)
        for i in range(n):
            yield make_event(profile, second, i, n)


def count_between(since: datetime | float, until: datetime | float, profile: Profile = Profile()) -> int:
    return sum(profile.count_at(s) for s in _seconds(since, until))


def window_seconds(since: datetime | float, until: datetime | float) -> range:
    """The whole seconds a half-open window ``[since, until)`` covers."""
    return _seconds(since, until)


def events_page(since: datetime | float, until: datetime | float, start: tuple[int, int] | None,
                limit: int, profile: Profile = Profile()) -> tuple[list[dict], tuple[int, int] | None]:
    """At most ``limit`` events of ``[since, until)`` from position ``start`` = (second, index).

    Returns the events and the position of the next one (None when the window is
    exhausted). Pages are cut by position, not by time, so a burst second larger than
    a page is split cleanly and concatenated pages equal ``events_between``."""
    seconds = _seconds(since, until)
    second, index = start if start is not None else (seconds.start, 0)
    out: list[dict] = []
    while second < seconds.stop:
        n = profile.count_at(second)
        while index < n:
            if len(out) == limit:
                return out, (second, index)
            out.append(make_event(profile, second, index, n))
            index += 1
        second, index = second + 1, 0
    return out, None
