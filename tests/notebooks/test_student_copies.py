"""The student copies (`lab workshop build`), executed by papermill in fast mode against
the real stack: each stops at its first exercise with exactly

    ExerciseNotDone: Exercise NN.k is not done yet: <hint>

raised in that exercise's own cell, and every code cell before it ran without error. The
solution versions are the lessons themselves (test_notebooks.py runs them). A student
run stops at its first exercise, so it costs only the lesson's time up to there.

This file sorts after test_notebooks.py on purpose: the lessons' own runs come first and
leave the services running, which these runs reuse.
"""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import nbformat
import pytest

from labsupport import lessons
from labsupport.config import get_config
from labsupport.lessons import notebook_runner, workshop
from labsupport.stack import services

LESSONS = notebook_runner.lessons()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("student")
    workshop.build(dest)
    return dest


@contextmanager
def lab_put_back(lab_stack, lesson: int):
    """A student run never reaches its lesson's tidy-up and checks cells: what those would
    have restored is restored here — the events API's profile (lesson 02 switches its
    bursts off), the default stream service (lessons 04 on run sandboxed streams in its
    place), and no service left running that was not running before."""
    cfg = get_config()
    before = services.running()
    api = httpx.Client(base_url=cfg.events_api, timeout=10)
    profile = api.get("/profile").json() if "events-api" in before else None
    try:
        yield
    finally:
        if profile is not None:
            api.put("/profile", json=profile)
        if lesson >= 4 or services.service("stream", cfg).running() != ("stream" in before):
            lessons.restore_stream(start="stream" in before)
        extra = [n for n in services.running() if n not in before]
        if extra:  # an empty list would mean every service
            lab_stack.down(extra)


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_student_copy_stops_at_its_first_exercise(lab_stack, student_dir, path):
    original = nbformat.read(path, as_version=4)
    found = workshop.exercises(original, path.name)
    student_path = student_dir / path.name
    student = nbformat.read(student_path, as_version=4)
    if not found:  # nothing to strip: the copy is the lesson, whose own run is in test_notebooks
        assert [c.source for c in student.cells] == [c.source for c in original.cells]
        return
    first = found[0]
    with lab_put_back(lab_stack, int(path.name[:2])):
        stop = notebook_runner.run_until_error(student_path, fast=True)
    assert stop is not None, f"{path.name}: the student copy ran to the end past exercise {first.id}"
    assert (stop.ename, stop.evalue) == ("ExerciseNotDone", f"Exercise {first.id} is not done yet: {first.hint}"), \
        f"{path.name} stopped with {stop.ename}: {stop.evalue[:300]}"
    assert stop.cell_id == student.cells[first.cell].id, f"stopped in cell {stop.cell_id}, not the exercise's"
    executed = {c.id: c for c in nbformat.read(stop.executed, as_version=4).cells}
    before = [c for c in student.cells[:first.cell] if c.cell_type == "code"]
    assert all(executed[c.id].get("execution_count") for c in before), "a cell before the exercise did not run"
    print(f"{path.name}: stopped at exercise {first.id} after {stop.seconds:.0f}s")
