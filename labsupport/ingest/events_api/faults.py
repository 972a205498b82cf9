"""Runtime fault switches: what a misbehaving upstream API does to its clients.

One switch set per app, replaced as a whole over HTTP (``PUT /faults``). Each request
for events asks ``decide()`` which fault, if any, it gets. Faults can be narrowed to
requests whose window overlaps ``[scope_since, scope_until)`` so a lesson (or a test)
breaks the runs of chosen windows while the schedule keeps running cleanly, and
limited by ``skip``/``budget`` so e.g. exactly the first attempt sees a bad body.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labsupport.ingest.events_api.validation import EARLIEST, LATEST

#: the longest a fault may hold: a delay above any client's timeout is already a timeout,
#: and an outage or Retry-After of a day outlasts any lesson
MAX_DELAY_MS = 120_000
MAX_OUTAGE_S = 86_400.0
MAX_RETRY_AFTER_S = 3_600

#: an oversized event's payload: past the producer's 1 MiB record limit (Kafka's default)
OVERSIZED_BYTES = 1_200_000
MAX_OVERSIZED_BYTES = 8_000_000

FaultKind = Literal["outage", "error", "throttle", "malformed"]


def picked(event_id: str, share: float) -> bool:
    """Whether ``event_id`` is among ``share`` of all ids: by its hash, so the same on
    every request, retry and process."""
    return int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) < share * 0x1_0000_0000


class FaultSwitches(BaseModel):
    """One fault rule. Rules that cannot mean anything (shares outside 0..1 or adding up
    to more than 1, an empty or reversed scope, NaN, durations past the caps) are refused
    with a 422 naming the field, instead of being stored and misbehaving later."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests answered 500")
    throttle_rate: float = Field(0.0, ge=0, le=1, description="share answered 429 with Retry-After "
                                                              "(error_rate + throttle_rate ≤ 1)")
    retry_after_s: int = Field(1, ge=0, le=MAX_RETRY_AFTER_S, description="Retry-After of a 429, seconds")
    delay_ms: int = Field(0, ge=0, le=MAX_DELAY_MS,
                          description="added to every response; above the client's timeout it is a timeout")
    malformed_rate: float = Field(0.0, ge=0, le=1, description="share of 200s with a broken body")
    malformed_kind: Literal["json", "schema"] = Field("json", description="truncated JSON or an event missing a field")
    oversized_share: float = Field(0.0, ge=0, le=1,
                                   description="share of events, chosen by event id (the same ones on every request "
                                               "and retry, as a real upstream's bad record), served with a payload "
                                               "inflated past Kafka's record limit")
    oversized_bytes: int = Field(OVERSIZED_BYTES, ge=1, le=MAX_OVERSIZED_BYTES,
                                 description="the inflated payload's size in bytes")
    outage_s: float = Field(0.0, ge=0, le=MAX_OUTAGE_S,
                            description="answer 503 to everything for this many seconds from now")
    scope_since: float | None = Field(None, ge=EARLIEST, le=LATEST,
                                      description="faults only hit windows overlapping [scope_since, scope_until)")
    scope_until: float | None = Field(None, ge=EARLIEST, le=LATEST)
    skip: int = Field(0, ge=0, description="let this many in-scope requests through before faulting")
    budget: int | None = Field(None, ge=0, description="at most this many faulty answers, then behave")
    seed: int = 0
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                             description="lets DELETE /faults/rules/{name} lift just this rule")

    @model_validator(mode="after")
    def _makes_sense(self) -> "FaultSwitches":
        if self.error_rate + self.throttle_rate > 1:
            raise ValueError(f"error_rate + throttle_rate = {self.error_rate + self.throttle_rate:g}: "
                             "shares of the same requests cannot add up to more than 1")
        if None not in (self.scope_since, self.scope_until) and self.scope_until <= self.scope_since:
            raise ValueError("scope_until must be after scope_since: the scope [scope_since, scope_until) is empty")
        return self


class _Rule:
    """One switch set plus the counters its ``skip``/``budget`` consume."""

    def __init__(self, switches: FaultSwitches) -> None:
        self.switches = switches
        self.outage_until = time.time() + switches.outage_s if switches.outage_s else 0.0
        self.rng = random.Random(switches.seed)
        self.seen = 0
        self.faulted = 0

    def in_scope(self, since: float, until: float) -> bool:
        s = self.switches
        lo = s.scope_since if s.scope_since is not None else float("-inf")
        hi = s.scope_until if s.scope_until is not None else float("inf")
        return since < hi and until > lo

    def describe(self) -> dict:
        left = max(0.0, self.outage_until - time.time())
        return {**self.switches.model_dump(), "outage_remaining_s": round(left, 1), "faulted": self.faulted}

    def decide(self) -> FaultKind | None:
        s = self.switches
        if time.time() < self.outage_until:
            return "outage"
        self.seen += 1
        if self.seen <= s.skip or (s.budget is not None and self.faulted >= s.budget):
            return None
        roll = self.rng.random()
        kind: FaultKind | None = None
        if roll < s.error_rate:
            kind = "error"
        elif roll < s.error_rate + s.throttle_rate:
            kind = "throttle"
        elif self.rng.random() < s.malformed_rate:
            kind = "malformed"
        if kind:
            self.faulted += 1
        return kind


class FaultState:
    """The active rules. A request is judged by the first rule whose scope it overlaps,
    so scoped rules (each its own window range) can be active side by side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[_Rule] = []

    def set(self, switches: FaultSwitches) -> dict:
        """Replace every rule with this one (an all-default switch set = no faults)."""
        with self._lock:
            self.rules = [] if switches == FaultSwitches() else [_Rule(switches)]
        return self.describe()

    def add(self, switches: FaultSwitches) -> dict:
        with self._lock:
            self.rules.append(_Rule(switches))
        return self.describe()

    def remove(self, name: str) -> bool:
        with self._lock:
            kept = [r for r in self.rules if r.switches.name != name]
            found, self.rules = len(kept) != len(self.rules), kept
        return found

    def describe(self) -> dict:
        return {"rules": [r.describe() for r in self.rules]}

    def _rule_for(self, since: float, until: float) -> _Rule | None:
        return next((r for r in self.rules if r.in_scope(since, until)), None)

    def decide(self, since: float, until: float) -> FaultKind | None:
        """The fault this request gets, or None for a clean answer."""
        with self._lock:
            rule = self._rule_for(since, until)
            return rule.decide() if rule else None

    def delay_s(self, since: float, until: float) -> float:
        rule = self._rule_for(since, until)
        return rule.switches.delay_ms / 1000 if rule else 0.0

    def malformed_kind(self, since: float, until: float) -> str:
        rule = self._rule_for(since, until)
        return rule.switches.malformed_kind if rule else "json"

    def oversize(self, page: list[dict], since: float, until: float) -> list[dict]:
        """``page`` with the events the rule picks inflated (``oversized_share``): not a
        per-request fault but the content of the answer, so ``skip``/``budget`` don't apply.
        The event stays valid against the contract; only its size is wrong."""
        rule = self._rule_for(since, until)
        share = rule.switches.oversized_share if rule else 0.0
        if not share:
            return page
        blob = "x" * rule.switches.oversized_bytes
        return [{**ev, "payload": {"blob": blob}} if picked(ev["event_id"], share) else ev for ev in page]

    def retry_after_s(self, since: float, until: float) -> int:
        rule = self._rule_for(since, until)
        return rule.switches.retry_after_s if rule else 1
