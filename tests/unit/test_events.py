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
