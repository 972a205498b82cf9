import json
from datetime import datetime, timedelta, timezone

from labsupport.events import FIELDS, Profile, count_between, events_between

T0 = datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc)


def test_same_window_same_events():
    a = list(events_between(T0, T0 + timedelta(seconds=30)))
    b = list(events_between(T0, T0 + timedelta(seconds=30)))
    assert a == b and len(a) == count_between(T0, T0 + timedelta(seconds=30))


def test_adjacent_windows_partition_the_whole():
    whole = [e["event_id"] for e in events_between(T0, T0 + timedelta(minutes=2))]
    parts = [e["event_id"] for e in events_between(T0, T0 + timedelta(seconds=70))] + \
            [e["event_id"] for e in events_between(T0 + timedelta(seconds=70), T0 + timedelta(minutes=2))]
    assert whole == parts and len(set(whole)) == len(whole)


def test_schema_and_time_bounds():
    for e in events_between(T0, T0 + timedelta(seconds=5)):
        assert tuple(e) == FIELDS
        assert e["event_time"].startswith("2026-11-25T07:00:0") and e["event_time"].endswith("Z")


def test_bursts_multiply_the_rate():
    p = Profile(rate=10, burst_every=60, burst_seconds=10, burst_factor=10)
    assert p.count_at(0) == 100 and p.count_at(30) == 10


def test_fractional_rate_averages_out():
    p = Profile(rate=2.5, burst_every=0)
    assert abs(sum(p.count_at(s) for s in range(4000)) / 4000 - 2.5) < 0.1


def test_parse_time_reads_back_the_wire_format_and_api_offsets():
    from labsupport.times import iso_ms, parse_iso as parse_time

    ms = 1_795_651_200_123
    assert round(parse_time(iso_ms(ms)).timestamp() * 1000) == ms
    assert parse_time("2026-11-26T00:00:00+00:00") == parse_time("2026-11-26T00:00:00Z")
    assert parse_time("2026-11-26T01:00:00+01:00").timestamp() == 1_795_651_200


# ---- the event contract, stated once in labsupport.events and obeyed by all three ----------
import ast  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from labsupport.events import EVENT_FIELDS, OPTIONAL, REQUIRED, make_event  # noqa: E402

DAG = Path(__file__).resolve().parents[2] / "dags" / "ingest_events.py"
#: contract kind -> the Python types json.loads gives for it
PY_TYPES = {"string": (str,), "timestamp": (str,), "number": (int, float), "object": (dict, type(None))}


def _dag_check():
    """The DAG's FIELDS, OPTIONAL_FIELDS and _check_event, taken from its source (the
    DAG module itself needs Airflow, which the lab venv does not have)."""
    wanted = {"FIELDS", "OPTIONAL_FIELDS", "MalformedResponse", "_iso", "_check_event", "dead_letter_topic",
              "oversized", "MAX_REQUEST_SIZE", "RECORD_OVERHEAD"}
    body = [n for n in ast.parse(DAG.read_text()).body
            if (isinstance(n, ast.Assign) and n.targets[0].id in wanted)
            or (isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in wanted)]
    ns = {"datetime": datetime, "timezone": timezone, "timedelta": timedelta}
    exec(compile(ast.Module(body, []), str(DAG), "exec"), ns)
    return ns


def test_the_dags_copy_of_the_contract_is_the_contract():
    ns = _dag_check()
    kinds = {f.name: tuple(PY_TYPES[f.kind]) for f in EVENT_FIELDS}
    assert {k: v if isinstance(v, tuple) else (v,) for k, v in ns["FIELDS"].items()} == kinds
    assert tuple(ns["OPTIONAL_FIELDS"]) == OPTIONAL == ("payload",)


def test_the_api_produces_every_field_with_its_kind():
    e = make_event(Profile(), 1_795_651_200, 0, 1)
    assert tuple(e) == FIELDS
    for f in EVENT_FIELDS:
        assert isinstance(e[f.name], PY_TYPES[f.kind]) and not isinstance(e[f.name], bool), f.name


@pytest.mark.parametrize("change,ok", [({}, True), ({"payload": ...}, True), ({"payload": None}, True),
                                       ({"payload": "unit=C"}, False), ({"source_id": ...}, False),
                                       ({"value": "21.5"}, False), ({"value": True}, False)])
def test_the_dag_accepts_exactly_what_the_contract_allows(change, ok):
    """The same cases the stream's validation is tested with (tests/unit/test_stream_validation.py)."""
    ns = _dag_check()
    e = {**make_event(Profile(), 1_795_651_200, 0, 1), **change}
    e = {k: v for k, v in e.items() if v is not ...}
    assert set(REQUIRED) | set(OPTIONAL) == set(FIELDS)
    if ok:
        ns["_check_event"](e, 1_795_651_200, 1_795_651_201, "test")
    else:
        with pytest.raises(ns["MalformedResponse"]):
            ns["_check_event"](e, 1_795_651_200, 1_795_651_201, "test")


def test_the_dag_sets_aside_to_the_dead_letter_topic_the_lab_audits():
    from labsupport.ingest.topics import dead_letter_topic

    assert _dag_check()["dead_letter_topic"]("lesson02-x") == dead_letter_topic("lesson02-x") == "lesson02-x.dead-letter"


def test_the_dag_knows_a_record_kafka_would_refuse_before_sending_it():
    """The API's `oversized` fault is past the limit; a normal event is far below it."""
    from labsupport.ingest.events_api.faults import OVERSIZED_BYTES

    oversized = _dag_check()["oversized"]
    normal = json.dumps(make_event(Profile(), 1_795_651_200, 0, 1)).encode()
    assert oversized(b"sensor-001", normal) is None
    big = json.dumps({**make_event(Profile(), 1_795_651_200, 0, 1), "payload": {"blob": "x" * OVERSIZED_BYTES}})
    reason = oversized(b"sensor-001", big.encode())
    assert reason and "1,048,576-byte limit" in reason
