"""Property-based fuzzing of every events API endpoint and parameter (hypothesis).

The contract under test: whatever a client sends, the API never answers an unplanned 5xx
(only the simulated faults a rule asked for), every 4xx carries a JSON ``detail`` saying
why, and whatever it accepts (a profile, a fault rule) keeps every later request working.

Values mix the plausible (so the accepting paths run too) with the absurd: NaN, ±inf,
1e400, negative epochs, the year 9999, huge integers, unicode digits, wrong JSON types.
"""

from __future__ import annotations

import json
import math
import os
import string
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from labsupport import events
from labsupport.ingest.events_api.app import create_app
from labsupport.ingest.events_api.validation import EARLIEST, LATEST, MAX_PAGE, MAX_RATE, MAX_WINDOW_S

T0 = 1_767_225_660

#: ~60 examples a test keep the whole file at a few seconds in the unit suite;
#: LAB_FUZZ_EXAMPLES=5000 for a deep run. No example database is written into the repo.
FUZZ = settings(max_examples=int(os.environ.get("LAB_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

CLIENT = TestClient(create_app(events.Profile()), raise_server_exceptions=False)

SPECIAL_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e308", "-1", "-0", "0",
                   "4102444801", "１２３", "1_000", " 5 ", "0x10", "", " ", "\x00"]
SPECIAL_TIMES = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z",
                 "2026-01-01T00:00:00", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+14:00",
                 "2100-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2026-13-01T00:00:00Z", "Z"]

wild = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                 st.sampled_from(SPECIAL_NUMBERS), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def mostly(sane, absurd):
    """Sane 70 % of the time: with every parameter absurd at once, the accepting paths
    (and whatever follows an accepted setting) would hardly ever run."""
    return st.integers(0, 9).flatmap(lambda k: sane if k < 7 else absurd)


def _as_text(x) -> str:
    return x if isinstance(x, str) else repr(x)


absurd_time = st.one_of(st.floats().map(repr), st.integers(-10**30, 10**30).map(str),
                        st.sampled_from(SPECIAL_NUMBERS + SPECIAL_TIMES),
                        st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=30))


@st.composite
def window_request(draw) -> dict:
    """since/until/limit/cursor: a plausible window (start anywhere in the allowed span,
    length around the cap, cursor inside it) or absurd values, parameter by parameter."""
    since = draw(st.integers(int(EARLIEST), int(LATEST) - MAX_WINDOW_S) | st.floats(EARLIEST, LATEST))
    length = draw(mostly(st.sampled_from([0.5, 1, 60, 3600, MAX_WINDOW_S]) | st.floats(0.001, MAX_WINDOW_S),
                         st.sampled_from([0, -1, -1e-9, MAX_WINDOW_S + 0.001]) | st.floats(-10, 10 * MAX_WINDOW_S)))
    first = math.ceil(since)
    params = {
        "since": draw(mostly(st.just(repr(since)), absurd_time)),
        "until": draw(mostly(st.just(repr(since + length)), absurd_time)),
        "limit": draw(mostly(st.integers(1, 40) | st.just(MAX_PAGE),
                             st.integers(-5, 0) | st.integers(MAX_PAGE + 1, 10**30) | st.sampled_from(SPECIAL_NUMBERS))),
        "cursor": draw(mostly(st.none() | st.builds(lambda k, i: f"{first + k}.{i}", st.integers(0, 3),
                                                    st.integers(0, 10**9 - 1)),
                              st.text(max_size=30) | st.from_regex(r"\A\d{1,13}\.\d{1,10}\Z")
                              | st.sampled_from(["1e9.0", "-1.-1", "１.１", "1..2", ".", "9" * 5000 + ".0"]))),
    }
    return {k: _as_text(v) for k, v in params.items() if v is not None}


def assert_answered_sanely(r) -> None:
    """Never an unplanned 5xx; every 4xx a JSON body whose detail says why."""
    path = "/faults/rules/{name}" if r.request.url.path.startswith("/faults/rules/") else r.request.url.path
    event(f"{r.request.method} {path} → {r.status_code}")  # counted by --hypothesis-show-statistics
    if r.status_code >= 500:
        assert "(simulated" in r.text, f"{r.request.method} {r.request.url} → {r.status_code}: {r.text[:300]}"
    elif r.status_code >= 400:
        body = r.json()
        detail = body["detail"]
        assert detail, body
        if isinstance(detail, list):  # FastAPI's validation errors: one per field, each with msg
            assert all(isinstance(d, dict) and d.get("msg") for d in detail), body
        else:
            assert isinstance(detail, str), body


def send(method: str, path: str, body):
    """JSON as Python writes it: NaN and Infinity literals included (httpx refuses them,
    a careless client doesn't)."""
    return CLIENT.request(method, path, content=json.dumps(body), headers={"content-type": "application/json"})


def reset() -> None:
    CLIENT.put("/profile", json={})
    CLIENT.delete("/faults")


@FUZZ
@given(params=window_request(), endpoint=st.sampled_from(["/events", "/count"]),
       drop=st.sampled_from([None, None, None, "since", "until"]))
def test_window_endpoints_never_fail_and_explain_refusals(params, endpoint, drop):
    params = {k: v for k, v in params.items() if k != drop}
    r = CLIENT.get(endpoint, params=params)
    assert_answered_sanely(r)
    if r.status_code == 200:  # accepted: a real window within every cap
        since, until = float(params["since"]), float(params["until"])
        assert EARLIEST <= since < until <= LATEST and until - since <= MAX_WINDOW_S


