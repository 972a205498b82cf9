"""What the events API accepts: its caps, stated once, and the checks every request and
every profile change passes before any work is done.

Why caps at all: the events are generated on request, and the cost of a request grows
with its window (one step per second of it, even for seconds without events). An
uncapped window (or a NaN, an infinity, the year 9999) turns one request into minutes
of CPU or an exception; capped, the worst request costs ~0.2 s on the lab's 2-core
machine. Every refusal is a 4xx whose ``detail`` names the parameter and the limit.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: the earliest and latest instants a window may touch: 1970-01-01 and 2100-01-01 UTC
EARLIEST = 0.0
LATEST = 4_102_444_800.0
#: the longest window one request may ask for: a day, the longest Airflow data interval
#: the lab schedules (the DAG's default is a minute); longer spans go in several requests
MAX_WINDOW_S = 86_400
#: events per page
MAX_PAGE = 10_000
DEFAULT_PAGE = 5_000
#: the highest rate a profile may reach, bursts included: five times what the lab's stream
#: sustains on its machine, so every lesson's load fits and no count overflows
MAX_RATE = 100_000.0
#: source ids are printed with four digits (sensor-0000 … sensor-9999)
MAX_SOURCES = 10_000

LIMITS_DOC = (f"Windows are half-open [since, until) with since < until, at most {MAX_WINDOW_S} s "
              f"long, between 1970-01-01 and 2100-01-01 UTC; pages hold 1..{MAX_PAGE} events. "
              "A request outside these limits is answered 422 with the reason in `detail`.")

_CURSOR = re.compile(r"(\d{1,12})\.(\d{1,9})", re.ASCII)


def parse_time(raw: str, name: str) -> float:
    """Epoch seconds or ISO-8601 with a zone (a naive time is refused: windows are UTC),
    finite and within [EARLIEST, LATEST]."""
    try:
        t = float(raw)
    except ValueError:
        try:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(422, f"{name}={raw!r} is neither epoch seconds nor ISO-8601") from None
        if dt.tzinfo is None:
            raise HTTPException(422, f"{name}={raw!r} has no time zone; send UTC (…Z)")
        try:
            t = dt.timestamp()
        except (OverflowError, ValueError):  # year 1 with a positive offset, and the like
            t = -1.0
    if not math.isfinite(t):
        raise HTTPException(422, f"{name}={raw!r} is not a finite time")
    if not EARLIEST <= t <= LATEST:
        raise HTTPException(422, f"{name}={raw!r} lies outside 1970-01-01..2100-01-01 UTC "
                                 f"(epoch {EARLIEST:.0f}..{LATEST:.0f})")
    return t


def parse_window(since: str, until: str) -> tuple[float, float]:
    """The window ``[since, until)`` in epoch seconds: non-empty and at most MAX_WINDOW_S."""
    s, u = parse_time(since, "since"), parse_time(until, "until")
    if u <= s:
        raise HTTPException(422, f"until={until!r} is not after since={since!r}: a window [since, until) "
                                 "must not be empty")
    if u - s > MAX_WINDOW_S:
        raise HTTPException(422, f"the window is {u - s:.0f} s long, over the {MAX_WINDOW_S} s cap; "
                                 "ask for it in shorter windows")
    return s, u


def encode_cursor(pos: tuple[int, int] | None) -> str | None:
    return None if pos is None else f"{pos[0]}.{pos[1]}"


def decode_cursor(raw: str | None, window: range) -> tuple[int, int] | None:
    """The position a ``next_cursor`` names, checked against the window's whole seconds."""
    if raw is None:
        return None
    match = _CURSOR.fullmatch(raw)
    if not match:
        raise HTTPException(422, f"cursor={raw!r} is not one this API issued (send next_cursor as is)")
    second, index = int(match[1]), int(match[2])
    if second not in window:
        raise HTTPException(422, f"cursor={raw!r} lies outside the window")
    return second, index


def _json_safe(value):
    """NaN and ±inf as text: JSON has no such numbers, and echoing a refused ``Infinity``
    back in a 422 must not turn into a 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


async def refused_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 (one entry per field, each with ``msg``), safe for any input."""
    return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)


class ProfileBody(BaseModel):
    """A profile every later request can serve: positive rates whose peak stays under
    MAX_RATE, bursts that fit in their period, sources with four-digit ids."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    rate: float = Field(50.0, gt=0, le=MAX_RATE, description="baseline events/s")
    burst_every: int = Field(600, ge=0, le=MAX_WINDOW_S, description="seconds between burst starts; 0: no bursts")
    burst_seconds: int = Field(60, ge=0, le=MAX_WINDOW_S, description="how long a burst lasts, ≤ burst_every")
    burst_factor: float = Field(10.0, gt=0, description="burst rate = burst_factor × rate, at most "
                                                        f"{MAX_RATE:.0f} events/s")
    sources: int = Field(200, ge=1, le=MAX_SOURCES)
    seed: str = Field("streamlab", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _bursts_make_sense(self) -> "ProfileBody":
        if self.burst_every and self.burst_seconds > self.burst_every:
            raise ValueError(f"burst_seconds={self.burst_seconds} is longer than burst_every="
                             f"{self.burst_every}: a burst must end before the next one starts")
        if self.burst_every and self.burst_seconds and self.rate * self.burst_factor > MAX_RATE:
            raise ValueError(f"bursts would reach {self.rate * self.burst_factor:.3g} events/s, over the "
                             f"{MAX_RATE:.0f} events/s cap; lower rate or burst_factor")
        return self
