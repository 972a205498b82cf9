"""Lesson 10's pure parts: the ring's arcs and shares, consistency arithmetic, where each
node's counts come from and what they add up to, and the wait for a refusal (no Cassandra,
no Prometheus: the driver's own exception classes, Prometheus answers faked)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from cassandra import ConsistencyLevel, ReadTimeout, Unavailable

from labsupport.lessons import consistency, node_writes, ring_outages, ring_stream, token_ownership
from labsupport.lessons.token_ownership import RING_SIZE, Arc, arcs, busiest, ring_table, share_table, shares
from labsupport.stack.services.cassandra import MIN_TOKEN, initial_token

THREE = {f"cassandra-{n}": initial_token(n, 3) for n in (1, 2, 3)}


# ---- the ring ---------------------------------------------------------------------------------------------
def test_the_lab_ring_gives_each_node_a_third_and_the_first_arc_wraps():
    found = arcs(THREE)
    assert [a.node for a in found] == ["cassandra-1", "cassandra-2", "cassandra-3"]
    assert sum(a.size for a in found) == RING_SIZE
    assert all(abs(a.fraction - 1 / 3) < 1e-12 for a in found)
    first = found[0]
    assert first.wraps and first.up_to == MIN_TOKEN and first.after == THREE["cassandra-3"]
    assert not any(a.wraps for a in found[1:])


def test_an_arc_runs_from_after_the_previous_token_up_to_its_own():
    found = arcs({"a": 10, "b": -5, "c": 100})
    assert found == [Arc("b", 100, -5), Arc("a", -5, 10), Arc("c", 10, 100)]
    assert [a.size for a in found] == [RING_SIZE - 105, 15, 90]


def test_one_node_owns_the_whole_ring():
    (alone,) = arcs({"cassandra": 0})
    assert alone.size == RING_SIZE and alone.fraction == 1.0 and alone.wraps


@pytest.mark.parametrize("ring, problem", [({}, "empty"), ({"a": 1, "b": 1}, "share a token"),
                                           ({"a": 2 ** 63}, "outside")])
def test_a_ring_that_is_not_one_token_per_node_is_refused(ring, problem):
    with pytest.raises(ValueError, match=problem):
        arcs(ring)


def test_the_ring_table_lists_each_arc_in_token_order():
    table = ring_table(THREE)
    assert list(table.index) == ["cassandra-1", "cassandra-2", "cassandra-3"]
    assert table.loc["cassandra-2", "owns from (exclusive)"] == THREE["cassandra-1"]
    assert table.loc["cassandra-2", "owns up to (inclusive)"] == THREE["cassandra-2"]
    assert table["share of the ring"].sum() == pytest.approx(1.0, abs=1e-3)


def test_shares_and_the_busiest_node():
    assert shares({"a": 3, "b": 1}) == {"a": 0.75, "b": 0.25}
    assert shares({"a": 0, "b": 0}) == {"a": 0.0, "b": 0.0}
    assert busiest({"a": 6000}) == ("a", 1.0)
    assert busiest({"a": 1, "b": 3, "c": 0}) == ("b", 0.75)
    with pytest.raises(ValueError):
        busiest({})


def test_the_share_table_counts_a_node_without_series_as_zero():
    table = share_table({"naive": {"cassandra-2": 600}, "sharded": {"cassandra-1": 200, "cassandra-2": 200,
                                                                    "cassandra-3": 200}}, ["cassandra-1", "cassandra-2",
                                                                                           "cassandra-3"])
    assert list(table["naive"]) == [0, 600, 0]
    assert list(table["naive (share)"]) == ["0.0%", "100.0%", "0.0%"]
    assert list(table["sharded (share)"]) == ["33.3%"] * 3


# ---- consistency arithmetic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("level, rf, needed", [(ConsistencyLevel.ONE, 3, 1), (ConsistencyLevel.LOCAL_QUORUM, 3, 2),
                                               (ConsistencyLevel.QUORUM, 5, 3), (ConsistencyLevel.ALL, 3, 3),
                                               ("two", 3, 2), (ConsistencyLevel.ANY, 3, 0),
                                               (ConsistencyLevel.LOCAL_QUORUM, 1, 1)])
def test_replicas_needed(level, rf, needed):
    assert consistency.replicas_needed(level, rf) == needed


def test_what_survives_nodes_down_and_what_reads_its_own_writes():
    cl = ConsistencyLevel
    assert consistency.survives(cl.LOCAL_QUORUM, 3, down=1) and not consistency.survives(cl.LOCAL_QUORUM, 3, down=2)
    assert consistency.survives(cl.ONE, 3, down=2) and not consistency.survives(cl.ALL, 3, down=1)
    assert consistency.reads_own_writes(cl.LOCAL_QUORUM, cl.LOCAL_QUORUM, 3)
    assert consistency.reads_own_writes(cl.ONE, cl.ALL, 3) and consistency.reads_own_writes(cl.ALL, cl.ONE, 3)
    assert not consistency.reads_own_writes(cl.ONE, cl.ONE, 3)
    assert not consistency.reads_own_writes(cl.ONE, cl.TWO, 3)  # 1 + 2 = 3: the two sets can miss each other
    assert not consistency.reads_own_writes(cl.ANY, cl.ALL, 3)  # a hint alone is no replica


def test_an_unknown_level_or_replication_factor_is_refused():
    with pytest.raises(ValueError, match="not a consistency level"):
        consistency.replicas_needed("MOST", 3)
    with pytest.raises(ValueError, match="at least 1"):
        consistency.replicas_needed(ConsistencyLevel.ONE, 0)


# ---- each node's counts ----------------------------------------------------------------------------------
def test_a_fresh_keyspace_is_named_by_the_second_and_earlier_runs_are_found_by_name():
    assert node_writes.fresh_keyspace("lesson10_hot", now=1733112345.9) == "lesson10_hot_1733112345"
    names = ["lesson10_hot_1", "lesson10_hot_22", "lesson10_hot_x", "lesson10_hotter_3", "lesson10_rf3_5", "streamlab"]
    session = SimpleNamespace(execute=lambda _q: [SimpleNamespace(keyspace_name=n) for n in names])
    assert node_writes.earlier_runs(session, "lesson10_hot", keep=("lesson10_hot_22",)) == ["lesson10_hot_1"]


def _series(node, table, value):
    return {"metric": {"service": node, "table": table}, "value": [0, str(value)]}


def test_table_writes_groups_each_nodes_series_by_table(monkeypatch):
    asked = []
    monkeypatch.setattr(node_writes.prom, "query", lambda expr, cfg: asked.append(expr) or [
        _series("cassandra-1", "by_hour", 6000), _series("cassandra-2", "by_hour_shard", 2100.0),
        _series("cassandra-3", "by_hour_shard", 3900)])
    found = node_writes.table_writes("lesson10_hot_7", cfg=object())
    assert found == {"by_hour": {"cassandra-1": 6000}, "by_hour_shard": {"cassandra-2": 2100, "cassandra-3": 3900}}
    assert 'keyspace="lesson10_hot_7"' in asked[0] and "by (service, table)" in asked[0]


def test_wait_landed_waits_for_the_sum_and_names_the_counts_when_it_times_out(monkeypatch):
    answers = iter([[_series("cassandra-1", "t", 10)], [_series("cassandra-1", "t", 10), _series("cassandra-2", "t", 20)]])
    monkeypatch.setattr(node_writes.prom, "query", lambda expr, cfg: next(answers))
    monkeypatch.setattr("labsupport.waits.time.sleep", lambda _s: None)
    assert node_writes.wait_landed("ks", "t", 30, timeout=5, cfg=object()) == {"cassandra-1": 10, "cassandra-2": 20}
    monkeypatch.setattr(node_writes.prom, "query", lambda expr, cfg: [_series("cassandra-1", "t", 10)])
    with pytest.raises(node_writes.TimedOut, match="cassandra-1': 10"):
        node_writes.wait_landed("ks", "t", 30, timeout=0, cfg=object())


def test_presence_takes_the_most_each_node_was_seen_to_count():
    acked = {"one_down": 300, "own_writes": 100, "two_down": 300}
    while_up = {"cassandra-1": {"one_down": 300, "own_writes": 100}, "cassandra-2": {"one_down": 300, "own_writes": 100}}
    node1_after = {"cassandra-1": {"one_down": 300, "own_writes": 100, "two_down": 300}}
    delivered = {"cassandra-2": {"two_down": 300}, "cassandra-3": {"one_down": 300, "own_writes": 100, "two_down": 299}}
    table = node_writes.presence(acked, node1_after, while_up, delivered)
    assert list(table.index) == ["cassandra-1", "cassandra-2", "cassandra-3"]
    assert list(table["counted"]) == [700, 700, 699] and list(table["must hold"]) == [700] * 3
    assert list(table["missing"]) == [0, 0, 1]
    assert table.loc["cassandra-2", "two_down"] == 300


# ---- the wait for a refusal ------------------------------------------------------------------------------
def test_wait_refused_retries_timeouts_and_returns_the_refusal(monkeypatch):
    monkeypatch.setattr("labsupport.waits.time.sleep", lambda _s: None)
    refusal = Unavailable("not enough replicas", consistency=ConsistencyLevel.LOCAL_QUORUM, required_replicas=2,
                          alive_replicas=1)
    answers = iter([ReadTimeout("node 2 not convicted yet"), None, refusal])

    def probe():
        answer = next(answers)
        if answer is not None:
            raise answer

    seconds, error = ring_outages.wait_refused(probe, timeout=5)
    assert error is refusal and seconds >= 0


def test_wait_refused_raises_anything_else_and_times_out_with_a_reason(monkeypatch):
    monkeypatch.setattr("labsupport.waits.time.sleep", lambda _s: None)
    with pytest.raises(RuntimeError):
        ring_outages.wait_refused(lambda: (_ for _ in ()).throw(RuntimeError("boom")), timeout=5)
    with pytest.raises(ring_outages.TimedOut, match="kept succeeding or timing out"):
        ring_outages.wait_refused(lambda: None, timeout=0)


def test_the_live_plot_mirrors_a_dashboard_panel_of_each_nodes_writes():
    from labsupport.observe import dashboards

    panel = dashboards.find(node_writes.PANEL)
    assert any("cassandra_table_writes_total" in t.expr and "service" in t.expr for t in panel.targets), panel


# ---- the lab's stream through the outage ------------------------------------------------------------------
def _reading(step, batches, failures, quarantined=0, restarts=0, rows=None):
    return ring_stream.Reading(step, {"batches committed": batches, "rows written": rows or 50 * batches,
                                      "write failures": failures, "query restarts": restarts,
                                      "quarantined": quarantined})


def test_the_streams_counters_are_read_from_its_metrics_and_a_missing_series_is_zero():
    metrics = {"batches_committed_total": 7.0, "write_failures_total": 3.0, "quarantined_total": 0.0,
               "rows_written_total": 350.0, "query_active": 1.0}
    assert ring_stream.counters_of(metrics) == {"batches committed": 7.0, "rows written": 350.0,
                                                "write failures": 3.0, "query restarts": 0.0, "quarantined": 0.0}


def test_each_step_shows_what_it_added_to_each_counter():
    readings = [_reading("one down", 9, 0), _reading("two down", 9, 12, restarts=1), _reading("back", 15, 13, restarts=1)]
    grown = ring_stream.changes(readings)
    assert grown["one down"]["batches committed"] == 9 and grown["one down"]["write failures"] == 0
    assert grown["two down"]["batches committed"] == 0 and grown["two down"]["write failures"] == 12
    assert grown["two down"]["query restarts"] == 1 and grown["back"]["query restarts"] == 0
    assert grown["back"]["batches committed"] == 6 and grown["back"]["write failures"] == 1
    table = _run_with(readings).table()
    assert list(table.index) == ["one down", "two down", "back", "total"]
    assert table.loc["total", "batches committed"] == 15 and table.loc["total", "write failures"] == 13
    assert ring_stream.changes([]) == {}


def _run_with(readings=(), metrics=None, log=""):
    svc = SimpleNamespace(metrics=metrics or (lambda: {}), log_tail=lambda lines, since=0: log)
    run = ring_stream.StreamOnRing(svc, feeder=None, profile=None, cfg=None, default_was_running=False)
    run.readings = list(readings)
    return run


def test_a_reading_waits_for_its_condition_and_for_the_metrics_endpoint(monkeypatch):
    import threading

    import httpx

    monkeypatch.setattr("labsupport.waits.time.sleep", lambda _s: None)
    answers = iter([httpx.ConnectError("starting"), {"write_failures_total": 0.0},
                    {"write_failures_total": 2.0, "batches_committed_total": 4.0}])

    def metrics():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    run = _run_with(metrics=metrics)
    run._starting = threading.Thread(target=lambda: None)
    run._starting.start()
    reading = run.read("two down", until=lambda c: c["write failures"] > 0, timeout=5)
    assert reading.counters["write failures"] == 2 and reading.counters["batches committed"] == 4
    assert run.readings == [reading]
    never = _run_with(metrics=lambda: {"write_failures_total": 0.0})
    never._starting = run._starting
    with pytest.raises(ring_outages.TimedOut, match="a failure"):
        never.read("two down", until=lambda c: c["write failures"] > 0, what="a failure", timeout=0)
    assert never.readings == []


def test_a_failed_start_is_raised_at_the_next_reading():
    import threading

    run = _run_with()
    run._start_error.append(RuntimeError("stream failed to start"))
    run._starting = threading.Thread(target=lambda: None)
    run._starting.start()
    with pytest.raises(RuntimeError, match="failed to start"):
        run.read("one down", timeout=5)


def test_the_failure_lines_are_the_sinks_retries_from_this_sandbox_only():
    log = ("INFO batch 3: 100 rows\n"
           "WARNING batch 4: Cassandra write failed (attempt 1, Unavailable: ...); retrying for 19s more\n"
           "WARNING batch 4: Cassandra write failed (attempt 2, Unavailable: ...); retrying for 18s more\n"
           "ERROR query q failed, restarting from its checkpoint in 3s\n")
    assert [ln.split("(attempt ")[1][:1] for ln in _run_with(log=log).failure_lines(2)] == ["1", "2"]
    assert _run_with(log="INFO batch 1: 50 rows\n").failure_lines() == []


def test_the_put_back_restarts_the_default_stream_only_if_it_ran(monkeypatch):
    from labsupport.lessons import pipeline, ring, sandboxes

    done = []
    monkeypatch.setattr(ring, "use_cassandra_nodes", lambda n, progress=print: done.append(("nodes", n)))
    monkeypatch.setattr(sandboxes, "restore_stream", lambda cfg, progress, start: done.append(("stream", start)))
    monkeypatch.setattr(pipeline, "resume_after", lambda reason, cfg, progress: done.append(("pipeline", reason)))
    monkeypatch.setattr(ring_outages, "get_config", lambda: object())
    monkeypatch.delenv("LAB_CASSANDRA_NODES", raising=False)
    ring_outages.back_to_configured_layout(False, progress=lambda _m: None)
    ring_outages.back_to_configured_layout(True, progress=lambda _m: None)
    assert done == [("nodes", 1), ("stream", False), ("pipeline", "lesson10"),
                    ("nodes", 1), ("stream", True), ("pipeline", "lesson10")]


def test_a_stream_started_but_never_fed_stops_without_touching_its_feeder():
    stopped = []
    run = _run_with()
    run.svc.stop = lambda grace, progress: stopped.append(grace)
    run.stop(progress=lambda _m: None)
    assert stopped == [20], "a feeder never started has no thread to join"
    run.feeder = SimpleNamespace(__exit__=lambda *exc: stopped.append("feeder"))
    run.stop(progress=lambda _m: None)
    assert stopped == [20, "feeder", 20]
