"""The pipeline switch's pure parts: when the DAG's next run is stale (a window older
than the latest complete one, which unpausing would run first), what --backfill-from
accepts, which settings count as the lab's, and the status line."""

from __future__ import annotations

import time

import pytest

from labsupport.ingest.settings import IngestSettings
from labsupport.lessons import pipeline


def _next(start: float) -> dict:
    return {"next_dagrun_data_interval_start": start, "next_dagrun_data_interval_end": start + 60,
            "next_dagrun_run_after": start + 60}


def test_a_next_run_older_than_the_latest_complete_window_is_stale():
    now = time.time()
    minute = now // 60 * 60
    assert pipeline._stale(_next(minute - 180), now)      # paused three minutes ago
    assert not pipeline._stale(_next(minute - 60), now)   # the latest complete window
    assert not pipeline._stale({}, now)                   # no next run computed yet


def test_backfill_from_takes_iso_or_a_duration_ago_floored_to_the_minute():
    now = time.time()
    assert pipeline.parse_since("90m") in {(now - 5400) // 60 * 60, (now - 5400) // 60 * 60 + 60}
    assert pipeline.parse_since("2026-12-01T18:00:30Z") == pipeline.parse_since("2026-12-01T18:00Z")
    with pytest.raises(pipeline.BadTime):
        pipeline.parse_since("yesterday")
    with pytest.raises(pipeline.BadTime):
        pipeline.parse_since(now + 3600)


def test_a_lessons_sandbox_is_not_the_labs_pipeline():
    assert pipeline.on_defaults(IngestSettings(start_date="2026-01-01T00:00:00Z"))
    assert not pipeline.on_defaults(IngestSettings(topic="lesson02-1", catchup=True))


def test_the_status_line_says_flowing_paused_or_off_and_the_command():
    run = {"window": "[10:41, 10:42)", "run_type": "scheduled", "state": "success"}
    flowing = pipeline.PipelineState("running", IngestSettings(), paused=False, last_run=run)
    assert flowing.flowing and flowing.describe().startswith("pipeline: flowing")
    assert "publishes to events" in flowing.describe() and "./lab pipeline off" in flowing.describe()
    paused = pipeline.PipelineState("running", IngestSettings(), paused=True)
    assert not paused.flowing and "./lab pipeline on" in paused.describe()
    sandbox = pipeline.PipelineState("running", IngestSettings(topic="lesson02-1"), paused=False)
    assert not sandbox.flowing and "a lesson's settings" in sandbox.describe()
    assert "./lab pipeline on" in pipeline.PipelineState("stopped", None).describe()
