"""`lab bench` (all) at its fast sizes on the real stack: every step runs, the report is
complete and consistent (every figure present, ratios computed from the figures, every
record the steps claim found in its topic or table, over-bound steps marked), its files
are written, and the stack is left as found. Speed is never asserted."""

from __future__ import annotations

import json
import time

from labsupport import schema
from labsupport.bench import producer_rungs, recovery, report, sink_ceiling, suite
from labsupport.config import get_config
from labsupport.stack.services.stream import StreamService


def test_a_fast_bench_writes_a_complete_consistent_report_and_leaves_the_stack_as_found(lab_stack):
    cfg = get_config()
    stream_was_running = StreamService(cfg).running()
    t0 = time.monotonic()
    result, folder = suite.run(suite.FAST, mode="fast", cfg=cfg)
    print(f"fast bench: {time.monotonic() - t0:.0f} s, steps {[(s['name'], s['seconds']) for s in result['steps']]}")

    found = result["problems"]
    assert found["failed"] == [] and found["missing"] == [] and found["inconsistent"] == [], found
    assert result["complete"] is True
    assert [s["name"] for s in result["steps"]] == list(suite.STEPS)
    assert {"kafka", "cassandra"} <= set(result["services_running"])
    for step in result["steps"]:
        assert step["over_bound"] == (step["seconds"] > step["bound_s"])
    assert result["headline"] == report.ratios(result["figures"])
    assert all(v is not None for v in result["headline"].values())
    # what the steps did, from the real systems: every producer rung's records in its topic,
    # every synthetic row written, every event of the ladder and the burst committed
    assert [r["name"] for r in result["sections"]["producers"]["rungs"]] == list(producer_rungs.RUNGS)
    for rung in result["sections"]["end_to_end"]["rungs"]:  # `lab bench stream`'s ladder, from the real pipeline
        assert rung["landed"] == rung["sent"] > 0, rung
        lat = rung["latency_s"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 120, lat
        assert rung["cpu"]["ms_per_1k_events"]["cassandra"] > 0
        assert rung["cpu"]["ms_per_1k_events"]["stream driver (python)"] > 0
    burst = result["sections"]["end_to_end"]["burst"]
    assert burst["factor"] == suite.FAST.burst_factor and burst["landed"] == burst["sent"] > 0
    rec = result["sections"]["recovery"]
    assert rec["service_was"] == ("running" if stream_was_running else "stopped")
    if not stream_was_running:  # the sandboxed stream is fed: it must recover to a real batch
        assert rec["until"] == "first committed batch" and rec["batch_after"] > rec["batch_before"] >= 0
    assert list(rec["phases_s"]) == list(recovery.PHASES)
    assert abs(sum(rec["phases_s"].values()) - rec["seconds"]) < 0.1

    # the files: under the lab home, the JSON is the report, the markdown quotes every figure
    assert folder.parent == cfg.paths.home / "bench"
    assert json.loads((folder / "report.json").read_text()) == json.loads(json.dumps(result, default=str))
    md = (folder / "report.md").read_text()
    assert all(f"`{name}`" in md for name in report.FIGURES)
    assert result["plots"] and all((folder / p).stat().st_size > 0 for p in result["plots"])
    history = json.loads((cfg.paths.home / "bench" / "results.jsonl").read_text().splitlines()[-1])
    assert history["folder"] == str(folder) and history["headline"] == result["headline"]

    # left as found: the stream service's state, no scratch keyspace
    assert StreamService(cfg).running() == stream_was_running
    cluster, session = schema.connect(cfg)
    try:
        keyspaces = {r.keyspace_name for r in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")}
    finally:
        cluster.shutdown()
    assert not keyspaces & {sink_ceiling.KEYSPACE, recovery.SANDBOX}
