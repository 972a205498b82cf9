"""The checkpoint files lesson 04 reads (``offsets/<id>``, ``sources/0/0``) parsed the way
Spark writes them, and the restart record's count of offsets a fresh query skipped."""

from labsupport.lessons.restarts import Restart, batch_end_offsets, committed_batch_ids, initial_offsets
from labsupport.stream.settings import StreamSettings


def _checkpoint(tmp_path):
    (tmp_path / "offsets").mkdir()
    (tmp_path / "commits").mkdir()
    (tmp_path / "sources" / "0").mkdir(parents=True)
    (tmp_path / "offsets" / "3").write_text('v1\n{"batchWatermarkMs":0,"batchTimestampMs":1}\n{"t":{"0":120,"1":95}}')
    for name in ("2", "3", ".3.crc"):
        (tmp_path / "commits" / name).write_text("v1\n{}")
    # Spark's Kafka source: a NUL byte (Spark 2.1 compatibility), a version line, the JSON
    (tmp_path / "sources" / "0" / "0").write_bytes(b'\x00v1\n{"t":{"0":150,"1":140}}')
    return tmp_path


def test_offsets_of_a_batch_and_where_a_fresh_query_began(tmp_path):
    cp = _checkpoint(tmp_path)
    assert committed_batch_ids(cp) == [2, 3]
    assert batch_end_offsets(cp, 3) == {"0": 120, "1": 95}
    assert initial_offsets(cp) == {"0": 150, "1": 140}


def test_skipped_counts_only_a_fresh_checkpoint_past_where_the_old_one_read():
    fresh = Restart("old", "new", 3, 0, 0.0, 1.0, {"0": 120, "1": 95}, {"0": 150, "1": 90})
    assert fresh.skipped == 30  # partition 1 began before where it had read: nothing skipped there
    kept = Restart("same", "same", 3, 4, 0.0, 1.0, {"0": 120}, {"0": 0})
    assert kept.skipped == 0


def test_swallowing_write_errors_is_off_unless_asked_and_reaches_the_service():
    assert StreamSettings().swallow_write_errors is False
    env = StreamSettings(swallow_write_errors=True).to_env()
    assert env["LAB_STREAM_SWALLOW_WRITE_ERRORS"] == "True"
    assert StreamSettings.from_env(env).swallow_write_errors is True
