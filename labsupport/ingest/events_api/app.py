"""FastAPI app: ``GET /events?since=&until=`` pages through a half-open window.

The events come from ``labsupport.events`` (a pure function of time), so the same
window always answers the same ids, whichever page size or retry fetched it. Bodies
are serialised with ``json.dumps`` directly: FastAPI's generic encoder costs more
than the event generation itself at 5,000 events a page.

Run it with ``uvicorn --factory labsupport.ingest.events_api.app:create_app``; the start
profile comes from ``LAB_EVENTS_PROFILE`` (JSON of ``events.Profile`` fields).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, replace
from datetime import datetime

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from labsupport import events
from labsupport.ingest.events_api.faults import FaultState, FaultSwitches
from labsupport.ingest.events_api.metrics import ApiMetrics

MAX_PAGE = 10_000
DEFAULT_PAGE = 5_000


class ProfileBody(BaseModel):
    rate: float = Field(50.0, ge=0)
    burst_every: int = Field(600, ge=0)
    burst_seconds: int = Field(60, ge=0)
    burst_factor: float = Field(10.0, ge=0)
    sources: int = Field(200, ge=1)
    seed: str = "streamlab"


def parse_time(raw: str, name: str) -> float:
    """Epoch seconds or ISO-8601 (a naive time is refused: windows are UTC)."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"{name}={raw!r} is neither epoch seconds nor ISO-8601") from None
    if dt.tzinfo is None:
        raise HTTPException(422, f"{name}={raw!r} has no time zone; send UTC (…Z)")
    return dt.timestamp()


def encode_cursor(pos: tuple[int, int] | None) -> str | None:
    return None if pos is None else f"{pos[0]}.{pos[1]}"


def decode_cursor(raw: str | None, since: float, until: float) -> tuple[int, int] | None:
    if raw is None:
        return None
    try:
        second, index = (int(p) for p in raw.split("."))
    except ValueError:
        raise HTTPException(422, f"cursor={raw!r} is not one this API issued") from None
    if second not in events.window_seconds(since, until) or index < 0:
        raise HTTPException(422, f"cursor={raw!r} lies outside the window")
    return second, index


def _profile_from_env() -> events.Profile:
    raw = os.environ.get("LAB_EVENTS_PROFILE", "").strip()
    return events.Profile(**ProfileBody(**json.loads(raw)).model_dump()) if raw else events.Profile()


def create_app(profile: events.Profile | None = None) -> FastAPI:
    app = FastAPI(title="streamlab events API",
                  description="Deterministic sensor events per half-open time window, with fault switches.")
    state = {"profile": profile or _profile_from_env()}
    faults = FaultState()
    metrics = ApiMetrics()
    app.state.faults, app.state.metrics = faults, metrics

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/events")
    async def get_events(since: str = Query(..., description="window start, inclusive"),
                         until: str = Query(..., description="window end, exclusive"),
                         limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE),
                         cursor: str | None = Query(None, description="next_cursor of the previous page")):
        s, u = parse_time(since, "since"), parse_time(until, "until")
        if u < s:
            raise HTTPException(422, "until is before since")
        pos = decode_cursor(cursor, s, u)
        if delay := faults.delay_s(s, u):
            await asyncio.sleep(delay)
        fault = faults.decide(s, u)
        if fault == "outage":
            metrics.errors.labels("outage").inc()
            return JSONResponse({"detail": "service unavailable (simulated outage)"}, status_code=503)
        if fault == "error":
            metrics.errors.labels("error").inc()
            return JSONResponse({"detail": "internal error (simulated)"}, status_code=500)
        if fault == "throttle":
            metrics.errors.labels("throttle").inc()
            return JSONResponse({"detail": "too many requests (simulated)"}, status_code=429,
                                headers={"Retry-After": str(faults.retry_after_s(s, u))})
        page, nxt = events.events_page(s, u, pos, limit, state["profile"])
        body = {"since": events.iso_ms(int(s * 1000)), "until": events.iso_ms(int(u * 1000)),
                "count": len(page), "next_cursor": encode_cursor(nxt), "events": page}
        text = json.dumps(body, separators=(",", ":"))
        if fault == "malformed":
            metrics.errors.labels("malformed").inc()
            if faults.malformed_kind(s, u) == "json" or not page:
                text = text[: max(1, len(text) // 2)]
            else:
                broken = dict(page[-1])
                broken.pop("source_id")
                body["events"] = page[:-1] + [broken]
                text = json.dumps(body, separators=(",", ":"))
        else:
            metrics.events_served.inc(len(page))
        return Response(text, media_type="application/json")

    @app.get("/count")
    def count(since: str, until: str) -> dict:
        """How many events a window holds: what a complete fetch must return."""
        s, u = parse_time(since, "since"), parse_time(until, "until")
        return {"count": events.count_between(s, u, state["profile"])}

    @app.get("/profile")
    def get_profile() -> dict:
        return asdict(state["profile"])

    @app.put("/profile")
    def put_profile(body: ProfileBody) -> dict:
        """Change rate and bursts; changes every window's content, so audit with the new one."""
        state["profile"] = replace(state["profile"], **body.model_dump())
        return asdict(state["profile"])

    @app.get("/faults")
    def get_faults() -> dict:
        return faults.describe()

    @app.put("/faults")
    def put_faults(body: FaultSwitches) -> dict:
        """Replace every switch at once (unset fields go back to 'no fault')."""
        return faults.set(body)

    @app.post("/faults/rules")
    def add_fault_rule(body: FaultSwitches) -> dict:
        """Add a rule beside the others (give each a scope so they don't overlap)."""
        return faults.add(body)

    @app.delete("/faults/rules/{name}")
    def remove_fault_rule(name: str) -> dict:
        if not faults.remove(name):
            raise HTTPException(404, f"no fault rule named {name!r}")
        return faults.describe()

    @app.delete("/faults")
    def clear_faults() -> dict:
        return faults.set(FaultSwitches())

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
