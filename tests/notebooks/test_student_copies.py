"""The student copies (`lab workshop build`), executed by papermill in fast mode against
the real stack: each stops at its first exercise with exactly

    ExerciseNotDone: Exercise NN.k is not done yet: <hint>

raised in that exercise's own cell, and every code cell before it ran without error
(student_runs.assert_stops_at). The solution versions are the lessons themselves
(test_notebooks.py runs them). A student run stops at its first exercise, so it costs
only the lesson's time up to there.

On the ``workshop/exercises`` branch the lessons already are student copies: building
them again must give the same cells (and their ``solutions/`` files), and their stop is
what test_notebooks.py expects there — it is not run a second time here.

This file sorts after test_notebooks.py on purpose: the lessons' own runs come first and
leave the services running, which these runs reuse.
"""

from __future__ import annotations

import nbformat
import pytest

from labsupport.lessons import notebook_runner, workshop
from tests.notebooks.student_runs import assert_stops_at, lab_put_back

LESSONS = notebook_runner.lessons()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("student")
    workshop.build(dest)
    return dest


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_student_copy_stops_at_its_first_exercise(lab_stack, student_dir, path):
    original = nbformat.read(path, as_version=4)
    found = workshop.exercises(original, path.name)
    student_path = student_dir / path.name
    student = nbformat.read(student_path, as_version=4)
    if not found or not found[0].solved:
        # nothing to strip (no exercise, or the lesson is a student copy already: the exercises
        # branch): the copy is the lesson, whose own run is in test_notebooks
        assert [c.source for c in student.cells] == [c.source for c in original.cells]
        assert all((student_dir / workshop.SOLUTIONS_DIR / f"{e.id}.py").is_file() for e in found)
        return
    with lab_put_back(lab_stack, int(path.name[:2])):
        assert_stops_at(student_path, workshop.first_unsolved(student, path.name))
