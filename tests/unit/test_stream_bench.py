"""The stream benchmark's arithmetic: percentiles, the sustained verdict, the tables."""

from __future__ import annotations

import json

from labsupport.bench import loadgen, stream as stream_bench


def _gen(sent=1000, first_ms=1_000_000, seconds=1.0):
    return {"sent": sent, "send_rate": sent / seconds, "first_ms": first_ms,
            "last_ms": first_ms + int(seconds * 1000) - 1, "cpu_s": 0.1}


def _batch(committed_ms, event_ms, replayed=False):
    return {"batch_id": 0, "rows": len(event_ms), "committed_ms": committed_ms, "event_ms": event_ms,
            "handover_s": 0.1, "write_s": 0.2, "replayed": replayed}


def test_percentile_is_nearest_rank():
    from labsupport.stats import percentile

    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 50) == 50.0
    assert percentile(xs, 99) == 99.0
    assert percentile(xs, 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_a_rung_that_keeps_up_is_sustained():
    events = list(range(1_000_000, 1_001_000))  # 1,000 events over one second
    batches = [_batch(1_000_600, events[:500]), _batch(1_001_100, events[500:])]  # one every 0.5 s
    r = stream_bench.summarize_rung(1000, _gen(), batches, [], {"cassandra": {"MutationStage": 0.4, "C2 CompilerThre": 0.1}},
                                    wall_s=1.2)
    assert r["landed"] == 1000
    assert r["sustained"] is True
    assert 0 < r["latency_s"]["p50"] <= r["latency_s"]["p99"] <= r["latency_s"]["max"] <= 1.0
    assert r["cpu"]["ms_per_1k_events"] == {"cassandra": 500}
    assert r["cpu"]["top_threads_ms_per_1k_events"]["cassandra"][0] == ("MutationStage", 400)


def test_a_rung_that_falls_behind_is_not_sustained():
    events = list(range(1_000_000, 1_001_000))
    late = [_batch(1_030_000, events)]  # committed 30 s later: latency and span blow up
    r = stream_bench.summarize_rung(1000, _gen(), late, [], {}, wall_s=30)
    assert r["sustained"] is False
    assert r["throughput"] < 50


def test_a_growing_latency_is_not_sustained_even_when_short():
    # 30 s of input at 100/s; each 2 s batch commits 2.5 s after the previous one: the
    # stream is 20 % short, latency grows from ~1 s to ~9 s though p99 stays under 10 s
    batches = [_batch(1_000_000 + 2000 * (k + 1) + 500 * k,
                      list(range(1_000_000 + 2000 * k, 1_000_000 + 2000 * (k + 1), 10)))
               for k in range(15)]
    r = stream_bench.summarize_rung(100, _gen(sent=3000, seconds=30), batches, [], {}, wall_s=40)
    assert r["latency_s"]["p99"] <= stream_bench.SUSTAINED_P99_S
    assert r["latency_growth_s"] > stream_bench.SUSTAINED_GROWTH_S and r["sustained"] is False


def test_a_rung_that_commits_less_than_was_sent_is_not_sustained_though_latency_looks_flat():
    # 4 s triggers, 18,000 rows committed per second against 20,000 sent: in 30 s the
    # latency medians barely move, but the stream falls further behind every batch
    batches = [_batch(1_000_000 + 4000 * (k + 1) + 1500, list(range(1_000_000 + 4000 * k, 1_000_000 + 4000 * (k + 1), 4)))
               for k in range(7)]
    batches = [{**b, "rows": 72_000} for b in batches]
    gen = _gen(sent=600_000, seconds=30)
    assert gen["send_rate"] == 20_000 and stream_bench.commit_rate(batches) == 18_000
    r = stream_bench.summarize_rung(20_000, gen, batches, [], {}, wall_s=35)
    assert r["latency_growth_s"] < stream_bench.SUSTAINED_GROWTH_S and r["latency_s"]["p99"] <= 10
    assert r["sustained"] is False
    on_pace = [{**b, "rows": 80_000} for b in batches]
    assert stream_bench.summarize_rung(20_000, gen, on_pace, [], {}, wall_s=35)["sustained"] is True


def test_commit_rate_is_the_input_rate_while_keeping_up_and_capacity_when_not():
    keeping_up = [_batch(1000 * t, list(range(2000))) for t in range(1, 11)]  # 2,000 rows every second
    assert stream_bench.commit_rate(keeping_up) == 2000
    behind = [_batch(3000 * t, list(range(2000))) for t in range(1, 11)]  # same batches, 3 s apart
    assert round(stream_bench.commit_rate(behind)) == 667
    partial_last = keeping_up + [_batch(11_000, list(range(300)))]  # the generator stopped mid-interval
    assert stream_bench.commit_rate(partial_last) == 2000
    assert stream_bench.commit_rate(keeping_up[:2]) is None


def test_replayed_batches_do_not_count_twice():
    events = list(range(1_000_000, 1_000_100))
    batches = [_batch(1_000_500, events), _batch(1_000_900, events, replayed=True)]
    r = stream_bench.summarize_rung(100, _gen(sent=100, seconds=0.1), batches, [], {}, wall_s=1)
    assert r["landed"] == 100


def test_tables_render_every_rung():
    events = list(range(1_000_000, 1_001_000))
    r = stream_bench.summarize_rung(1000, _gen(), [_batch(1_001_100, events)], [], {"kafka": {"kafka": 0.2}}, wall_s=1)
    text = stream_bench.table({"rungs": [r, {**r, "target_rate": 2000}]})
    assert text.count("\n") == 3 and "| 2,000 |" in text
    assert "| kafka | 200 | 200 |" in stream_bench.cpu_table({"rungs": [r, {**r, "target_rate": 2000}]})


def test_loadgen_events_are_valid_lab_events_with_unique_ids():
    from labsupport.events import FIELDS

    k1, v1 = loadgen.event("run1", 1, 1_700_000_000_123)
    _, v2 = loadgen.event("run1", 2, 1_700_000_000_123)
    e1, e2 = json.loads(v1), json.loads(v2)
    assert set(e1) == set(FIELDS)
    assert e1["event_time"] == "2023-11-14T22:13:20.123Z"
    assert k1.decode() == e1["source_id"]
    assert e1["event_id"] != e2["event_id"]


def test_thread_families_drop_the_thread_number():
    from labsupport.bench import cpuprof

    assert cpuprof.family("MutationStage-3") == "MutationStage"
    assert cpuprof.family("C2 CompilerThre0") == "C2 CompilerThre"
    assert cpuprof.family("GC Thread#1") == "GC Thread"
    assert cpuprof.family("python") == "python"


def test_this_process_is_profiled_by_thread():
    import os

    from labsupport.bench import cpuprof

    sum(i * i for i in range(200_000))  # burn a little CPU in the main thread
    snap = cpuprof.snapshot({"me": [os.getpid()]})
    assert sum(snap["me"].values()) > 0


def test_behind_without_a_cap_the_commit_rate_is_the_capacity_not_the_input_rate():
    # 4,000/s in, 2,000/s of capacity, no cap on a batch: each batch takes what arrived while
    # the one before ran, so batches double, run back to back, and start as fast as input
    # arrives. Timed by commits the rate is the capacity; timed by batch starts it would read
    # the input rate (lesson 09 then "measured" 4,848/s against a predicted 1,605/s)
    rows, start, batches = 2000, 0.0, []
    for _ in range(5):
        took = rows / 2000
        batches.append({**_batch(1000 * (start + took), list(range(rows))), "handover_s": 0.0, "write_s": took})
        start, rows = start + took, int(4000 * took)
    assert stream_bench.commit_rate(batches) == 2000


def test_a_child_claimed_by_a_service_is_not_counted_again_nor_are_its_children():
    # lesson 09's kernel starts the brokers itself: its children include their JVMs, which
    # the bench already counts under each service's own label
    import subprocess
    import sys

    import psutil

    from labsupport.bench import cpuprof
    from labsupport.waits import wait_for

    grandchild = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    service = subprocess.Popen([sys.executable, "-c", grandchild])
    own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wait_for(lambda: psutil.Process(service.pid).children(), 20, "the service's own child", interval=0.05)
        kids = cpuprof.children_by_name(psutil.Process(), claimed={service.pid})
        counted = {pid for pids in kids.values() for pid in pids}
        assert own.pid in counted
        assert service.pid not in counted
        assert not counted & {p.pid for p in psutil.Process(service.pid).children(recursive=True)}
    finally:
        for proc in psutil.Process(service.pid).children(recursive=True) + [psutil.Process(service.pid)]:
            proc.kill()
        own.kill()
        service.wait()
        own.wait()
