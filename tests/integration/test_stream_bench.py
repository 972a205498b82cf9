"""`lab bench stream` end to end at a tiny rate: the numbers it records come from the real
pipeline (every event sent is accounted for), not from its own arithmetic. Speed is not
asserted here; docs/benchmarks.md records it."""

from __future__ import annotations

import json

from labsupport.bench import stream as stream_bench
from labsupport.config import get_config


def test_a_small_ladder_accounts_for_every_event_and_records_itself(lab_stack):
    result = stream_bench.bench_stream([300, 600], seconds=4, trigger="1 second", warmup_s=3,
                                       progress=print, stop_when_behind=False)
    assert [r["target_rate"] for r in result["rungs"]] == [300, 600]
    for rung in result["rungs"]:
        assert rung["landed"] == rung["sent"] == rung["target_rate"] * 4
        lat = rung["latency_s"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 120
        assert rung["cpu"]["ms_per_1k_events"]["cassandra"] > 0
        assert rung["cpu"]["ms_per_1k_events"]["stream driver (python)"] > 0
    recorded = (get_config().paths.home / "bench" / "results.jsonl").read_text().splitlines()
    assert json.loads(recorded[-1])["when"] == result["when"]
    assert stream_bench.table(result).count("\n") == 3
