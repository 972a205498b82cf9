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

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from labsupport import events
from labsupport.ingest.events_api.faults import FaultState, FaultSwitches
from labsupport.ingest.events_api.metrics import ApiMetrics
from labsupport.ingest.events_api.validation import (DEFAULT_PAGE, LIMITS_DOC, MAX_PAGE, ProfileBody, decode_cursor,
                                                     encode_cursor, parse_window, refused_request)


def _profile_from_env() -> events.Profile:
    raw = os.environ.get("LAB_EVENTS_PROFILE", "").strip()
    return events.Profile(**ProfileBody(**json.loads(raw)).model_dump()) if raw else events.Profile()


def create_app(profile: events.Profile | None = None) -> FastAPI:
    app = FastAPI(title="streamlab events API",
                  description="Deterministic sensor events per half-open time window, with fault switches. "
                              + LIMITS_DOC)
    state = {"profile": profile or _profile_from_env()}
    faults = FaultState()
    metrics = ApiMetrics()
    app.state.faults, app.state.metrics = faults, metrics
    app.add_exception_handler(RequestValidationError, refused_request)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    @app.get("/health")
    async def health() -> dict:
        """Answered on the event loop itself, never queued behind the worker threads that
        generate pages: busy is not down."""
        return {"status": "ok"}

    @app.get("/events")
    async def get_events(since: str = Query(..., description="window start, inclusive"),
                         until: str = Query(..., description="window end, exclusive"),
                         limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE),
                         cursor: str | None = Query(None, description="next_cursor of the previous page")):
        s, u = parse_window(since, until)
        pos = decode_cursor(cursor, events.window_seconds(s, u))
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
        # generated in a worker thread: a full page of a capped window is ~0.2 s of CPU,
        # which on the event loop would stall every other request, /health included
        page, nxt = await run_in_threadpool(events.events_page, s, u, pos, limit, state["profile"])
        page = faults.oversize(page, s, u)
        body = {"since": events.iso_ms(int(s * 1000)), "until": events.iso_ms(int(u * 1000)),
                "count": len(page), "next_cursor": encode_cursor(nxt), "events": page}
        text = await run_in_threadpool(json.dumps, body, separators=(",", ":"))
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
    def count(since: str = Query(..., description="window start, inclusive"),
              until: str = Query(..., description="window end, exclusive")) -> dict:
        """How many events a window holds: what a complete fetch must return."""
        s, u = parse_window(since, until)
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
