"""Every lesson notebook, executed by papermill in fast mode against the real stack: in
order, then each one alone after the services were stopped. A notebook's own checks cell
is the assertion: papermill raises on any error."""

from __future__ import annotations

import re

import nbformat
import pytest

from labsupport.lessons import notebook_runner
from labsupport.stack import services

LESSONS = notebook_runner.lessons()
#: every lesson runs alone too, from stopped services: its set-up cell must build its state
#: (00 needs none, 01 starts the services itself — its subject, 02 on call reset_to(n))
ALONE = LESSONS


def _executed_checks(out) -> bool:
    executed = nbformat.read(out, as_version=4)
    return bool([c for c in executed.cells if c.cell_type == "code"][-1].get("execution_count"))


def test_there_are_lessons():
    assert len(LESSONS) >= 2


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_fast_mode(lab_stack, path):
    out, seconds = notebook_runner.run(path, fast=True)
    assert _executed_checks(out), "the checks cell did not run"
    print(f"{path.name}: {seconds:.0f}s")


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
    """The alone runs stop every service: afterwards the ones that were running are
    started again and the ones the notebooks started are stopped, so the tests after
    these find the stack as it was (data is never purged)."""
    before = services.running()
    yield
    extra = [n for n in services.running() if n not in before]
    if extra:  # an empty list would mean every service
        lab_stack.down(extra)
    if before:
        lab_stack.up(before)
    assert services.running() == before


@pytest.mark.parametrize("path", ALONE, ids=[p.stem for p in ALONE])
def test_lesson_runs_alone_from_stopped_services(services_put_back, lab_stack, path):
    lab_stack.down()
    assert services.running() == [], "the notebook must start from stopped services"
    out, seconds = notebook_runner.run(path, fast=True)
    assert _executed_checks(out), "the checks cell did not run"
    print(f"{path.name} alone: {seconds:.0f}s, left running: {services.running()}")
