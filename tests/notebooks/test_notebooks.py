"""Every lesson notebook, executed in fast mode against the real stack, each one alone —
lessons 00–02 after every service was stopped (a lab just cloned or rebooted), the others
with only the core services running (what `lab_stack` keeps up), so each must top up the
rest of its state itself —
as its student copy, the way a workshop learner goes through it: it must stop at each
exercise with the exercise's hint and nowhere else, and with each solution loaded
(`%load solutions/NN.k.py`) run on to its checks (notebook_runner.run_as_learner). One
alone run proves the lesson builds its own state, the student copy stops where it should,
and the generated solutions finish it. A notebook's own checks cell is the assertion: any
other error fails the run.

On the ``workshop/exercises`` branch the lessons are student copies (their exercise cells
call ``todo`` instead of holding a solution): there each lesson must stop at its first
unsolved exercise with ``ExerciseNotDone`` — and nowhere earlier — instead of passing
(student_runs.assert_stops_at).

Each lesson's executed copy is also rendered as an HTML page, plots included, into
``<lab home>/artifacts/pages/`` (``notebook_runner.pages_dir``): what every lesson shows,
to look at without running it, from its alone run. A page that cannot be rendered fails the test.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from labsupport.config import get_config
from labsupport.lessons import notebook_runner, workshop
from labsupport.lessons.reset import CORE
from labsupport.stack import services
from tests.notebooks.student_runs import (assert_stopped_at, assert_stops_at, back_to_configured_cassandra,
                                         back_to_configured_kafka, lab_put_back)

LESSONS = notebook_runner.lessons()
#: every lesson runs alone as its student copy gone through by a learner: its set-up cell
#: must build its state (00 needs none, 01 starts the services itself — its subject, 02 on
#: call reset_to(n))
ALONE = LESSONS
#: the lessons that start from stopped services: a lab just cloned or rebooted. The others
#: start with the core services (Kafka, Cassandra, Prometheus) running, as a learner who ran
#: `./lab start` finds them: starting the core from nothing is the same `stack.up` for every
#: reset_to(n), and proving it in every lesson cost about a minute each (stop, then start
#: again) for no new coverage. 02 is the first lesson with a reset_to(n), and the first to
#: need more than the core (the events API, Airflow on its settings).
FROM_STOPPED = {"00_doctor_and_map", "01_start_the_stack", "02_ingestion_dag"}
#: No lesson runs in order on top of another in CI any more: each lesson from 02 on starts
#: with reset_to(n), which its alone run proves, and 00 and 01 start from nothing anyway.
#: The in-order runs (~25 of CI's minutes at their most) went to the chaos test, the
#: Cassandra ring and the longer hands-on lessons, and CI must stay well inside its limit.
#: `lab notebooks` still runs them in order on a learner's lab.


def _executed_checks(out) -> bool:
    executed = nbformat.read(out, as_version=4)
    return bool([c for c in executed.cells if c.cell_type == "code"][-1].get("execution_count"))


def _run_lesson(lab_stack, path: Path, out_dir: Path) -> None:
    """A solution version runs to its checks; a student copy stops at its first exercise."""
    unsolved = workshop.first_unsolved(nbformat.read(path, as_version=4), path.name)
    if unsolved is not None:
        with lab_put_back(lab_stack, int(path.name[:2])):
            assert_stops_at(path, unsolved, out_dir=out_dir)
        return
    out, seconds = notebook_runner.run(path, fast=True, out_dir=out_dir)
    assert _executed_checks(out), "the checks cell did not run"
    assert (heavy := notebook_runner.too_heavy(out)) is None, heavy
    print(f"{path.name}: {seconds:.0f}s")


@contextmanager
def kept_as_page(path: Path, out_dir: Path):
    """The executed copy of ``path`` rendered as a page afterwards, passed or failed (a
    failed lesson's page shows where and why); a page left from an earlier run never
    stands in for this one."""
    executed, page = out_dir / path.name, notebook_runner.pages_dir() / f"{path.stem}.html"
    executed.unlink(missing_ok=True)
    page.unlink(missing_ok=True)
    try:
        yield
    finally:
        if executed.exists():
            notebook_runner.to_html(executed, page.parent)


def test_there_are_lessons():
    assert len(LESSONS) >= 2


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_follows_the_conventions(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be the papermill parameters"
    assert "FAST" in code[0].source
    assert nb.cells[-2].cell_type == "markdown" and "Checks" in nb.cells[-2].source
    assert "assert" in code[-1].source, "the last cell checks what the learner should have seen"
    assert not any("awaitTermination()" in c.source for c in code), "unbounded awaitTermination() hangs papermill"
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= len(code) / 2, "explain before each step"
    n = int(path.name[:2])
    if n >= 2:  # lesson 1 starts the services itself: that is its subject
        assert re.search(rf"\breset_to\({n}\)", code[1].source), f"the set-up cell must call reset_to({n})"


@pytest.fixture(scope="module")
def services_put_back(lab_stack):
    """The alone runs stop services: afterwards the ones that were running are
    started again and the ones the notebooks started are stopped, so the tests after
    these find the stack as it was (data is never purged)."""
    before = services.running()
    yield
    back_to_configured_kafka(get_config())
    back_to_configured_cassandra(get_config())
    extra = [n for n in services.running() if n not in before]
    if extra:  # an empty list would mean every service
        lab_stack.down(extra)
    if before:
        lab_stack.up(before)
    assert services.running() == before


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    """The student copies (`lab workshop build`), their solutions/ beside them."""
    dest = tmp_path_factory.mktemp("student")
    workshop.build(dest)
    return dest


@pytest.mark.parametrize("path", ALONE, ids=[p.stem for p in ALONE])
def test_lesson_runs_alone(services_put_back, lab_stack, student_dir, path):
    if path.stem in FROM_STOPPED:
        lab_stack.down()
        assert services.running() == [], "the notebook must start from stopped services"
    else:  # what an earlier lesson left beyond the core is stopped: it must not help this one
        if extra := [n for n in services.running() if n not in CORE]:
            lab_stack.down(extra)
        lab_stack.up(CORE)
        assert sorted(services.running()) == sorted(CORE), "the notebook must start from the core services only"
    copy = student_dir / path.name
    exercises = [e for e in workshop.exercises(nbformat.read(copy, as_version=4), path.name) if not e.solved]
    if not exercises:  # nothing to stop at: the copy is the lesson
        out_dir = get_config().paths.home / "notebook-runs"
        with kept_as_page(path, out_dir):
            _run_lesson(lab_stack, path, out_dir)
        page = notebook_runner.pages_dir() / f"{path.stem}.html"
        assert 0 < page.stat().st_size < notebook_runner.MAX_EXECUTED_BYTES, page
    else:
        run = notebook_runner.run_as_learner(copy, fast=True)
        assert len(run.stops) == len(exercises), [s.evalue for s in run.stops]
        for exercise, stop in zip(exercises, run.stops):
            assert_stopped_at(copy, exercise, stop)
        assert _executed_checks(run.executed), "the checks cell did not run"
        assert (heavy := notebook_runner.too_heavy(run.executed)) is None, heavy
        page = notebook_runner.to_html(run.executed, notebook_runner.pages_dir())
        assert 0 < page.stat().st_size < notebook_runner.MAX_EXECUTED_BYTES, page
        print(f"{path.name} as a learner: {run.seconds:.0f}s, solutions loaded for "
              f"{', '.join(e.id for e in exercises)}")
    print(f"{path.name} alone: left running: {services.running()}")
