"""The events API without a server: pagination, determinism, fault switches, metrics."""

import pytest
from fastapi.testclient import TestClient

from labsupport import events
from labsupport.ingest.events_api.app import create_app
from labsupport.ingest.events_api.validation import LATEST, MAX_RATE, MAX_WINDOW_S

T0 = 1_767_225_660  # 2026-01-01T00:01:00Z: a baseline (non-burst) minute
PROFILE = events.Profile()


@pytest.fixture
def client():
    return TestClient(create_app(PROFILE))


def fetch_all(client, since, until, limit):
    out, cursor, pages = [], None, 0
    while True:
        params = {"since": since, "until": until, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = client.get("/events", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["events"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            return out, pages


def test_pages_concatenate_to_the_whole_window_in_order(client):
    got, pages = fetch_all(client, T0, T0 + 60, limit=700)
    expected = list(events.events_between(T0, T0 + 60, PROFILE))
    assert len(expected) == events.count_between(T0, T0 + 60, PROFILE) > 700
    assert pages == -(-len(expected) // 700)
    assert got == expected


def test_page_size_does_not_change_the_events(client):
    a, _ = fetch_all(client, T0, T0 + 30, limit=1)
    b, _ = fetch_all(client, T0, T0 + 30, limit=10_000)
    assert [e["event_id"] for e in a] == [e["event_id"] for e in b]


def test_same_window_same_ids_across_apps_and_adjacent_windows_partition():
    one, two = TestClient(create_app(PROFILE)), TestClient(create_app(PROFILE))
    a, _ = fetch_all(one, T0, T0 + 20, 10_000)
    b, _ = fetch_all(two, T0, T0 + 20, 10_000)
    assert a == b
    left, _ = fetch_all(one, T0, T0 + 10, 10_000)
    right, _ = fetch_all(one, T0 + 10, T0 + 20, 10_000)
    assert left + right == a


def test_window_is_half_open_and_times_are_utc(client):
    got, _ = fetch_all(client, "2026-01-01T00:01:00Z", "2026-01-01T00:01:02Z", 10_000)
    assert got and all(e["event_time"].startswith("2026-01-01T00:01:0") and e["event_time"].endswith("Z")
                       for e in got)
    assert {e["event_time"][:19] for e in got} == {"2026-01-01T00:01:00", "2026-01-01T00:01:01"}
    assert set(got[0]) == set(events.FIELDS)


def test_bad_requests_are_named(client):
    assert client.get("/events", params={"since": "2026-01-01T00:00:00", "until": T0}).status_code == 422
    assert client.get("/events", params={"since": T0 + 5, "until": T0}).status_code == 422
    r = client.get("/events", params={"since": T0, "until": T0 + 5, "cursor": f"{T0 + 99}.0"})
    assert r.status_code == 422 and "outside the window" in r.text


def test_error_rate_gives_500s_at_about_that_rate(client):
    client.put("/faults", json={"error_rate": 0.5, "seed": 1})
    codes = [client.get("/events", params={"since": T0, "until": T0 + 1}).status_code for _ in range(200)]
    assert set(codes) == {200, 500} and 70 < codes.count(500) < 130


def test_throttle_sends_retry_after(client):
    client.put("/faults", json={"throttle_rate": 1.0, "retry_after_s": 7})
    r = client.get("/events", params={"since": T0, "until": T0 + 1})
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"


def test_malformed_json_and_schema(client):
    client.put("/faults", json={"malformed_rate": 1.0, "malformed_kind": "json"})
    r = client.get("/events", params={"since": T0, "until": T0 + 1})
    with pytest.raises(ValueError):
        r.json()
    client.put("/faults", json={"malformed_rate": 1.0, "malformed_kind": "schema"})
    body = client.get("/events", params={"since": T0, "until": T0 + 1}).json()
    assert "source_id" not in body["events"][-1] and "source_id" in body["events"][0]


def test_outage_then_recovery_and_clear(client):
    client.put("/faults", json={"outage_s": 60})
    assert client.get("/events", params={"since": T0, "until": T0 + 1}).status_code == 503
    assert client.get("/faults").json()["rules"][0]["outage_remaining_s"] > 50
    client.delete("/faults")
    assert client.get("/events", params={"since": T0, "until": T0 + 1}).status_code == 200


def test_scope_skip_budget_and_named_rules(client):
    client.post("/faults/rules", json={"name": "late", "error_rate": 1.0, "scope_since": T0 + 60,
                                       "scope_until": T0 + 120, "skip": 1, "budget": 2})
    assert client.get("/events", params={"since": T0, "until": T0 + 60}).status_code == 200  # out of scope
    codes = [client.get("/events", params={"since": T0 + 60, "until": T0 + 61}).status_code for _ in range(5)]
    assert codes == [200, 500, 500, 200, 200]
    assert client.delete("/faults/rules/late").status_code == 200
    assert client.delete("/faults/rules/late").status_code == 404


def test_delay_is_applied(client):
    import time

    client.put("/faults", json={"delay_ms": 300})
    t = time.perf_counter()
    client.get("/events", params={"since": T0, "until": T0 + 1})
    assert time.perf_counter() - t >= 0.3


def test_profile_is_configurable_and_count_follows_it(client):
    client.put("/profile", json={"rate": 5, "burst_every": 0})
    assert client.get("/count", params={"since": T0, "until": T0 + 10}).json()["count"] == 50
    got, _ = fetch_all(client, T0, T0 + 10, 10_000)
    assert len(got) == 50


def test_metrics_count_requests_errors_and_events(client):
    client.get("/events", params={"since": T0, "until": T0 + 2})
    client.put("/faults", json={"error_rate": 1.0})
    client.get("/events", params={"since": T0, "until": T0 + 2})
    text = client.get("/metrics").text
    n = events.count_between(T0, T0 + 2, PROFILE)
    assert f"events_api_events_served_total {float(n)}" in text
    assert 'events_api_errors_total{kind="error"} 1.0' in text
    assert 'events_api_requests_total{route="/events",status="500"} 1.0' in text


def test_openapi_is_served(client):
    assert "/events" in client.get("/openapi.json").json()["paths"]


# --- what the API refuses (the caps live in events_api/validation.py) --------------------


def refusal(r) -> str:
    """The reason of a 4xx: our own one-line detail, or FastAPI's per-field messages."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    detail = r.json()["detail"]
    return detail if isinstance(detail, str) else "; ".join(f"{d['loc'][-1]}: {d['msg']}" for d in detail)


@pytest.mark.parametrize("endpoint", ["/events", "/count"])
@pytest.mark.parametrize("since, until, reason", [
    ("nan", T0, "not a finite time"),
    (T0, "inf", "not a finite time"),
    ("1e400", T0, "not a finite time"),
    (-60, 0, "outside 1970-01-01..2100-01-01"),
    ("9999-12-31T23:00:00Z", "9999-12-31T23:59:59Z", "outside 1970-01-01..2100-01-01"),
    ("0001-01-01T00:00:00+01:00", T0, "outside"),
    (T0, T0, "must not be empty"),
    (T0 + 5, T0, "must not be empty"),
    (T0, T0 + MAX_WINDOW_S + 1, f"over the {MAX_WINDOW_S} s cap"),
])
def test_absurd_windows_are_refused_on_every_window_endpoint(client, endpoint, since, until, reason):
    assert reason in refusal(client.get(endpoint, params={"since": since, "until": until}))


def test_the_longest_window_allowed_is_served(client):
    r = client.get("/count", params={"since": T0, "until": T0 + MAX_WINDOW_S})
    assert r.status_code == 200 and r.json()["count"] == events.count_between(T0, T0 + MAX_WINDOW_S, PROFILE)
    r = client.get("/events", params={"since": LATEST - 1, "until": LATEST, "limit": 3})
    assert r.status_code == 200 and r.json()["count"] == 3


@pytest.mark.parametrize("params, reason", [
    ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
    ({"limit": 10_001}, "limit: Input should be less than or equal to 10000"),
    ({"limit": "1e3"}, "limit: Input should be a valid integer"),
    ({"cursor": "x"}, "not one this API issued"),
    ({"cursor": "１７６７２２５６６０.0"}, "not one this API issued"),  # unicode digits int() would take
    ({"cursor": "9" * 5000 + ".0"}, "not one this API issued"),
    ({"cursor": f"{T0 + 99}.0"}, "outside the window"),
])
def test_bad_pages_and_cursors_are_refused(client, params, reason):
    assert reason in refusal(client.get("/events", params={"since": T0, "until": T0 + 5, **params}))


@pytest.mark.parametrize("body, reason", [
    ({"rate": 0}, "rate: Input should be greater than 0"),
    ({"rate": MAX_RATE + 1}, "rate: Input should be less than or equal to 100000"),
    ({"sources": 0}, "sources: Input should be greater than or equal to 1"),
    ({"sources": 10_001}, "sources: Input should be less than or equal to 10000"),
    ({"burst_every": 30}, "burst_seconds=60 is longer than burst_every=30"),
    ({"rate": 20_000}, "bursts would reach 2e+05 events/s"),
    ({"burst_factor": 1e308}, "bursts would reach"),
    ({"seed": ""}, "seed: String should have at least 1 character"),
    ({"rate": 5, "burst_facter": 2}, "burst_facter: Extra inputs are not permitted"),
])
def test_profiles_that_would_break_later_requests_are_refused_and_change_nothing(client, body, reason):
    before = client.get("/profile").json()
    assert reason in refusal(client.put("/profile", json=body))
    assert client.get("/profile").json() == before


def test_non_finite_json_is_refused_with_a_reason_not_a_500(client):
    for path in ("/profile", "/faults", "/faults/rules"):
        for raw in ('{"rate": NaN}', '{"outage_s": Infinity}', "Infinity", '{"scope_since": -Infinity}'):
            r = client.request("PUT" if path != "/faults/rules" else "POST", path, content=raw,
                               headers={"content-type": "application/json"})
            assert r.status_code == 422, (path, raw, r.status_code, r.text)


@pytest.mark.parametrize("body, reason", [
    ({"error_rate": 1.5}, "error_rate: Input should be less than or equal to 1"),
    ({"error_rate": 0.7, "throttle_rate": 0.6}, "error_rate + throttle_rate = 1.3"),
    ({"scope_since": T0 + 60, "scope_until": T0}, "scope [scope_since, scope_until) is empty"),
    ({"scope_since": -1}, "scope_since: Input should be greater than or equal to 0"),
    ({"delay_ms": 10**9}, "delay_ms: Input should be less than or equal to 120000"),
    ({"outage_s": 10**9}, "outage_s: Input should be less than or equal to 86400"),
    ({"retry_after_s": -1}, "retry_after_s: Input should be greater than or equal to 0"),
    ({"name": "a/b"}, "name: String should match pattern"),
    ({"malformed_kind": "xml"}, "malformed_kind: Input should be 'json' or 'schema'"),
])
def test_fault_rules_that_make_no_sense_are_refused(client, body, reason):
    assert reason in refusal(client.post("/faults/rules", json=body))
    assert reason in refusal(client.put("/faults", json=body))
    assert client.get("/faults").json() == {"rules": []}


def test_openapi_states_the_caps(client):
    description = client.get("/openapi.json").json()["info"]["description"]
    assert f"at most {MAX_WINDOW_S} s" in description and "1..10000 events" in description


def test_the_oversized_fault_inflates_the_same_events_on_every_request():
    """A real upstream's bad record comes back on every retry: picked by event id."""
    from labsupport.ingest.events_api.faults import FaultState, FaultSwitches
    from labsupport.events import Profile, events_between

    state = FaultState()
    state.set(FaultSwitches(oversized_share=0.05, oversized_bytes=2000))
    page = list(events_between(1_795_651_200, 1_795_651_260, Profile()))
    first, again = state.oversize(page, 1_795_651_200, 1_795_651_260), state.oversize(page, 1_795_651_200, 1_795_651_260)
    big = [e["event_id"] for e in first if e["payload"] == {"blob": "x" * 2000}]
    assert big and big == [e["event_id"] for e in again if e["payload"] == {"blob": "x" * 2000}]
    assert 0 < len(big) < len(page) / 5
    assert [e["event_id"] for e in first] == [e["event_id"] for e in page]  # nothing dropped, nothing added
    state.set(FaultSwitches(oversized_share=1.0, scope_since=1_795_651_300, scope_until=1_795_651_360))
    assert state.oversize(page, 1_795_651_200, 1_795_651_260) == page  # out of scope: untouched
