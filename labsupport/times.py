"""The lab's one home for time: every timestamp is UTC, and these are the only
conversions between the forms it travels in (datetimes, epoch seconds, epoch
milliseconds, ISO-8601 with a ``Z`` on the wire and in Airflow's API).

The DAG keeps two one-line copies of its own: it runs in Airflow's virtualenv and never
imports labsupport.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_DURATION_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}



def utc(t: datetime | float | int | str) -> datetime:
    """An aware UTC datetime from a datetime (naive ones are taken as UTC), epoch
    seconds, or ISO-8601 text (``Z`` or an offset)."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t.strip().replace("Z", "+00:00"))
    if isinstance(t, datetime):
        return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    return datetime.fromtimestamp(float(t), tz=timezone.utc)


def epoch(t: datetime | float | int | str) -> float:
    """Epoch seconds of any of the forms `utc` accepts."""
    return float(t) if isinstance(t, (int, float)) else utc(t).timestamp()


def epoch_ms(t: datetime | float | int | str) -> int:
    return int(round(epoch(t) * 1000))


def parse_iso(text: str) -> datetime:
    """An aware UTC datetime from ISO-8601 as on the wire or from the Airflow API."""
    return utc(str(text))


def to_iso(t: datetime | float | int | str) -> str:
    """ISO-8601 UTC with a ``Z`` (Airflow's API and the events API take it)."""
    if isinstance(t, datetime) and t.tzinfo is None:
        raise ValueError(f"{t} is naive; pass an aware UTC datetime")
    return utc(t).isoformat().replace("+00:00", "Z")


def iso_ms(ms: int) -> str:
    """UTC ISO-8601 with milliseconds and a Z: the event's time format on the wire."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def minute_floor(t: datetime) -> datetime:
    return utc(t).replace(second=0, microsecond=0)


def duration_s(text: str) -> float:
    """Seconds in a Prometheus/Go-style duration (``5s``, ``1m30s``, ``250ms``): the
    form the scrape interval is configured in."""
    parts = _DURATION_PART.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r} (expected e.g. 5s, 1m30s, 250ms)")
    return sum(float(n) * _DURATION_UNIT_S[u] for n, u in parts)
