"""A checkpoint whose newest batch log file is damaged: the commit marker is recovered on its
own (moved aside, never deleted), the batch plan is named with its remedy."""

from __future__ import annotations

import pytest

from labsupport.errors import DataDirProblem
from labsupport.stream import checkpoint_files

PLAN = 'v1\n{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{}}\n{"t":{"0":120,"1":95}}'


def _checkpoint(tmp_path, last_plan: str = PLAN, last_commit: str | None = 'v1\n{"nextBatchWatermarkMs":0}'):
    for d in ("offsets", "commits"):
        (tmp_path / d).mkdir(parents=True)
    for n in (0, 1):
        (tmp_path / "offsets" / str(n)).write_text(PLAN)
        (tmp_path / "commits" / str(n)).write_text('v1\n{"nextBatchWatermarkMs":0}')
    (tmp_path / "offsets" / "2").write_text(last_plan)
    if last_commit is not None:
        (tmp_path / "commits" / "2").write_text(last_commit)
        (tmp_path / "commits" / ".2.crc").write_bytes(b"crc")
    (tmp_path / "offsets" / ".2.5f0c.tmp").write_text("v1\n{")  # what a kill -9 mid-write leaves: ignored
    return tmp_path


@pytest.mark.parametrize("text,why", [("", "empty"), ("v1\n{\"nextBatch", "not valid JSON"),
                                      ("garbage", "no version line"), ("v1\n", "0 JSON line(s)")])
def test_a_damaged_newest_commit_is_moved_aside_and_its_batch_runs_again(tmp_path, text, why):
    cp = _checkpoint(tmp_path, last_commit=text)
    said: list[str] = []
    checkpoint_files.check(cp, said.append)
    assert not (cp / "commits" / "2").exists() and not (cp / "commits" / ".2.crc").exists()
    [moved] = [p for p in (cp / "damaged").iterdir() if not p.name.endswith(".crc")]
    assert moved.read_text() == text  # kept, not deleted
    assert len(said) == 1 and why in said[0] and "batch 2 runs again" in said[0]
    assert (cp / "commits" / "1").exists()  # only the newest is ever touched


def test_an_intact_checkpoint_and_a_kill9s_temp_file_are_left_alone(tmp_path):
    cp = _checkpoint(tmp_path)
    said: list[str] = []
    checkpoint_files.check(cp, said.append)
    checkpoint_files.check(_checkpoint(tmp_path / "fresh", last_commit=None), said.append)  # batch 2 not yet committed
    assert said == [] and not (cp / "damaged").exists()


def test_a_damaged_newest_plan_is_named_with_its_remedy_in_one_line(tmp_path):
    cp = _checkpoint(tmp_path, last_plan='v1\n{"batchWatermarkMs":0}', last_commit=None)
    with pytest.raises(DataDirProblem) as err:
        checkpoint_files.check(cp, print)
    assert "offsets/2 is damaged (1 JSON line(s), at least 2 expected)" in str(err.value)
    assert "--purge stream" in err.value.remedy and "\n" not in str(err.value)
    assert (cp / "offsets" / "2").exists()  # nothing moved: the learner decides


def test_an_empty_checkpoint_is_fine(tmp_path):
    checkpoint_files.check(tmp_path / "never-started", print)