profile_field = {
    "rate": mostly(st.floats(1e-6, 1000), st.sampled_from([0, -1, MAX_RATE + 1, 1e300]) | wild),
    "burst_every": mostly(st.sampled_from([0, 60, 600]) | st.integers(120, MAX_WINDOW_S),
                          st.integers(-10, -1) | st.integers(MAX_WINDOW_S + 1) | wild),
    "burst_seconds": mostly(st.integers(0, 120), st.integers(max_value=-1) | st.integers(MAX_WINDOW_S + 1) | wild),
    "burst_factor": mostly(st.floats(1e-3, 100), st.sampled_from([0, -1, 1e308]) | wild),
    "sources": mostly(st.integers(1, 10_000), st.integers(max_value=0) | st.integers(10_001) | wild),
    "seed": mostly(st.text(min_size=1, max_size=8), st.just("") | st.text(min_size=201) | wild),
}


@FUZZ
@given(body=st.fixed_dictionaries({}, optional=profile_field) | wild)
def test_an_accepted_profile_keeps_every_later_request_working(body):
    reset()
    r = send("PUT", "/profile", body)
    assert_answered_sanely(r)
    if r.status_code != 200:
        assert CLIENT.get("/profile").json() == CLIENT.put("/profile", json={}).json()  # unchanged
        return
    # the costliest windows the caps allow, under the accepted profile
    for params in ({"since": T0, "until": T0 + MAX_WINDOW_S}, {"since": LATEST - 1, "until": LATEST}):
        count = CLIENT.get("/count", params=params)
        assert count.status_code == 200, count.text
        page = CLIENT.get("/events", params={**params, "limit": 50})
        assert page.status_code == 200, page.text
        assert page.json()["count"] == min(50, count.json()["count"])


fault_field = {
    "error_rate": mostly(st.floats(0, 1), st.floats(1, 1e9, exclude_min=True) | st.floats(max_value=-1e-9) | wild),
    "throttle_rate": mostly(st.floats(0, 1), st.floats(1, 1e9, exclude_min=True) | wild),
    "retry_after_s": mostly(st.integers(0, 3600), st.integers(max_value=-1) | st.integers(3601) | wild),
    "delay_ms": mostly(st.sampled_from([0, 1]), st.integers(max_value=-1) | st.integers(120_001) | wild),
    "malformed_rate": mostly(st.floats(0, 1), st.floats(1, exclude_min=True, allow_infinity=False) | wild),
    "malformed_kind": mostly(st.sampled_from(["json", "schema"]), st.text(max_size=6) | wild),
    "outage_s": mostly(st.sampled_from([0, 0.5, 3600]), st.floats(86_400, exclude_min=True) | wild),
    "scope_since": mostly(st.floats(EARLIEST, LATEST), st.floats(max_value=-1e-9) | st.floats(LATEST + 1) | wild),
    "scope_until": mostly(st.floats(EARLIEST, LATEST), st.floats(max_value=-1e-9) | st.floats(LATEST + 1) | wild),
    "skip": mostly(st.integers(0, 3), st.integers(max_value=-1) | wild),
    "budget": mostly(st.none() | st.integers(0, 3), st.integers(max_value=-1) | wild),
    "seed": mostly(st.integers(), wild),
    "name": mostly(st.from_regex(r"\A[a-z0-9_.-]{1,10}\Z"), st.text(alphabet=string.printable, max_size=70) | wild),
}


@FUZZ
@given(body=st.fixed_dictionaries({}, optional=fault_field) | wild, how=st.sampled_from(["put", "post"]))
def test_fault_rules_that_make_no_sense_are_refused(body, how):
    reset()
    r = send("PUT", "/faults", body) if how == "put" else send("POST", "/faults/rules", body)
    assert_answered_sanely(r)
    described = CLIENT.get("/faults")
    assert described.status_code == 200 and json.loads(described.text) is not None
    if r.status_code != 200:
        return
    for rule in described.json()["rules"]:
        assert rule["error_rate"] + rule["throttle_rate"] <= 1
        if rule["scope_since"] is not None and rule["scope_until"] is not None:
            assert rule["scope_since"] < rule["scope_until"]
        if rule["name"] is not None:  # a name given can be lifted again
            assert CLIENT.delete(f"/faults/rules/{quote(rule['name'], safe='')}").status_code == 200
    if all(rule["delay_ms"] <= 1 for rule in described.json()["rules"]):
        assert_answered_sanely(CLIENT.get("/events", params={"since": T0, "until": T0 + 1, "limit": 5}))


@FUZZ
@given(name=st.text(max_size=80), raw=st.binary(max_size=40),
       target=st.sampled_from([("PUT", "/profile"), ("PUT", "/faults"), ("POST", "/faults/rules")]))
def test_any_bytes_or_rule_name_get_a_reason_not_a_crash(name, raw, target):
    reset()
    assert_answered_sanely(CLIENT.request(target[0], target[1], content=raw,
                                          headers={"content-type": "application/json"}))
    assert_answered_sanely(CLIENT.delete(f"/faults/rules/{quote(name, safe='')}"))


def test_every_endpoint_of_the_spec_is_fuzzed():
    """If an endpoint is added, this file must learn it too."""
    fuzzed = {("GET", "/events"), ("GET", "/count"), ("PUT", "/profile"), ("PUT", "/faults"),
              ("POST", "/faults/rules"), ("DELETE", "/faults/rules/{name}"),
              # no parameters and no body to fuzz: called above by every example
              ("GET", "/profile"), ("GET", "/faults"), ("DELETE", "/faults")}
    unparametrised = {("GET", "/health"), ("GET", "/metrics")}
    spec = CLIENT.get("/openapi.json").json()["paths"]
    assert {(m.upper(), p) for p, ops in spec.items() for m in ops} == fuzzed | unparametrised
    for method, path in unparametrised:
        assert CLIENT.request(method, path).status_code == 200
