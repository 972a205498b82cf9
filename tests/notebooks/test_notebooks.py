"""Every lesson notebook, executed in order by papermill in fast mode against the real
stack. A notebook's own checks cell is the assertion: papermill raises on any error."""

from __future__ import annotations

import nbformat
import pytest

from labsupport import notebook_runner

LESSONS = notebook_runner.lessons()


def test_there_are_lessons():
    assert len(LESSONS) >= 2


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_fast_mode(lab_stack, path):
    out, seconds = notebook_runner.run(path, fast=True)
    executed = nbformat.read(out, as_version=4)
    checks = [c for c in executed.cells if c.cell_type == "code"][-1]
    assert checks.get("execution_count"), "the checks cell did not run"
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
