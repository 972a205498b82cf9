"""The audit's arithmetic (labsupport.lessons.audit.tally) on made-up row sets: no services."""

import pytest

from labsupport.lessons.audit import StoredRow, tally

T0 = 1_764_054_000_000  # 2025-11-25T07:00:00Z, a minute boundary
M = 60_000


def stored(*ids_at, bucket="2025-11-25T07", shard=0):
    return [StoredRow(i, ms, bucket, shard, 50.0) for i, ms in ids_at]


def ids(prefix, n, minute):
    return {f"{prefix}{k}": T0 + minute * M + k * 100 for k in range(n)}


def test_everything_once_is_clean():
    produced = {**ids("a", 5, 0), **ids("b", 3, 1)}
    r = tally(T0, T0 + 2 * M, produced, stored(*produced.items()), {T0: 5, T0 + M: 3},
              published={i: 1 for i in produced})
    assert (r.produced, r.landed, r.missing, r.duplicated, r.under_counted, r.stored_twice) == (8, 8, 0, 0, 0, 0)
    assert r.published_twice == 0 and r.clean and r.notes == []
    assert [(m["aggregate"], m["distinct_rows"]) for m in r.minutes] == [(5, 5), (3, 3)]


def test_an_over_count_in_one_minute_and_an_under_count_in_another_are_both_reported():
    produced = {**ids("a", 5, 0), **ids("b", 5, 1)}
    r = tally(T0, T0 + 2 * M, produced, stored(*produced.items()), {T0: 7, T0 + M: 3})
    assert r.aggregate == r.distinct_rows == 10  # the totals agree, the minutes do not
    assert (r.duplicated, r.under_counted) == (2, 2)
    assert [(m["duplicated"], m["under_counted"]) for m in r.minutes] == [(2, 0), (0, 2)]
    assert not r.clean


def test_source_duplicates_are_published_twice_not_duplicated():
    produced = ids("a", 4, 0)
    copies = {i: 1 for i in produced} | {"a0": 2, "a3": 3}
    r = tally(T0, T0 + M, produced, stored(*produced.items()), {T0: 4}, published=copies)
    assert (r.published_twice, r.duplicated, r.under_counted) == (2, 0, 0)
    assert r.minutes[0]["published_twice"] == 2
    assert not r.clean  # the source's duplicates are worth a look, even though the stream counted right


def test_without_a_topic_published_twice_is_unknown_and_said_so():
    produced = ids("a", 2, 0)
    r = tally(T0, T0 + M, produced, stored(*produced.items()), {T0: 2})
    assert r.published_twice is None and r.minutes[0]["published_twice"] is None
    assert any("no topic" in n for n in r.notes)
    assert r.clean  # nothing known is wrong
    assert r.as_dict()["published_twice"] is None


def test_the_same_id_in_two_buckets_is_stored_twice_and_the_sink_counted_it_twice():
    produced = ids("a", 3, 0)
    rows = stored(*produced.items()) + stored(("a1", produced["a1"]), bucket="2025-11-25")  # a second layout
    r = tally(T0, T0 + M, produced, rows, {T0: 4})
    assert (r.stored_twice, r.landed, r.distinct_rows, r.duplicated) == (1, 3, 3, 1)


def test_the_same_id_in_two_shards_or_at_two_times_is_stored_twice():
    produced = ids("a", 3, 0)
    rows = stored(*produced.items()) + stored(("a0", produced["a0"]), shard=3) + stored(("a2", T0 + M + 5))
    r = tally(T0, T0 + 2 * M, produced, rows, {T0: 3, T0 + M: 1})
    assert r.stored_twice == 2
    assert [m["stored_twice"] for m in r.minutes] == [2, 0]  # each id once, at its earliest key
    assert (r.duplicated, r.under_counted) == (0, 0)  # a2 is a distinct row of minute 1 too, counted there


def test_missing_and_unexpected():
    produced = ids("a", 4, 0)
    rows = stored(*[(i, ms) for i, ms in produced.items() if i != "a2"], ("zz", T0 + 10))
    r = tally(T0, T0 + M, produced, rows, {T0: 4})
    assert (r.produced, r.landed, r.missing, r.unexpected) == (4, 3, 1, 1)
    assert r.minutes[0]["missing"] == 1 and not r.clean


def test_a_partial_window_audits_produced_ids_exactly_and_the_aggregate_by_whole_minutes():
    minute = ids("a", 10, 0)  # a0..a9 at T0 + 0 .. 900 ms
    since = T0 + 500  # a5..a9 are in the range
    produced = {i: ms for i, ms in minute.items() if ms >= since}
    r = tally(since, T0 + M, produced, stored(*minute.items()), {T0: 10})
    assert (r.produced, r.landed, r.unexpected) == (5, 5, 0)
    assert (r.aggregate, r.distinct_rows, r.duplicated) == (10, 10, 0)


def test_quarantined_is_per_minute_and_makes_it_unclean():
    produced = ids("a", 2, 0)
    r = tally(T0, T0 + 2 * M, produced, stored(*produced.items()), {T0: 2}, quarantined={T0 + M: 3})
    assert r.quarantined == 3 and [m["quarantined"] for m in r.minutes] == [0, 3] and not r.clean


def test_latency_percentiles_of_landed_rows():
    produced = ids("a", 3, 0)
    rows = [StoredRow(i, ms, "b", 0, lat) for (i, ms), lat in zip(produced.items(), (10.0, 20.0, 30.0))]
    r = tally(T0, T0 + M, produced, rows, {T0: 3})
    assert r.latency_ms["p50"] == 20.0


def test_an_event_set_aside_at_ingestion_is_dead_lettered_not_missing():
    from labsupport.lessons.audit import tally

    produced = {"a": 60_000, "b": 60_500, "c": 61_000}
    report = tally(60_000, 120_000, produced, [StoredRow("a", 60_000, "h", 0), StoredRow("b", 60_500, "h", 0)],
                   {60_000: 2}, dead_lettered={"c"})
    assert (report.landed, report.missing, report.dead_lettered) == (2, 0, 1)
    assert not report.clean  # accounted for, but still something to look at


def test_the_audit_reads_every_replica_when_it_opens_its_own_session(monkeypatch):
    """A ring that just lost a node to kill -9 can hold a quorum-acknowledged row on one
    replica only (audit.every_replica_session's docstring): only ALL is sure to find it."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT

    from labsupport import schema
    from labsupport.config import LabConfig
    import importlib

    audit_mod = importlib.import_module("labsupport.lessons.audit")

    opened = []

    def connect(cfg, keyspace=None, **cluster_kw):
        opened.append(cluster_kw["execution_profiles"][EXEC_PROFILE_DEFAULT].consistency_level)
        raise ConnectionError("no Cassandra in a unit test")

    monkeypatch.setattr(schema, "connect", connect)
    with pytest.raises(ConnectionError):
        audit_mod.audit(0, 60, cfg=LabConfig())
    assert opened == [ConsistencyLevel.ALL]
