"""The student copies (`lab workshop build`) against the lessons they are built from.

Their runs are in test_notebooks.py: each lesson's alone run *is* its student copy, gone
through as a learner does (it must stop at each exercise with exactly

    ExerciseNotDone: Exercise NN.k is not done yet: <hint>

raised in that exercise's own cell, and with ``solutions/NN.k.py`` loaded run on to its
checks). What is checked here needs no service: that up to its first exercise a copy is
the lesson itself — so the learner's run executes the very cells the solution version's
run passed — and that every exercise has its solution file, the lesson's cell without the
markers.

On the ``workshop/exercises`` branch the lessons already are student copies: building
them again must give the same cells (and their ``solutions/`` files).
"""

from __future__ import annotations

import nbformat
import pytest

from labsupport.lessons import notebook_runner, workshop

LESSONS = notebook_runner.lessons()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("student")
    workshop.build(dest)
    return dest


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_student_copy_is_the_lesson_up_to_its_first_exercise(student_dir, path):
    original = nbformat.read(path, as_version=4)
    found = workshop.exercises(original, path.name)
    student = nbformat.read(student_dir / path.name, as_version=4)
    if not found or not found[0].solved:
        # nothing to strip (no exercise, or the lesson is a student copy already: the exercises
        # branch): the copy is the lesson
        assert [c.source for c in student.cells] == [c.source for c in original.cells]
    else:
        first = workshop.first_unsolved(student, path.name)
        assert first is not None and first.id == found[0].id and first.cell == found[0].cell
        assert [(c.id, c.source) for c in student.cells[:first.cell]] == \
            [(c.id, c.source) for c in original.cells[:first.cell]]
    for ex in found:
        solution = (student_dir / workshop.SOLUTIONS_DIR / f"{ex.id}.py").read_text()
        if ex.solved:
            assert solution == workshop.solution_source(original.cells[ex.cell].source, ex)
